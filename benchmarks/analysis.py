"""Wall time of the analysis functions a theory user calls all day, against the same computation
written directly in torch and in jitted JAX.

    python benchmarks/analysis.py                       # every workload, float64 and float32
    python benchmarks/analysis.py --only capacity --repeats 5

Workloads (one row each; ``--only`` picks by the first word):

- ``fixed_points N x d``: ``hk.fixed_points(HopfieldEnergy(X), β, starts)`` from 200 random starts
  at β = 2 (X ~ 3·N(0, I/d) rows): descend until each state's residual is within tolerance (the
  default, 1e-10 / 1e-5 relative to max(1, ‖ξ‖), tested every 16 steps), merge the end points, and
  at each fixed point its energy, the eigenvalues of ∇²E = I − β(Σ p_i x_i x_iᵀ − m mᵀ) and its
  kind from the softmax weights.
- ``basins 20 x 16``: the same on a 50 × 50 grid of starts in the plane of three patterns
  (``hk.grid_starts``), the picture of notebook 01.
- ``beta_sweep 20 x 16``: ``hk.beta_sweep`` over 12 values of β from 0.1 to 20, 200 starts each.
- ``capacity hebbian / modern``: ``hk.capacity.recall_rate`` at N = 100 (Hebb: P = 10, asynchronous
  sweeps in order 0 … N−1; modern: P = 200, β = 1), 50 trials, 15 % of the bits flipped.

The ``torch`` and ``jax`` columns compute the same things written directly: the descent loop with
the same freezing and stopping rule (JAX: ``lax.while_loop``, tested every step), the greedy merge of
the end points on the host as ``fixed_points`` does it (numpy, one pass over the points per fixed
point; a fixed radius 1e-3), and the closed-form Hessian
with ``eigvalsh``; the capacity rows the same vectorised sweeps and counts. ``jax`` excludes
compilation, which runs once per shape (its first call, shown as ``jax 1st``); a notebook pays it
for every new size and every new number of fixed points. The methods alternate inside each repeat;
ratios are medians of per-repeat ratios (these machines are noisy). ``K``: fixed points found
(hk / torch, a check that the two did the same work). Nothing here is asserted in the tests.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

import hopfieldkit as hk
from hopfieldkit import capacity
from hopfieldkit.descend import DEFAULT_TOL
from _timing import alternate_samples, apply_allocator, allocator_flag, paired_ratio   # benchmarks/_timing.py
from small import cpu_model

STEPS = 2000
CHECK_EVERY = 16      # descend's test of "all states frozen" when nothing is recorded
MERGE = 1e-3


# ------------------------------------------------------------------------------------------------
# the computations written directly
# ------------------------------------------------------------------------------------------------
def greedy(points: np.ndarray, radius: float) -> np.ndarray:
    """Indices of representatives: each point joins the nearest earlier one within ``radius``
    (found one representative at a time: the first point farther than ``radius`` from all so far)."""
    n = points.shape[0]
    best = np.full(n, np.inf)
    reps: list[int] = []
    while True:
        start = reps[-1] + 1 if reps else 0
        free = np.flatnonzero(best[start:] > radius)
        if free.size == 0:
            return np.asarray(reps)
        i = start + int(free[0])
        reps.append(i)
        best[i + 1:] = np.minimum(best[i + 1:], np.sqrt(((points[i + 1:] - points[i]) ** 2).sum(-1)))


def mass_count(p: torch.Tensor, mass: float = 0.9) -> torch.Tensor:
    """The fewest weights holding ``mass`` of each row."""
    c = p.sort(-1, descending=True).values.cumsum(-1)
    return (c < mass).sum(-1) + 1


def torch_fixed_points(X: torch.Tensor, beta: float, x: torch.Tensor, tol: float):
    """(points, energies, Hessian eigenvalues, k) in eager torch."""
    frozen = torch.zeros(x.shape[0], dtype=torch.bool)
    XT = X.T
    for t in range(1, STEPS + 1):
        new = torch.softmax(beta * (x @ XT), -1) @ X
        frozen = frozen | ((new - x).norm(dim=-1) <= tol * x.norm(dim=-1).clamp_min(1.0))
        x = torch.where(frozen[:, None], x, new)
        if t % CHECK_EVERY == 0 and bool(frozen.all()):
            break
    P = x[torch.from_numpy(greedy(x.numpy(), MERGE))]
    s = beta * (P @ XT)
    p = torch.softmax(s, -1)
    m = p @ X
    J = beta * ((p.unsqueeze(-1) * X).transpose(1, 2) @ X - m.unsqueeze(-1) * m.unsqueeze(-2))
    eig = torch.linalg.eigvalsh(torch.eye(X.shape[1], dtype=X.dtype) - J)
    const = math.log(X.shape[0]) / beta + 0.5 * float((X * X).sum(-1).max())
    E = -torch.logsumexp(s, -1) / beta + 0.5 * (P * P).sum(-1) + const
    return P, E, eig, mass_count(p)


def jax_fixed_points(X: torch.Tensor, tol: float):
    """A function (β, starts) → the same as :func:`torch_fixed_points`, jitted in two parts (the
    descent, then the analysis of the K fixed points), or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)          # float32 arrays stay float32
    Xj = jnp.asarray(X.numpy())
    d = X.shape[1]
    log_n, half_m2 = math.log(X.shape[0]), 0.5 * float((X * X).sum(-1).max())

    @jax.jit
    def descend(beta, x):
        def cond(c):
            t, _, frozen = c
            return (t < STEPS) & ~jnp.all(frozen)

        def body(c):
            t, x, frozen = c
            new = jax.nn.softmax(beta * (x @ Xj.T), -1) @ Xj
            frozen = frozen | (jnp.linalg.norm(new - x, axis=-1) <= tol * jnp.maximum(jnp.linalg.norm(x, axis=-1), 1.0))
            return t + 1, jnp.where(frozen[:, None], x, new), frozen

        return jax.lax.while_loop(cond, body, (0, x, jnp.zeros(x.shape[0], bool)))[1]

    @jax.jit
    def analyse(beta, P):
        s = beta * (P @ Xj.T)
        p = jax.nn.softmax(s, -1)
        m = p @ Xj
        J = beta * (jnp.einsum("kn,ni,nj->kij", p, Xj, Xj) - m[:, :, None] * m[:, None, :])
        eig = jnp.linalg.eigvalsh(jnp.eye(d, dtype=Xj.dtype) - J)
        E = -jax.nn.logsumexp(s, -1) / beta + 0.5 * jnp.sum(P * P, -1) + log_n / beta + half_m2
        c = jnp.cumsum(-jnp.sort(-p, -1), -1)
        return E, eig, jnp.sum(c < 0.9, -1) + 1

    def run(beta: float, starts: torch.Tensor):
        x = np.asarray(descend(beta, jnp.asarray(starts.numpy())))
        P = x[greedy(x, MERGE)]
        return [np.asarray(v) for v in analyse(beta, jnp.asarray(P))]

    return run


