"""States/s of ``descend`` against a hand-written torch loop of the same Hopfield update.

    python benchmarks/descend.py                    # N × d ∈ {1024×64, 16384×256, 65536×512}, B = 256
    python benchmarks/descend.py --sizes 4096x128 --batch 64 --repeats 5

Goal (core issue): ``method="update"`` within 1.1× of the hand-written loop, ``"armijo"`` within
3×. The methods are timed alternately inside one process, and the median of the repeats is
reported as a ratio to the baseline measured in the same run, because these machines are noisy.
Nothing here is asserted in the tests.
"""
from __future__ import annotations

import argparse

import torch

import hopfieldkit as hk
from _timing import allocator_flag, apply_allocator, alternate, hand_loop   # benchmarks/_timing.py (this folder is on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024x64,16384x256,65536x512", help="comma-separated N x d")
    ap.add_argument("--batch", type=int, default=256, help="states B")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: by size)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--beta", type=float, default=None, help="default 1/sqrt(d)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    allocator_flag(ap)
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}, {args.dtype}, B = {args.batch}")
    print(apply_allocator(args))
    print(f"{'N x d':>12} {'steps':>5} {'method':>8} {'states/s':>12} {'ms/step':>9} {'ratio':>7}")
    for size in args.sizes.split(","):
        N, d = (int(v) for v in size.lower().split("x"))
        g = torch.Generator().manual_seed(0)
        X = torch.randn(N, d, generator=g, dtype=dtype).to(dev)
        xi0 = torch.randn(args.batch, d, generator=g, dtype=dtype).to(dev)
        beta = args.beta or d ** -0.5
        steps = args.steps or max(2, int(3e10 / (4 * args.batch * N * d)))
        steps = min(steps, 50)
        E = hk.HopfieldEnergy(X)
        runs = {
            "hand": lambda: hand_loop(X, xi0, beta, steps),
            "update": lambda: hk.descend(E, xi0, beta, method="update", steps=steps, tol=0, record=False).xi,
            "armijo": lambda: hk.descend(E, xi0, beta, method="armijo", steps=steps, tol=0, record=False).xi,
        }
        times = alternate(runs, args.repeats, sync=sync)
        base = times["hand"]
        for name, t in times.items():
            print(f"{size:>12} {steps:>5} {name:>8} {args.batch * steps / t:>12.4g} {1e3 * t / steps:>9.3f} "
                  f"{t / base:>7.3f}")
        ref = hand_loop(X, xi0, beta, steps)
        err = (runs["update"]() - ref).abs().max().item()
        print(f"{'':>12} max |descend(update) - hand loop| = {err:.2e}")


if __name__ == "__main__":
    main()
