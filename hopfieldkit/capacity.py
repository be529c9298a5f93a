"""Empirical capacity: how often a memory recalls a stored pattern from a corrupted copy, under a
stated protocol.

Capacity is a protocol, not one number. Every result here carries its protocol: N neurons, the
model (a classical learning rule, a dense associative memory, or the continuous modern Hopfield
network), the load P, the corruption (the exact number round(corruption·N) of flipped bits, at
random positions), the dynamics, the success criterion, the number of trials and the seed.

Per trial: P independent uniform ±1 patterns; one of them, chosen at random, is corrupted and
recalled. Success: ``"exact"``, the end state equals the pattern; ``"overlap"``, its overlap with the
pattern is at least 0.95. The rate is the fraction of successful trials (standard error
√(r(1 − r)/trials)).

Models and their dynamics:

- ``"hebbian" | "storkey" | "pseudo_inverse" | "perceptron"``: :class:`~hopfieldkit.PairwiseEnergy`
  with that rule's W, run by ``descend`` with ``dynamics`` ``"async"`` (sequential sweeps),
  ``"async-random"`` (a random order per sweep) or ``"sync"`` (a 2-cycle counts as a failure). All
  trials run as one stack of networks (the perceptron's W is learned per trial).
- ``"dense-n"`` (n = 2, 3, 4, …): :class:`~hopfieldkit.DenseAMEnergy` with F(z) = zⁿ; ``"dense-exp"``:
  F = exp, in its log form (``F="lse"``: the same minima and updates, no overflow). Asynchronous
  sweeps; all trials as one stack of memories (``patterns [trials, P, N]``). With
  ``"async-random"`` every sweep draws one permutation for all trials, as for the classical rules.
- ``"modern"``: the continuous modern Hopfield network (:class:`~hopfieldkit.HopfieldEnergy` on the
  ±1 patterns, β = ``beta``, default 1: the scores are N·m^μ, so the softmax is nearly one-hot),
  CCCP updates from the corrupted pattern; the recalled pattern is sign(ξ*). All trials as one
  batch of memories.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import torch

from . import classical
from .dense import DenseAMEnergy
from .descend import descend
from .hopfield import HopfieldEnergy
from .pairwise import PairwiseEnergy

RULES = ("hebbian", "storkey", "pseudo_inverse", "perceptron")
DYNAMICS = ("async", "async-random", "sync")
CRITERIA = ("exact", "overlap")


@dataclass(frozen=True)
class Protocol:
    """Everything that defines one capacity measurement."""

    model: str
    N: int
    P: int
    corruption: float
    dynamics: str
    criterion: str
    trials: int
    seed: int
    beta: float | None = None
    steps: int = 100


@dataclass
class Recall:
    """The outcome of :func:`recall_rate`: ``rate`` ± ``stderr`` over ``trials``, the per-trial
    ``successes`` and final ``overlaps`` with the target, and the :class:`Protocol`."""

    rate: float
    stderr: float
    successes: torch.Tensor
    overlaps: torch.Tensor
    protocol: Protocol

    def as_dict(self) -> dict:
        return {"rate": self.rate, "stderr": self.stderr, **asdict(self.protocol)}


def check_model(model: str) -> str:
    if model in RULES or model in ("modern", "dense-exp"):
        return model
    if model.startswith("dense-"):
        try:
            n = int(model.split("-", 1)[1])
        except ValueError:
            n = 0
        if n >= 2:
            return model
    raise ValueError(f"model must be one of {list(RULES)}, 'dense-<n>' (n >= 2), 'dense-exp' or 'modern'; got {model!r}")


def corrupt(patterns: torch.Tensor, flips: int, generator: torch.Generator) -> torch.Tensor:
    """Each row of ``patterns`` ``[T, N]`` with exactly ``flips`` bits flipped at random positions."""
    T, N = patterns.shape
    pos = torch.rand(T, N, generator=generator).argsort(-1)[:, :flips]
    sign = torch.ones(T, N, dtype=patterns.dtype)
    sign.scatter_(1, pos, -1.0)
    return patterns * sign


def recall_rate(model: str, N: int, P: int, *, corruption: float = 0.15, dynamics: str = "async",
                criterion: str = "exact", trials: int = 20, seed: int = 0, beta: float | None = None,
                steps: int = 100) -> Recall:
    """The fraction of trials in which ``model`` recalls a stored pattern (module docstring).
    ``beta``: the modern network's β (default 1); unused by the binary models. ``steps``: the most
    sweeps or updates; a state that has not settled by then counts as a failure."""
    check_model(model)
    for name, v in (("N", N), ("P", P), ("trials", trials), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not 0 <= corruption < 0.5:
        raise ValueError(f"corruption must be a fraction in [0, 0.5), got {corruption!r}")
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {list(DYNAMICS)}, got {dynamics!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (trials, P, N), generator=g).to(torch.float64) * 2 - 1
    target = X[torch.arange(trials), torch.randint(P, (trials,), generator=g)]          # [T, N]
    start = corrupt(target, int(round(corruption * N)), g)
    order = {"order": "random", "generator": g} if dynamics == "async-random" else None
    method = "sync" if dynamics == "sync" else "async"
    ok = torch.ones(trials, dtype=torch.bool)
    if model in RULES:
        if model == "perceptron":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", classical.NotStoredWarning)   # overload is what is measured
                W = torch.stack([classical.perceptron(x, seed=seed) for x in X])
        else:
            W = getattr(classical, model)(X)
        run = descend(PairwiseEnergy(W), start, 1.0, method=method, steps=steps, record=False, options=order)
        end = run.xi
        ok = run.converged
    elif model == "modern":
        b = 1.0 if beta is None else float(beta)
        run = descend(HopfieldEnergy(X), start, b, method="update", steps=steps, record=False)
        end = torch.sign(run.xi)
        ok = run.converged
    else:
        F, n = ("lse", 2) if model == "dense-exp" else ("poly", int(model.split("-")[1]))
        run = descend(DenseAMEnergy(X, F=F, n=n), start, 1.0, method=method, steps=steps, record=False,
                      options=order)                                 # one memory per trial, all at once
        end = run.xi
        ok = run.converged
    m = (end * target).sum(-1) / N
    success = (end == target).all(-1) if criterion == "exact" else m >= 0.95
    success = success & ok
    rate = float(success.to(torch.float64).mean())
    proto = Protocol(model, N, P, float(corruption), dynamics, criterion, trials, seed,
                     (1.0 if beta is None else float(beta)) if model == "modern" else None, steps)
    return Recall(rate, math.sqrt(rate * (1 - rate) / trials), success, m, proto)


@dataclass
class CapacityCurve:
    """Recall rate against the load P (:func:`capacity_curve`)."""

    loads: list[int]
    rates: list[float]
    stderr: list[float]
    protocol: dict = field(default_factory=dict)

    def plot(self, ax=None, label: str | None = None, per_neuron: bool = True, **kw):
        """Rate against α = P/N (or P), with error bars; returns the axes."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3.2))[1]
        N = self.protocol["N"]
        x = [p / N for p in self.loads] if per_neuron else self.loads
        ax.errorbar(x, self.rates, yerr=self.stderr, marker="o", capsize=2, label=label or self.protocol["model"], **kw)
        ax.set_xlabel("load α = P/N" if per_neuron else "patterns P")
        ax.set_ylabel(f"recall rate ({self.protocol['criterion']})")
        return ax


