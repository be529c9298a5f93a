"""Training throughput of AiT against ViT at equal size, and the cost of the workspace bottleneck.

    python benchmarks/train_throughput.py                 # CPU: tiny models
    python benchmarks/train_throughput.py --size small    # on a GPU: AiT-Small vs ViT-Small (bf16 with --bf16)
    python benchmarks/train_throughput.py --size small --bf16 --compile --batch 256   # the MFU goal

Part 1: images/s of a full training step (forward, backward, ait.train's AdamW) and peak memory (CUDA only),
AiT against ViT with the same backbone, measured alternately in one process; ratio = ViT time / AiT time
within each repeat, its median over the repeats (a slow phase of a noisy machine cancels in the pair).
The row ``plain`` is AiT with its write and read on the plain paths (``ait.models.fused_write.disabled``,
``ait.models.fused_read.disabled``): the fused paths' gain, where they apply (CPU training).
MFU = the step's FLOPs (counted once with torch.utils.flop_counter: matmuls, convolutions and
attention, forward and backward) / its time / the device's peak: the dense bf16 (or TF32 / float32)
tensor-core figure of the data sheet for known GPUs (``--peak-tflops`` overrides), and beside it the
throughput of a large matmul measured in the same run.
Then each workspace part alone (write, read, MLP + LN_z), forward and backward, as a share of ViT's step.
Part 2: the bottleneck write (M priors choose top-k of a pool of P = batch × tokens patches, O(M·P))
against dense self-attention over the same P tokens (O(P²)), as P grows. Nothing here is asserted
in the tests: these machines are noisy, so only same-run ratios are meaningful.
Part 3 (``--batches``): the paired step times at several batch sizes, which separate the
workspace's fixed cost per step (per-op overhead, which dominates at tiny sizes on a CPU) from its
cost per image.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from ait.data import InputSpec
from ait.models import AiT, ViT, fused_read, fused_write, make_config, num_tokens
from ait.train import make_optimizer
from _timing import allocator_flag, apply_allocator   # benchmarks/_timing.py (this folder is on sys.path)


def timed(fn, repeats: int, sync) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# dense (no sparsity) data-sheet peaks in TFLOP/s: bf16 tensor cores, and float32 without TF32
SPEC_TFLOPS = {"H100 80GB HBM3": (989.4, 66.9), "H100 SXM": (989.4, 66.9), "H100 NVL": (835.0, 60.0),
               "H100 PCIe": (756.5, 51.2), "H200": (989.4, 66.9), "A100": (312.0, 19.5)}


def spec_peak(device: torch.device, bf16: bool) -> float | None:
    """The data-sheet peak (FLOP/s) of a known GPU, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (half, single) in SPEC_TFLOPS.items():
        if key in name:
            return 1e12 * (half if bf16 else single)
    return None


def matmul_peak(device: torch.device, bf16: bool, sync, n: int = 8192) -> float:
    """FLOP/s of an n × n × n matmul in the training dtype, measured now."""
    n = n if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / timed(lambda: a @ a, 5, sync)


def step_flops(step) -> float:
    """FLOPs of one call of ``step`` (forward + backward), by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def components(model: AiT, x: torch.Tensor, repeats: int, sync, vit_step: float, bf16: bool = False) -> None:
    """Forward + backward of each workspace part at the model's own shapes (the first layer's input),
    against ViT's whole step: where the workspace's share of a training step goes. Under the same
    autocast as the step (bf16 or none), so the shares compare like with like."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        _components(model, x, repeats, sync, vit_step)


