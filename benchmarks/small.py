"""Small descents with the energy recorded: ``descend`` against hand-written torch and jitted JAX.

    python benchmarks/small.py                          # the four workloads below, float32 and float64
    python benchmarks/small.py --sizes 20x16x200 --dtypes float32 --repeats 11

A theory user's day is thousands of small descents (β sweeps, basins, capacity scans) with the
energy after every step. Timed per workload N × d, B (patterns, dimension, states): ``--steps``
Hopfield updates ξ ← X softmax(β Xᵀξ) with E(ξ) after every step, energies ``[steps + 1, B]``:

- ``descend``: ``hk.descend(HopfieldEnergy(X), xi, beta, method="update", steps=steps, tol=0)``
  (``record=True``, the default);
- ``plain``: the same call with the chunked route switched off (``hopfieldkit._fast.policy``), the
  plain loop that judges and records state by state after every step;
- ``torch``: the same work as a plain eager torch loop (update, then the energy of the new state);
- ``jax``: ``jax.jit`` of a ``lax.scan`` whose body computes the scores once, the energy from them
  and the update (skipped when JAX is not importable; install it beside torch in a separate
  virtual environment, see ``benchmarks/peers.py``).

The methods alternate inside each repeat, each timed call preceded by a short pause (a spinning
thread pool of one library slows the next call of the other on 2 cores); the ratios are medians
over repeats of the per-repeat ratio (these machines are noisy). Nothing here is asserted in the tests.
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics

import torch

import hopfieldkit as hk
from hopfieldkit._fast import policy
from _timing import alternate_samples, paired_ratio   # benchmarks/_timing.py (this folder is on sys.path)


def plain_descend(E, xi, beta, steps):
    """``descend`` through its plain loop (the chunked route refused for this call)."""
    chunked, policy.chunked_update = policy.chunked_update, (lambda *a, **k: False)
    try:
        return hk.descend(E, xi, beta, method="update", steps=steps, tol=0).energies
    finally:
        policy.chunked_update = chunked


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def torch_loop(X: torch.Tensor, xi: torch.Tensor, beta: float, steps: int) -> torch.Tensor:
    """Energies [steps + 1, B] of ``steps`` updates, written plainly in eager torch."""
    const = math.log(X.shape[0]) / beta + 0.5 * (X * X).sum(-1).max()
    E = torch.empty(steps + 1, xi.shape[0], dtype=xi.dtype)

    def energy(x):
        return -torch.logsumexp(beta * x @ X.T, -1) / beta + 0.5 * (x * x).sum(-1) + const

    E[0] = energy(xi)
    for t in range(1, steps + 1):
        xi = torch.softmax(beta * xi @ X.T, -1) @ X
        E[t] = energy(xi)
    return E


def jax_loop(X: torch.Tensor, beta: float, steps: int):
    """A jitted function of ξ0 returning the energies [steps + 1, B], or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    if X.dtype == torch.float64:
        jax.config.update("jax_enable_x64", True)
    Xj = jnp.asarray(X.numpy())
    const = math.log(X.shape[0]) / beta + 0.5 * jnp.max(jnp.sum(Xj * Xj, -1))

    def energy_and_scores(x):
        s = beta * x @ Xj.T
        return const - jax.nn.logsumexp(s, -1) / beta + 0.5 * jnp.sum(x * x, -1), s

    @jax.jit
    def run(x):
        def body(x, _):
            e, s = energy_and_scores(x)
            return jax.nn.softmax(s, -1) @ Xj, e
        x, es = jax.lax.scan(body, x, None, length=steps)
        return jnp.concatenate([es, energy_and_scores(x)[0][None]])

    return lambda xi: run(jnp.asarray(xi.numpy())).block_until_ready()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20x16x200,100x64x200,1000x64x32,1024x64x256", help="comma-separated N x d x B")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--settle", type=float, default=0.05, help="seconds of pause before each timed call")
    args = ap.parse_args()
    try:
        import jax
        jax_version = f"jax {jax.__version__}"
    except ImportError:
        jax_version = "jax not importable: its column is skipped"
    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; {jax_version}")
    print(f"{args.steps} update steps, energy after every step; µs per step (median of {args.repeats}); "
          f"ratios: median per-repeat time ratio")
    print(f"{'dtype':>8} {'N x d, B':>16} {'jax':>8} {'torch':>8} {'plain':>8} {'descend':>8} {'desc/jax':>9} "
          f"{'desc/torch':>10} {'desc/plain':>10} {'max|ΔE|':>9}")
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        for size in args.sizes.split(","):
            N, d, B = (int(v) for v in size.lower().split("x"))
            g = torch.Generator().manual_seed(0)
            X = torch.randn(N, d, generator=g, dtype=dtype)
            xi0 = torch.randn(B, d, generator=g, dtype=dtype)
            beta = d ** -0.5
            E = hk.HopfieldEnergy(X)
            runs = {
                "torch": lambda: torch_loop(X, xi0, beta, args.steps),
                "plain": lambda: plain_descend(E, xi0, beta, args.steps),
                "descend": lambda: hk.descend(E, xi0, beta, method="update", steps=args.steps, tol=0).energies,
            }
            jx = jax_loop(X, beta, args.steps)
            if jx is not None:
                runs = {"jax": lambda: jx(xi0), **runs}
            samples = alternate_samples(runs, args.repeats, settle=args.settle)
            us = {k: 1e6 * statistics.median(v) / args.steps for k, v in samples.items()}
            ref = runs["torch"]()
            err = max(float((runs[k]() - ref).abs().max()) for k in ("descend", "plain"))
            if jx is not None:
                import numpy as np
                err = max(err, float(np.abs(np.asarray(jx(xi0)) - ref.numpy()).max()))
            col = lambda k: f"{us[k]:>8.1f}" if k in us else f"{'-':>8}"
            rj = f"{paired_ratio(samples, 'descend', 'jax'):>9.2f}" if jx is not None else f"{'-':>9}"
            print(f"{dtype_name:>8} {f'{N}x{d}, {B}':>16} {col('jax')} {col('torch')} {col('plain')} {col('descend')} {rj} "
                  f"{paired_ratio(samples, 'descend', 'torch'):>10.2f} {paired_ratio(samples, 'descend', 'plain'):>10.2f} "
                  f"{err:>9.1e}", flush=True)


if __name__ == "__main__":
    main()