def trial_data(N: int, P: int, trials: int, seed: int):
    """The patterns [trials, P, N], targets and 15 %-flipped starts [trials, N] that
    ``recall_rate`` draws for this seed (the same generator calls in the same order)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (trials, P, N), generator=g).to(torch.float64) * 2 - 1
    target = X[torch.arange(trials), torch.randint(P, (trials,), generator=g)]
    return X, target, capacity.corrupt(target, int(round(0.15 * N)), g)


def torch_recall(model: str, N: int, P: int, trials: int, seed: int, steps: int = 100) -> float:
    """``recall_rate`` written directly: the same patterns, starts, dynamics and criterion."""
    X, target, s = trial_data(N, P, trials, seed)
    conv = torch.zeros(trials, dtype=torch.bool)
    if model == "hebbian":
        W = X.transpose(1, 2) @ X / N
        W.diagonal(dim1=1, dim2=2).zero_()
        for _ in range(steps):
            old = s.clone()
            h = (W @ s.unsqueeze(-1)).squeeze(-1)
            for i in range(N):
                hi, si = h[:, i], s[:, i]
                new = torch.where(hi > 0, 1.0, torch.where(hi < 0, -1.0, si))
                h += (new - si).unsqueeze(-1) * W[:, :, i]
                s[:, i] = new
            conv = conv | (s == old).all(-1)
            if bool(conv.all()):
                break
        end = s
    else:
        tol = DEFAULT_TOL[torch.float64]
        x = s
        for t in range(1, steps + 1):
            p = torch.softmax((X @ x.unsqueeze(-1)).squeeze(-1), -1)
            new = (p.unsqueeze(-2) @ X).squeeze(-2)
            conv = conv | ((new - x).norm(dim=-1) <= tol * x.norm(dim=-1).clamp_min(1.0))
            x = torch.where(conv[:, None], x, new)
            if t % CHECK_EVERY == 0 and bool(conv.all()):
                break
        end = torch.sign(x)
    return float(((end == target).all(-1) & conv).double().mean())


def jax_recall(model: str, N: int, P: int, trials: int, seed: int, steps: int = 100):
    """A jitted function of (patterns, starts) with the same dynamics, or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    tol = DEFAULT_TOL[torch.float64]

    @jax.jit
    def hebb(X, s):
        W = jnp.einsum("tpi,tpj->tij", X, X) / N
        W = W * (1 - jnp.eye(N))

        def sweep(i, c):
            s, h = c
            hi, si = h[:, i], s[:, i]
            new = jnp.where(hi > 0, 1.0, jnp.where(hi < 0, -1.0, si))
            return s.at[:, i].set(new), h + (new - si)[:, None] * W[:, :, i]

        def body(c):
            t, s, conv = c
            new, _ = jax.lax.fori_loop(0, N, sweep, (s, jnp.einsum("tij,tj->ti", W, s)))
            return t + 1, new, conv | jnp.all(new == s, -1)

        _, s, conv = jax.lax.while_loop(lambda c: (c[0] < steps) & ~jnp.all(c[2]), body,
                                        (0, s, jnp.zeros(s.shape[0], bool)))
        return s, conv

    @jax.jit
    def modern(X, x):
        def body(c):
            t, x, conv = c
            p = jax.nn.softmax(jnp.einsum("tpn,tn->tp", X, x), -1)
            new = jnp.einsum("tp,tpn->tn", p, X)
            conv = conv | (jnp.linalg.norm(new - x, axis=-1) <= tol * jnp.maximum(jnp.linalg.norm(x, axis=-1), 1.0))
            return t + 1, jnp.where(conv[:, None], x, new), conv

        _, x, conv = jax.lax.while_loop(lambda c: (c[0] < steps) & ~jnp.all(c[2]), body,
                                        (0, x, jnp.zeros(x.shape[0], bool)))
        return jnp.sign(x), conv

    fn = hebb if model == "hebbian" else modern

    def run():
        X, target, s = trial_data(N, P, trials, seed)
        end, conv = fn(jnp.asarray(X.numpy()), jnp.asarray(s.numpy()))
        return float(np.mean(np.all(np.asarray(end) == target.numpy(), -1) & np.asarray(conv)))

    return run