def _components(model: AiT, x: torch.Tensor, repeats: int, sync, vit_step: float) -> None:
    ws = model.workspaces()[0]
    with torch.no_grad():
        u = model.blocks[0].norm_b(model.embed(x))
    u = u.detach().requires_grad_(True)
    z = ws.norm_z(ws.mlp(u)).detach().requires_grad_(True)
    Z = z.reshape(-1, z.shape[-1])
    gamma = ws.memory.detach().clone()

    def write():
        new, aux, _ = ws.write(Z)
        (new.sum() + aux).backward()

    g = torch.randn_like(z)

    def read():   # what the block runs: the read and its skip path
        ws.read.set_priors(gamma)
        (ws.hopfield_read(z).xi + z).backward(g)

    def read_fused():
        fused_read.read(ws, z, gamma).backward(g)

    def mlp_ln():
        ws.norm_z(ws.mlp(u)).sum().backward()

    parts = {"write (top-k, EMA, balance loss)": write, "read + skip (descend on the priors' energy)": read,
             "MLP + LN_z (ViT has the MLP too)": mlp_ln}
    if fused_read.applies(ws, z, False):
        parts["read + skip, fused (what training runs)"] = read_fused
    layers = len(model.workspaces())
    print(f"\nworkspace parts, forward + backward, × {layers} layers, as a share of ViT's step ({1e3 * vit_step:.2f} ms)")
    for name, fn in parts.items():
        t = timed(fn, repeats, sync) * layers
        print(f"  {name:<40} {1e3 * t:7.2f} ms  {100 * t / vit_step:5.1f} %")
    ws.read.set_priors(ws.memory.detach())


@contextlib.contextmanager
def plain_paths():
    """AiT's write and read on their plain paths (no fused autograd nodes)."""
    with fused_write.disabled(), fused_read.disabled():
        yield


