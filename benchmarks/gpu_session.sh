#!/usr/bin/env bash
# The GPU measurements, as one script for a short lease on one GPU (about 10 minutes):
#
#   bash benchmarks/gpu_session.sh OUT_DIR [CLEVR_CACHE_DIR]
#
# 1. the machine (nvidia-smi, torch) and a one-step smoke run of ait.train on the GPU;
# 2. gpu_equality.py: the chunked recorded descent against the plain loop on the GPU;
# 3. peers.py: update, gd and autodiff descent against their roofline, and the ET block against
#    its products, at sizes where the GPU is busy;
# 4. train_throughput.py: AiT-Small against ViT-Small images/s and MFU in bf16, eager, then compiled;
# 5. what time is left: AiT-Small on Sort-of-CLEVR (a capped, single-seed run; its log and metrics).
#
# SKIP="peers equality" leaves parts out (a rerun after a fix). Each part runs under its own time limit, so one that fails or hangs leaves the others' output.
# Outputs: OUT_DIR/{machine,equality,peers,throughput_eager,throughput_compiled,clevr}.txt and
# OUT_DIR/clevr_run.tar.gz (the run folder without its checkpoints).
set -u
out=${1:?usage: gpu_session.sh OUT_DIR [CLEVR_CACHE_DIR]}
clevr_cache=${2:-}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
start=$(date +%s)
part() {  # part NAME SECONDS CMD...: run CMD under a limit, output to the console and OUT_DIR/NAME.txt
    local name=$1 limit=$2; shift 2
    case " ${SKIP:-} " in *" $name "*) echo "=== $name skipped (SKIP)"; return;; esac
    echo "=== $name (limit ${limit} s, at $(( $(date +%s) - start )) s): $*" | tee -a "$out/$name.txt"
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$out/$name.txt"
    echo "=== $name exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" | tee -a "$out/$name.txt"
}

part machine 60 bash -c "nvidia-smi; echo revision ${REVISION:-unknown}; $py -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())'; \
  $py -m ait.train --model ait-tiny --data triangle --max-steps 2 --eval-every 2 --batch-size 8 --device cuda --bf16 --out /tmp/smoke --overwrite"
part equality 60 $py benchmarks/gpu_equality.py
part peers 120 $py benchmarks/peers.py --device cuda --sizes 16384x256,65536x512,262144x512 --et 64,256,768,12,64,3072
part throughput_eager 90 $py benchmarks/train_throughput.py --size small --bf16 --batch 256 --repeats 10 --device cuda
part throughput_compiled 200 $py benchmarks/train_throughput.py --size small --bf16 --compile --batch 256 --repeats 10 --pools "" --device cuda
left=$(( 560 - ($(date +%s) - start) ))
if [ "$left" -gt 60 ]; then
    part clevr "$left" $py -m ait.train --model ait-small --data sort-of-clevr ${clevr_cache:+--data-dir "$clevr_cache"} \
        --device cuda --bf16 --batch-size 512 --lr 5e-4 --warmup-steps 200 --epochs 6 --eval-every 280 \
        --out /tmp/clevr --overwrite
    tar -czf "$out/clevr_run.tar.gz" -C /tmp --exclude='*.pt' clevr
fi
echo "gpu_session done after $(( $(date +%s) - start )) s"