# ------------------------------------------------------------------------------------------------
def patterns(N: int, d: int, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 3 * torch.randn(N, d, generator=g, dtype=dtype) / math.sqrt(d)


def workloads(dtype):
    """(name, {method: callable}, check) per row; check returns (K from hk, K from torch)."""
    tol = DEFAULT_TOL[dtype]
    g = torch.Generator().manual_seed(1)
    for N, d in ((20, 16), (100, 64), (1000, 64)):
        X = patterns(N, d, dtype)
        E = hk.HopfieldEnergy(X)
        starts = torch.randn(200, d, generator=g, dtype=dtype)
        jx = jax_fixed_points(X, tol)
        runs = {"hk": lambda E=E, s=starts: hk.fixed_points(E, 2.0, s),
                "torch": lambda X=X, s=starts: torch_fixed_points(X, 2.0, s, tol)}
        if jx is not None:
            runs["jax"] = lambda jx=jx, s=starts: jx(2.0, s)
        yield f"fixed_points {N} x {d}", runs, lambda r=runs: (len(r["hk"]()), r["torch"]()[0].shape[0])
    X = patterns(20, 16, dtype)
    E = hk.HopfieldEnergy(X)
    grid, _, _ = hk.grid_starts(X[0], X[1], X[2], n=50)
    jx = jax_fixed_points(X, tol)
    runs = {"hk": lambda: hk.basins(E, 2.0, grid), "torch": lambda: torch_fixed_points(X, 2.0, grid, tol)}
    if jx is not None:
        runs["jax"] = lambda: jx(2.0, grid)
    yield "basins 20 x 16 (2500 starts)", runs, lambda r=runs: (len(r["hk"]()), r["torch"]()[0].shape[0])
    betas = np.geomspace(0.1, 20.0, 12).tolist()
    starts = torch.randn(200, 16, generator=g, dtype=dtype)
    runs = {"hk": lambda: hk.beta_sweep(X, betas, starts),
            "torch": lambda: [torch_fixed_points(X, b, starts, tol) for b in betas]}
    if jx is not None:
        runs["jax"] = lambda: [jx(b, starts) for b in betas]
    yield "beta_sweep 20 x 16 (12 β)", runs, lambda r=runs: (int(r["hk"]().n_stable.sum()),
                                                          sum(int((v[2][:, 0] > 0).sum()) for v in r["torch"]()))


def capacity_workloads():
    for model, P in (("hebbian", 10), ("modern", 200)):
        runs = {"hk": lambda m=model, P=P: capacity.recall_rate(m, 100, P, trials=50, seed=0).rate,
                "torch": lambda m=model, P=P: torch_recall(m, 100, P, 50, 0)}
        jx = jax_recall(model, 100, P, 50, 0)
        if jx is not None:
            runs["jax"] = jx
        yield f"capacity {model} N=100 P={P}", runs, lambda r=runs: (r["hk"](), r["torch"]())


def main(argv: list[str] | None = None) -> list[tuple[str, str, tuple]]:
    """Print the table; returns (dtype, workload, check) per row."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="", help="comma-separated workload kinds: fixed_points, basins, beta_sweep, capacity")
    ap.add_argument("--settle", type=float, default=0.05, help="seconds of pause before each timed call")
    allocator_flag(ap)
    args = ap.parse_args(argv)
    alloc = apply_allocator(args)
    try:
        import jax
        jax_version = f"jax {jax.__version__}"
    except ImportError:
        jax_version = "jax not importable: its column is skipped"
    only = {w for w in args.only.split(",") if w}
    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; {jax_version}; {alloc}")
    print(f"ms per call (median of {args.repeats}); ratios: median per-repeat time ratio")
    print(f"{'dtype':>8} {'workload':<32} {'hk':>9} {'torch':>9} {'jax':>9} {'jax 1st':>9} {'hk/torch':>9} "
          f"{'hk/jax':>7}  check (hk, torch)")
    rows, out = [], []
    for dtype_name in args.dtypes.split(","):
        rows += [(dtype_name, w) for w in workloads(getattr(torch, dtype_name))]
    if "float64" in args.dtypes.split(","):
        rows += [("float64", w) for w in capacity_workloads()]
    for dtype_name, (name, runs, check) in rows:
        if only and name.split()[0] not in only:
            continue
        first = float("nan")
        if "jax" in runs:
            t0 = time.perf_counter()
            runs["jax"]()
            first = 1e3 * (time.perf_counter() - t0)
        samples = alternate_samples(runs, args.repeats, settle=args.settle)
        ms = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
        jx = "jax" in ms
        checked = check()
        out.append((dtype_name, name, checked))
        col = lambda k: f"{ms[k]:>9.2f}" if k in ms else f"{'-':>9}"
        print(f"{dtype_name:>8} {name:<32} {col('hk')} {col('torch')} {col('jax')} "
              f"{first if jx else float('nan'):>9.1f} {paired_ratio(samples, 'hk', 'torch'):>9.2f} "
              f"{paired_ratio(samples, 'hk', 'jax') if jx else float('nan'):>7.2f}  {checked}", flush=True)
    return out


if __name__ == "__main__":
    main()
