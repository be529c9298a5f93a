"""The fast paths on a GPU against the plain loop (the tests check them on the CPU only, where CI runs):

    python benchmarks/gpu_equality.py            # prints one line per case and "all equal" or the failures

The ``update`` descent in chunks (energies recorded or not) (``hopfieldkit/_fast/chunked_update.py``) against the plain
per-step loop, float32 and float64, with and without a tolerance, a trajectory, masks and per-sample
memories; and the small-problem timing of both (µs per step), since on a GPU the chunked loop's gain
is that it never waits for the device inside a chunk.
"""
from __future__ import annotations

import sys
import time

import torch

import hopfieldkit as hk
from hopfieldkit._fast import policy


def run(energy, xi, beta, chunked: bool, **kw):
    keep = policy.chunked_update
    if not chunked:
        policy.chunked_update = lambda *a, **k: False
    try:
        return hk.descend(energy, xi, beta, method="update", **kw)
    finally:
        policy.chunked_update = keep


def same(a, b, tol) -> str | None:
    for name in ("xi", "energies", "trajectory", "converged", "diverged", "state_steps", "residual"):
        u, v = getattr(a, name), getattr(b, name)
        if u is None and v is None:
            continue
        if (u is None) != (v is None) or u.shape != v.shape:
            return f"{name}: shapes {None if u is None else tuple(u.shape)} vs {None if v is None else tuple(v.shape)}"
        if u.dtype == torch.bool:
            if not torch.equal(u, v):
                return f"{name} differs"
        elif not torch.allclose(u.float() if u.dtype == torch.long else u, v.float() if v.dtype == torch.long else v,
                                atol=tol, rtol=tol, equal_nan=True):
            return f"{name}: max diff {(u - v).abs().max().item():.2e}"
    if a.steps != b.steps or a.message != b.message:
        return f"steps {a.steps} vs {b.steps} / {a.message!r} vs {b.message!r}"
    return None


def main() -> int:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, device {dev}")
    g = torch.Generator().manual_seed(0)
    failures = 0
    for dtype in (torch.float32, torch.float64):
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        for N, d, B in ((20, 16, 200), (300, 32, 64), (1000, 64, 32)):
            X = torch.randn(N, d, generator=g, dtype=dtype).to(dev)
            xi = (X[torch.randint(0, N, (B,), generator=g)].cpu() + 0.3 * torch.randn(B, d, generator=g, dtype=dtype)).to(dev)
            # float32 tolerances well above its rounding: a residual within an ulp of tol may stop a
            # state one step apart on the two paths (the fast one folds β into X)
            small = 1e-4 if dtype == torch.float32 else 1e-6
            for kw in ({"steps": 50, "tol": 0.0}, {"steps": 80, "tol": 10 * small}, {"steps": 30, "tol": small, "trajectory": True},
                       {"steps": 40, "tol": small, "check_every": 3}, {"steps": 80, "tol": 10 * small, "record": False},
                       {"steps": 40, "tol": small, "record": False, "trajectory": True}):
                a, b = run(hk.HopfieldEnergy(X), xi, 2.0, True, **kw), run(hk.HopfieldEnergy(X), xi, 2.0, False, **kw)
                why = same(a, b, tol)
                failures += why is not None
                print(f"{str(dtype)[6:]:>8} {N}x{d} B={B} {kw}: {'ok' if why is None else 'FAIL ' + why}")
        Xs = torch.randn(4, 30, 8, generator=g, dtype=dtype).to(dev)
        mask = torch.rand(4, 30, generator=g) < 0.2
        xi = torch.randn(4, 8, generator=g, dtype=dtype).to(dev)
        E = hk.HopfieldEnergy(Xs, mask=mask.to(dev))
        beta = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=dtype, device=dev)
        why = same(run(E, xi, beta, True, steps=40, tol=small), run(E, xi, beta, False, steps=40, tol=small), tol)
        failures += why is not None
        print(f"{str(dtype)[6:]:>8} masked per-sample memories, tensor β: {'ok' if why is None else 'FAIL ' + why}")

    print("\nµs per step, 100 steps, record=True, tol=0 (median of 7):")
    for N, d, B in ((20, 16, 200), (100, 64, 200), (1000, 64, 32), (1024, 64, 256)):
        X = torch.randn(N, d, generator=g).to(dev)
        xi = torch.randn(B, d, generator=g).to(dev)
        times = {}
        for chunked in (False, True):
            ts = []
            for _ in range(8):
                torch.cuda.synchronize() if dev.type == "cuda" else None
                t0 = time.perf_counter()
                run(hk.HopfieldEnergy(X), xi, 1.0, chunked, steps=100, tol=0.0)
                torch.cuda.synchronize() if dev.type == "cuda" else None
                ts.append(time.perf_counter() - t0)
            times[chunked] = sorted(ts[1:])[3] / 100 * 1e6
        print(f"{N}x{d} B={B}: plain loop {times[False]:8.1f}   chunked {times[True]:8.1f}   "
              f"ratio {times[True] / times[False]:.3f}")
    print("all equal" if not failures else f"{failures} FAILURES")
    return int(failures > 0)


if __name__ == "__main__":
    sys.exit(main())