def capacity_curve(model: str, N: int, loads, *, progress: bool = False, **kw) -> CapacityCurve:
    """:func:`recall_rate` at every load in ``loads`` (seeds seed, seed + 1, …), the protocol
    kept; ``progress`` shows a bar."""
    loads = [int(p) for p in loads]
    if not loads:
        raise ValueError("loads must name at least one P")
    it = loads
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(loads, desc=f"capacity {model} N={N}")
    seed = kw.pop("seed", 0)
    rows = [recall_rate(model, N, P, seed=seed + i, **kw) for i, P in enumerate(it)]
    proto = asdict(rows[0].protocol)
    proto.pop("P")
    proto["seed"] = f"{seed} + index of the load"
    return CapacityCurve(loads, [r.rate for r in rows], [r.stderr for r in rows], proto)


def largest_recalled(model: str, N: int, *, threshold: float = 0.9, start: int = 1, limit: int = 1 << 16,
                     **kw) -> int:
    """The largest P whose recall rate is at least ``threshold``: P doubles from ``start`` until the
    rate falls below it (or P reaches ``limit``), then bisection between the last two loads. The
    rate is not monotone in P trial by trial, so this is the largest P found by that search."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    good, P = 0, max(1, int(start))
    while P <= limit and recall_rate(model, N, P, **kw).rate >= threshold:
        good, P = P, 2 * P
    if good == 0:
        return 0
    lo, hi = good, min(P, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if recall_rate(model, N, mid, **kw).rate >= threshold:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class Basin:
    """The outcome of :func:`basin_radius`: the largest corruption (fraction of flipped bits)
    recalled in at least ``threshold`` of the trials (``nan`` when not even the uncorrupted pattern
    is), the corruptions tried with their rates, and the protocol of the last one."""

    radius: float
    corruptions: list[float]
    rates: list[float]
    protocol: dict


def basin_radius(model: str, N: int, P: int, *, threshold: float = 0.9, step: float = 0.025, **kw) -> Basin:
    """Basin size: :func:`recall_rate` at corruption 0, ``step``, 2·``step``, … (below 0.5) until the
    rate falls below ``threshold``. Every corruption uses the same seed, so the same patterns and
    targets: only the flips differ. Other keywords go to :func:`recall_rate` (criterion, trials, …)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < 0.5:
        raise ValueError(f"step must be a fraction in (0, 0.5), got {step!r}")
    if "corruption" in kw:
        raise ValueError("basin_radius scans the corruption itself; do not pass corruption")
    tried, rates, radius, r = [], [], float("nan"), None
    k = 0
    while k * step < 0.5:
        c = round(k * step, 12)
        r = recall_rate(model, N, P, corruption=c, **kw)
        tried.append(c)
        rates.append(r.rate)
        if r.rate < threshold:
            break
        radius = c
        k += 1
    return Basin(radius, tried, rates, asdict(r.protocol))
