"""This checkout's descend against another revision's, in one process, alternating.

    git worktree add /tmp/old 2051b60
    python benchmarks/ab_versions.py --old /tmp/old          # ratios new/old, per method and size

Separate processes on a noisy VM differed by up to 2× for the same code; here both versions run
side by side (the old package is copied under the name ``hopfieldkit_old``), each method of each
version once per repeat, and the ratio is the median of the per-repeat ratios. Freed buffers are
retained for both (``hk.retain_freed_memory``). Float32, B = 256 states, tol = 0 unless the method
name says ``-tol`` (then the default tolerance, stopping at convergence) or ``-rec`` (energies recorded).
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import torch


def cases(hk, X, xi, beta, steps):
    E = hk.HopfieldEnergy(X)
    f_op = lambda x, b: -hk.lse_similarity(x, X, b) + 0.5 * (x * x).sum(-1)      # noqa: E731
    return {"update": lambda: hk.descend(E, xi, beta, method="update", steps=steps, tol=0, record=False),
            "update-rec": lambda: hk.descend(E, xi, beta, method="update", steps=steps),
            "autodiff-op": lambda: hk.descend(f_op, xi, beta, method="gd", step_size=1.0, steps=steps, tol=0,
                                              record=False),
            "armijo": lambda: hk.descend(E, xi, beta, method="armijo", steps=steps, tol=0, record=False),
            "armijo-tol": lambda: hk.descend(E, xi, beta, method="armijo", steps=steps),
            "ode-tol": lambda: hk.descend(E, xi, beta, method="ode", steps=steps)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=pathlib.Path, required=True, help="a checkout of the other revision")
    ap.add_argument("--sizes", default="1024x64x50,16384x256x6", help="N x d x steps, comma-separated")
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    tmp = pathlib.Path(tempfile.mkdtemp())
    shutil.copytree(a.old / "hopfieldkit", tmp / "hopfieldkit_old")
    sys.path.insert(0, str(tmp))
    import hopfieldkit as new
    import hopfieldkit_old as old

    new.retain_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; old = {a.old}")
    runs, sizes = {}, []
    for size in a.sizes.split(","):
        N, d, steps = (int(v) for v in size.split("x"))
        sizes.append(N)
        g = torch.Generator().manual_seed(0)
        X, xi = torch.randn(N, d, generator=g), torch.randn(256, d, generator=g)
        for name, hk in (("old", old), ("new", new)):
            for m, f in cases(hk, X, xi, d ** -0.5, steps).items():
                runs[(N, m, name)] = f
    times = {k: [] for k in runs}
    for f in runs.values():
        f()
    for _ in range(a.repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    print(f"{'N':>6} {'method':>12} {'old ms':>9} {'new ms':>9} {'new/old':>8}")
    for N in sizes:
        for m in ("update", "update-rec", "autodiff-op", "armijo", "armijo-tol", "ode-tol"):
            o, n = times[(N, m, "old")], times[(N, m, "new")]
            ratio = statistics.median(x / y for x, y in zip(n, o))
            print(f"{N:>6} {m:>12} {statistics.median(o) * 1e3:>9.2f} {statistics.median(n) * 1e3:>9.2f} {ratio:>8.3f}")


if __name__ == "__main__":
    main()
