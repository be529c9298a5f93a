"""Training throughput of AiT against ViT at equal size, and the cost of the workspace bottleneck.

    python benchmarks/train_throughput.py                 # CPU: tiny models
    python benchmarks/train_throughput.py --size small    # on a GPU: AiT-Small vs ViT-Small (bf16 with --bf16)

Part 1: images/s of a full training step (forward, backward, AdamW) and peak memory (CUDA only),
AiT against ViT with the same backbone, measured alternately in one process; ratio = ViT time / AiT time.
Part 2: the bottleneck write (M priors choose top-k of a pool of P = batch × tokens patches, O(M·P))
against dense self-attention over the same P tokens (O(P²)), as P grows. Nothing here is asserted
in the tests: these machines are noisy, so only same-run ratios are meaningful.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ait.model import AiT, ViT, make_config


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cfg = make_config(a.size, image_size=a.image_size, patch=a.patch, channels=3, num_classes=10)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} threads, size {a.size}, "
          f"batch {a.batch}, {cfg.tokens} tokens, bf16={a.bf16}")
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    models = {"AiT": AiT(cfg).to(dev), "ViT": ViT(cfg).to(dev)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(name):
        m, o = models[name], opts[name]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
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
    print(f"\n{'model':>6} {'params':>12} {'images/s':>10} {'ms/step':>9} {'ViT/AiT':>8} {'peak MiB':>9}")
    for name, m in models.items():
        t = statistics.median(times[name])
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:>6} {n:>12,} {a.batch / t:>10.1f} {1e3 * t:>9.2f} {base / t:>8.3f} "
              f"{peak.get(name, float('nan')):>9.1f}")

    print(f"\nbottleneck write (M = {cfg.num_priors}, k = {cfg.bottleneck}, heads {cfg.memory_heads}) vs dense "
          f"attention over the same pool of P tokens (width {cfg.dim})")
    print(f"{'P':>7} {'write ms':>9} {'dense ms':>9} {'dense/write':>11}")
    ws = models["AiT"].workspaces()[0]
    for P in (256, 1024, 4096, 16384):
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