def by_batch(step, batches: list[int], a, dev: torch.device, sync) -> None:
    """Part 3: AiT's and ViT's step times at each batch size, alternating within each repeat; the
    difference is what the workspace adds per step, its fixed part the value at batch 1."""
    print(f"\nstep time by batch size (median of {a.repeats} alternating repeats; ratio = median paired ViT/AiT)")
    print(f"{'batch':>6} {'ViT ms':>8} {'AiT ms':>8} {'AiT - ViT':>10} {'ViT/AiT':>8}")
    for b in batches:
        xb = torch.randn(b, 3, a.image_size, a.image_size, device=dev)
        yb = torch.randint(0, 10, (b,), device=dev)
        t = {k: [] for k in ("ViT", "AiT")}
        for name in t:
            step(name, x=xb, y=yb)
        for _ in range(a.repeats):
            for name in t:
                t[name].append(timed(lambda: step(name, x=xb, y=yb), 1, sync))
        v, m = statistics.median(t["ViT"]), statistics.median(t["AiT"])
        r = statistics.median(p / q for p, q in zip(t["ViT"], t["AiT"]))
        print(f"{b:>6} {1e3 * v:>8.2f} {1e3 * m:>8.2f} {1e3 * (m - v):>10.2f} {r:>8.3f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile each model (default mode)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak for the MFU "
                    "(default: the data sheet's for known GPUs)")
    ap.add_argument("--pools", default="256,1024,4096,16384", help="pool sizes P of part 2 ('' to skip)")
    ap.add_argument("--batches", default="", help="part 3: the paired step times at these batch sizes, "
                    "e.g. 1,16,64,256 (what AiT adds per step, fixed and per image; '' to skip)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    allocator_flag(ap)
    a = ap.parse_args(argv)
    print(apply_allocator(a))
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cfg = make_config(a.size, patch=a.patch)
    inputs = InputSpec(image_size=a.image_size, channels=3, num_classes=10)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} threads, size {a.size}, "
          f"batch {a.batch}, {num_tokens(inputs, cfg.patch)} tokens, bf16={a.bf16}, compile={a.compile}")
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    models = {"AiT": AiT(cfg, inputs).to(dev), "ViT": ViT(cfg, inputs).to(dev)}
    models["plain"] = copy.deepcopy(models["AiT"])   # AiT with its write and read on the plain paths (the fast paths' A/B)
    opts = {k: make_optimizer(m, lr=1e-4, weight_decay=0.01) for k, m in models.items()}   # as ait.train
    run_models = {k: torch.compile(m) if a.compile else m for k, m in models.items()}

    def step(name, m=None, x=x, y=y):
        m, o = run_models[name] if m is None else m, opts[name]
        plain = plain_paths() if name == "plain" else contextlib.nullcontext()
        with plain, torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            logits, aux = m(x)
            loss = F.cross_entropy(logits.float(), y) + aux.float()
        o.zero_grad(set_to_none=True)
        loss.backward()
        o.step()

    times = {k: [] for k in models}
    peak = {}
    for name in models:
        step(name)
    for _ in range(a.repeats):  # alternate the models inside each repeat
        for name in models:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            times[name].append(timed(lambda: step(name), 1, sync))
            if cuda:
                peak[name] = torch.cuda.max_memory_allocated() / 2**20
    base = statistics.median(times["ViT"])
    spec = 1e12 * a.peak_tflops if a.peak_tflops else spec_peak(dev, a.bf16)
    measured = matmul_peak(dev, a.bf16, sync)
    print(f"\npeak: data sheet {spec / 1e12 if spec else float('nan'):.1f} TFLOP/s, measured matmul "
          f"{measured / 1e12:.1f} TFLOP/s; MFU = model FLOP/s over each")
    print(f"{'model':>6} {'params':>12} {'images/s':>10} {'ms/step':>9} {'ViT/AiT':>8} {'peak MiB':>9} "
          f"{'GFLOP/step':>11} {'MFU sheet':>10} {'MFU mm':>7}")
    for name, m in models.items():
        t = statistics.median(times[name])
        n = sum(p.numel() for p in m.parameters())
        flops = step_flops(lambda: step(name, models[name]))   # eager: the counter sees every op
        mfu = f"{100 * flops / t / spec:>9.1f}%" if spec else f"{'n/a':>10}"
        ratio = statistics.median(v / m for v, m in zip(times["ViT"], times[name]))
        print(f"{name:>6} {n:>12,} {a.batch / t:>10.1f} {1e3 * t:>9.2f} {ratio:>8.3f} "
              f"{peak.get(name, float('nan')):>9.1f} {flops / 1e9:>11.2f} {mfu} {100 * flops / t / measured:>6.1f}%")
    pairs = sorted(v / m for v, m in zip(times["ViT"], times["AiT"]))
    q = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else pairs * 3
    print(f"ViT/AiT: the median over {len(pairs)} repeats of the two steps' time ratio within a repeat "
          f"(quartiles {q[0]:.3f}, {q[2]:.3f}); images/s and ms/step are medians")
    gain = sorted(p / f for p, f in zip(times["plain"], times["AiT"]))
    g = statistics.quantiles(gain, n=4) if len(gain) > 1 else gain * 3
    print(f"fused write and read: AiT's step on the plain paths / on the fused ones = {statistics.median(gain):.3f} "
          f"(quartiles {g[0]:.3f}, {g[2]:.3f}; 1.000 where the fast path does not apply)")
    components(models["AiT"], x, a.repeats, sync, base, a.bf16)
    if a.batches:
        by_batch(step, [int(v) for v in a.batches.split(",")], a, dev, sync)
    if not a.pools:
        return

    print(f"\nbottleneck write (M = {cfg.num_priors}, k = {cfg.bottleneck}, heads {cfg.memory_heads}) vs dense "
          f"attention over the same pool of P tokens (width {cfg.dim})")
    print(f"{'P':>7} {'write ms':>9} {'dense ms':>9} {'dense/write':>11}")
    ws = models["AiT"].workspaces()[0]
    for P in (int(v) for v in a.pools.split(",")):
        Z = torch.randn(P, cfg.dim, device=dev)
        if not cuda and P > 8192:
            print(f"{P:>7}   (dense P×P attention skipped on CPU)")
            continue
        t_w = timed(lambda: ws.write(Z), a.repeats, sync)
        qkv = Z.view(1, 1, P, cfg.dim)
        t_d = timed(lambda: F.scaled_dot_product_attention(qkv, qkv, qkv), a.repeats, sync)
        print(f"{P:>7} {1e3 * t_w:>9.2f} {1e3 * t_d:>9.2f} {t_d / t_w:>11.2f}")


if __name__ == "__main__":
    main()
