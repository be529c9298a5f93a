"""Attractor analysis: find fixed points, test their stability, classify them, measure basins.

- :func:`fixed_points` descends from many starts, merges the end points that are one fixed point,
  and for each fixed point reports its energy, gradient norm, the eigenvalues of the Hessian of E
  (and, when the energy has an update, of the update's Jacobian), whether it is stable, and its kind.
- Merging: an end point with residual r lies within about r/λ of its fixed point, λ the smallest
  eigenvalue of the Hessian there (the length of the Newton step). Two end points are one fixed
  point when they are closer than twice the sum of those distances (plus rounding), and never
  closer than a quarter of the smallest distance between two stored patterns allows: so the
  tolerance follows the convergence tolerance, the conditioning and the data.
- Kind ([R] §2, §4): from the softmax weights p = softmax(β Xᵀξ*), k = the fewest patterns that
  hold ``mass`` (0.9) of p. ``"single"`` if k = 1, ``"global"`` if k > N/2 (the paper's class I),
  else ``"metastable"`` (a mixture of a subset). Energies without softmax weights get ``"-"``.
- Stability: a fixed point is stable when the Hessian of E is positive definite (min eigenvalue
  > ``stable_tol``); for the Hopfield energy this is the same as the spectral radius of the update
  Jacobian J = β Var_p[x] being < 1, since ∇²E = I − J. Binary states (±1, e.g. a binary
  :class:`~hopfieldkit.DenseAMEnergy`) have no Hessian: a binary state is a fixed point when a sweep
  of the update changes nothing, and stable when no single flip lowers the energy
  (``flip_gaps``: E after flipping neuron i, minus E).
- A memory per sample (a :class:`~hopfieldkit.HopfieldEnergy` with patterns ``[B, N, d]``): the
  starts of every sample descend together, and the result is one :class:`FixedPoints` per sample.
- :func:`basins` gives the fraction of starts that end at each attractor; :func:`grid_starts`
  makes a 2-D grid of starts in the plane of three points for pictures of basins.
- :func:`beta_sweep` counts the stable fixed points of each kind as β varies (the phase diagram
  of [R] §2; small β: one global average, intermediate: metastable mixtures, large: one per pattern).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import hessian as func_hessian
from torch.func import jacrev, vmap

from . import _fast
from ._checks import check_beta, check_positive, check_tensor
from .descend import descend
from .energy import EnergyFn, has_update
from .hopfield import HopfieldEnergy
from .theory import contraction_beta, mass_count, well_separated_beta

KINDS = ("single", "metastable", "global")


@dataclass
class FixedPoints:
    """Fixed points found by :func:`fixed_points` (K of them, sorted by energy).

    Attributes:
        points: ``[K, d]`` the fixed points.
        energies: ``[K]`` E at each.
        grad_norms: ``[K]`` ‖∇E‖ at each (≈ 0 for a true fixed point; for binary states, the
            residual of the update, 0).
        hessian_eigvals: ``[K, d]`` eigenvalues of ∇²E, ascending (None for binary states).
        jacobian_eigvals: ``[K, d]`` eigenvalues (moduli, descending) of the update Jacobian, or None.
        flip_gaps: ``[K, d]`` for binary states, E(state with neuron i flipped) − E(state),
            ascending; None otherwise.
        stable: ``[K]`` bool: ∇²E positive definite; binary states: no single flip lowers E.
        kinds: K strings, ``"single" | "metastable" | "global"`` (``"-"`` without weights).
        weights: ``[K, N]`` softmax weights, or None.
        support: ``[K]`` k, patterns holding ``mass`` of the weights, or None.
        counts: ``[K]`` starts that ended at each point.
        labels: ``[n_starts]`` index of the point each start ended at (−1: did not converge).
        info: ``descent`` (the :class:`~hopfieldkit.Descent`), ``merge_tol`` (per point, the
            distance within which end points were taken as this point), ``unconverged``.
    """

    points: torch.Tensor
    energies: torch.Tensor
    grad_norms: torch.Tensor
    hessian_eigvals: torch.Tensor | None
    jacobian_eigvals: torch.Tensor | None
    stable: torch.Tensor
    kinds: list[str]
    weights: torch.Tensor | None
    support: torch.Tensor | None
    counts: torch.Tensor
    labels: torch.Tensor
    beta: float | torch.Tensor = 1.0
    flip_gaps: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def binary(self) -> bool:
        return self.flip_gaps is not None

    @property
    def fractions(self) -> torch.Tensor:
        """Share of the converged starts that ended at each point (basin sizes)."""
        return self.counts.to(self.energies.dtype) / self.counts.sum().clamp_min(1)

    def count(self, kind: str | None = None, stable_only: bool = True) -> int:
        """Number of fixed points (of one kind), stable ones only by default."""
        keep = [(k == kind or kind is None) and (bool(s) or not stable_only)
                for k, s in zip(self.kinds, self.stable)]
        return int(sum(keep))

    def plot_basins(self, U: torch.Tensor, V: torch.Tensor, ax=None):
        """Draw the basins of starts made by :func:`grid_starts` (``U``, ``V`` from it)."""
        import matplotlib.pyplot as plt

        if self.labels.numel() != U.numel():
            raise ValueError(f"labels has {self.labels.numel()} entries but the grid has {U.numel()}")
        ax = ax or plt.subplots(figsize=(4, 4))[1]
        lab = self.labels.reshape(U.shape).cpu().numpy()
        ax.pcolormesh(U.cpu().numpy(), V.cpu().numpy(), lab, cmap="tab20", shading="auto", vmin=-1, vmax=19)
        ax.set_xlabel("u (towards b)")
        ax.set_ylabel("v (towards c)")
        ax.set_title(f"basins of {self.count(stable_only=True)} attractors, β = {float(self.beta):.3g}")
        return ax

    def summary(self) -> str:
        """A table, one fixed point a row."""
        curv = "min flip dE" if self.binary else "min eig H"
        rows = [f"{'#':>3} {'kind':>10} {'k':>4} {'stable':>6} {'energy':>12} {'|grad|':>9} "
                f"{curv:>11} {'basin':>6}"]
        for i in range(len(self)):
            k = "-" if self.support is None else str(int(self.support[i]))
            c = self.flip_gaps[i, 0] if self.binary else self.hessian_eigvals[i, 0]
            rows.append(f"{i:>3} {self.kinds[i]:>10} {k:>4} {str(bool(self.stable[i])):>6} "
                        f"{float(self.energies[i]):>12.6g} {float(self.grad_norms[i]):>9.2e} "
                        f"{float(c):>11.4g} {float(self.fractions[i]):>6.3f}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        kinds = {k: self.kinds.count(k) for k in sorted(set(self.kinds))}
        return f"FixedPoints(n={len(self)}, kinds={kinds}, stable={int(self.stable.sum())})"


def classify(weights: torch.Tensor, mass: float = 0.9) -> tuple[list[str], torch.Tensor]:
    """Kind of each fixed point from its softmax weights ``[..., N]``; returns (kinds, k)."""
    check_tensor("weights", weights, min_dim=1)
    k = mass_count(weights, mass)
    N = weights.shape[-1]
    kinds = ["single" if int(ki) == 1 else "global" if int(ki) > N / 2 else "metastable"
             for ki in k.reshape(-1)]
    return kinds, k


def _greedy(points: torch.Tensor, ok: torch.Tensor, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy merge in order: point i joins the nearest earlier representative j when
    ‖p_i − p_j‖ ≤ radius_i + radius_j, else becomes one; returns (indices of the representatives,
    label of each point; −1 where not ``ok``).

    Computed one representative at a time: each point keeps its nearest representative so far,
    and the next representative is the first later point that does not join its nearest one (every
    point between two representatives has seen all representatives before it, so its decision is
    final). That is K passes over the points instead of a pass per point or an n × n matrix."""
    n = points.shape[0]
    P = points.detach().to(torch.float64).cpu().numpy()
    r = radius.detach().to(torch.float64).cpu().numpy()
    use = ok.detach().cpu().numpy().astype(bool)
    best = np.full(n, np.inf)                 # distance to the nearest representative so far
    reach = np.full(n, -np.inf)               # radius_i + that representative's radius
    near = np.full(n, -1, dtype=np.int64)     # its index among the representatives
    reps: list[int] = []
    start = 0
    while True:
        free = np.flatnonzero(use[start:] & ~(best[start:] <= reach[start:]))
        if free.size == 0:
            break
        first = start + int(free[0])
        reps.append(first)
        start = first + 1
        d = np.sqrt(((P[start:] - P[first]) ** 2).sum(-1))
        closer = d < best[start:]
        best[start:][closer] = d[closer]
        reach[start:][closer] = r[start:][closer] + r[first]
        near[start:][closer] = len(reps) - 1
    labels = np.full(n, -1, dtype=np.int64)
    labels[use] = near[use]
    labels[np.array(reps, dtype=np.int64)] = np.arange(len(reps))
    return torch.tensor(reps, dtype=torch.long), torch.from_numpy(labels)


def _pattern_gap(energy) -> float:
    """The smallest distance between two distinct stored patterns, when the energy has patterns."""
    X = getattr(energy, "patterns", None)
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.shape[0] < 2:
        return float("inf")
    mask = getattr(energy, "mask", None)

    def gap() -> float:
        Y = X.detach() if mask is None else X.detach()[mask]
        D = torch.cdist(Y, Y, compute_mode="donot_use_mm_for_euclid_dist")   # exact: no |a|²+|b|²−2ab cancellation
        D = D[D > 0]                                                           # (equal patterns are one)
        return float(D.min()) if D.numel() else float("inf")

    if isinstance(energy, torch.nn.Module):   # kept with the energy: a β sweep asks at every β
        return _fast.kept(energy, "pattern_gap", (X,) if mask is None else (X, mask), gap)
    return gap()


def _state_dim(energy) -> int | None:
    for name in ("dim",):
        v = getattr(energy, name, None)
        if isinstance(v, int):
            return v
    X = getattr(energy, "patterns", None)
    return X.shape[-1] if isinstance(X, torch.Tensor) else None


def is_binary(energy) -> bool:
    """The energy's states are ±1 vectors (its attribute ``binary`` is True)."""
    return getattr(energy, "binary", False) is True


def fixed_points(
    energy: EnergyFn,
    beta: float | torch.Tensor,
    inits: torch.Tensor,
    *,
    method: str = "auto",
    steps: int = 2000,
    tol: float | None = None,
    merge_tol: float | None = None,
    mass: float = 0.9,
    stable_tol: float | None = None,
) -> "FixedPoints | list[FixedPoints]":
    """Descend from each row of ``inits`` (``[n, d]``), merge the end points that are one fixed
    point, analyse each (module docstring).

    Args:
        energy: an energy with vector states (``event_dims = 1``); binary energies (``binary``
            True, ±1 states) are descended with their update and tested by single flips.
        beta: inverse temperature, a positive float.
        inits: ``[n, d]`` starting states (e.g. random, or noisy patterns), n ≥ 1. For a memory per
            sample (patterns ``[B, N, d]``): ``[n, d]`` (the same starts for every sample) or
            ``[n, B, d]``; the result is then a list of B :class:`FixedPoints`.
        method, steps, tol: passed to :func:`descend`.
        merge_tol: end points closer than this are one fixed point (default: from each end
            point's residual and Hessian, see the module docstring).
        mass: softmax mass for the kind (k = fewest patterns holding it), in (0, 1].
        stable_tol: Hessian eigenvalues above this count as positive (default 100·sqrt(eps)).
    """
    check_tensor("inits", inits, min_dim=2)
    batched = isinstance(energy, HopfieldEnergy) and energy.patterns.dim() > 2
    if batched and energy.patterns.dim() != 3:
        raise ValueError(f"fixed_points takes a memory per sample of shape [B, N, d]; got patterns "
                         f"{tuple(energy.patterns.shape)}")
    X = getattr(energy, "patterns", None)
    if not batched and isinstance(X, torch.Tensor) and X.dim() > 2:
        raise ValueError(f"fixed_points analyses one memory (patterns [N, d]) or, for a HopfieldEnergy, one per "
                         f"sample [B, N, d]; got patterns {tuple(X.shape)}: pass one memory at a time")
    if inits.dim() != 2 and not (batched and inits.dim() == 3):
        raise ValueError(f"inits must have shape [n, d]" + (" or [n, B, d]" if batched else "")
                         + f", got {tuple(inits.shape)}")
    if inits.shape[0] < 1:
        raise ValueError("inits must hold at least one start, got 0 rows")
    d = _state_dim(energy)
    if d is not None and inits.shape[-1] != d:
        raise ValueError(f"inits must have shape [n, {d}] (the energy's states have dimension {d}), "
                         f"got {tuple(inits.shape)}")
    beta = check_beta(beta, ref=inits)
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be one positive number here, got a tensor of shape {tuple(beta.shape)}")
        beta = float(beta)
    if isinstance(mass, bool) or not isinstance(mass, (int, float)) or not (0 < mass <= 1):
        raise ValueError(f"mass must be a number in (0, 1], got {mass!r}")
    if merge_tol is not None:
        check_positive("merge_tol", merge_tol)
    if stable_tol is not None and (isinstance(stable_tol, bool) or not isinstance(stable_tol, (int, float))):
        raise TypeError(f"stable_tol must be a number, got {type(stable_tol).__name__}")
    if getattr(energy, "event_dims", 1) != 1:
        raise ValueError("fixed_points analyses vector states (event_dims = 1)")
    binary = is_binary(energy)
    if binary:
        if not bool(((inits == 1) | (inits == -1)).all()):
            raise ValueError("inits must hold only -1 and +1 entries for a binary energy")
        if method not in ("auto", "update"):
            raise ValueError(f"a binary energy descends with its update (method='update'), got method={method!r}")

    if batched:
        B = energy.patterns.shape[0]
        starts = inits.unsqueeze(1).expand(-1, B, -1) if inits.dim() == 2 else inits
        if starts.shape[1] != B:
            raise ValueError(f"inits [n, B, d] must have B = {B} (one start set per sample), got {tuple(inits.shape)}")
        run = descend(energy, starts, beta, method=method, steps=steps, tol=tol, record=False)
        return [_analyse(energy.sample(b), beta, run.xi[:, b], run.converged[:, b], run.residual[:, b],
                         run, tol, merge_tol, mass, stable_tol, binary)
                for b in range(B)]
    run = descend(energy, inits, beta, method=method, steps=steps, tol=tol, record=False)
    return _analyse(energy, beta, run.xi, run.converged, run.residual, run, tol, merge_tol, mass, stable_tol, binary)


def _curvature(energy, beta, points: torch.Tensor):
    """(∇E, ∇²E symmetrised, update Jacobian or None) at ``points`` [K, d]."""
    K, d = points.shape
    if isinstance(energy, HopfieldEnergy):   # ∇²E = I − J: the Jacobian once
        J = energy.jacobian(points, beta)
        return energy.grad(points, beta), torch.eye(d, dtype=J.dtype, device=J.device) - J, J
    grads = torch.func.grad(lambda p: energy(p, beta).sum())(points)
    H = vmap(func_hessian(lambda p: energy(p, beta)))(points) if K else points.new_zeros(0, d, d)
    J = vmap(jacrev(lambda p: energy.update(p, beta)))(points) if has_update(energy) and K else None
    return grads, H, J


def _analyse(energy, beta, x, converged, residual, run, tol, merge_tol, mass, stable_tol, binary) -> FixedPoints:
    x = x.detach()
    n, d = x.shape
    eps = float(torch.finfo(x.dtype).eps)
    scale = x.norm(dim=-1).clamp_min(1.0)
    if merge_tol is not None:
        reps, labels = _greedy(x, converged, torch.full((n,), 0.5 * merge_tol, dtype=x.dtype))
        radius = torch.full((reps.numel(),), merge_tol, dtype=x.dtype)
    elif binary:
        reps, labels = _greedy(x, converged, torch.zeros(n, dtype=x.dtype))   # equal states only
        radius = torch.zeros(reps.numel(), dtype=x.dtype)
    else:
        # stage 1: end points within rounding of each other, or within the residual they converged to
        tight = 16 * eps * scale + residual.detach().nan_to_num(posinf=0.0).clamp_min(0)
        reps, labels = _greedy(x, converged, tight)
    points = x[reps]
    K = points.shape[0]
    h_all = None
    if binary or K == 0:
        grads = H = J = None
    else:
        grads, H, J = _curvature(energy, beta, points)
        H = 0.5 * (H + H.transpose(-1, -2))
    if not binary and merge_tol is None and K > 1:
        # stage 2: each representative's distance to its fixed point, r/λ (the Newton step)
        h_all = torch.linalg.eigvalsh(H)
        lam = h_all[:, 0].abs().clamp_min(1e-3)
        member = labels >= 0                               # (the converged end points)
        group_res = torch.zeros(K, dtype=x.dtype).scatter_reduce(
            0, labels[member], residual.detach()[member].to(x.dtype), "amax")   # largest residual per point
        radius = 2 * group_res / lam + 16 * eps * scale[reps]
        radius = radius.clamp(max=0.25 * _pattern_gap(energy))
        keep, merged = _greedy(points, torch.ones(K, dtype=torch.bool), radius)
        labels = torch.where(labels >= 0, merged[labels.clamp_min(0)], labels)
        points, H, grads, radius, h_all = points[keep], H[keep], grads[keep], radius[keep], h_all[keep]
        J = None if J is None else J[keep]
        K = points.shape[0]
    elif not binary and merge_tol is None:
        radius = 16 * eps * scale[reps] if K else x.new_zeros(0)
    counts = torch.bincount(labels[labels >= 0], minlength=K) if K else torch.zeros(0, dtype=torch.long)

    energies = energy(points, beta).detach() if K else x.new_zeros(0)
    flip = h_eig = j_eig = None
    if binary:
        flips = points.unsqueeze(1) * (1 - 2 * torch.eye(d, dtype=x.dtype, device=x.device))   # [K, d, d]
        flip = (energy(flips, beta).detach() - energies.unsqueeze(-1)).sort(dim=-1).values if K else x.new_zeros(0, d)
        slack = 1e3 * eps * energies.abs().clamp_min(1.0)
        stable = (flip[:, 0] >= -slack) if K else torch.zeros(0, dtype=torch.bool)
        grad_norms = (energy.update(points, beta) - points).norm(dim=-1) if K else x.new_zeros(0)
    else:
        h_eig = h_all if h_all is not None else torch.linalg.eigvalsh(H) if K else x.new_zeros(0, d)
        if J is not None and isinstance(energy, HopfieldEnergy):   # J = I − ∇²E, symmetric
            j_eig = (1 - h_eig).abs().sort(dim=-1, descending=True).values
        elif J is not None:
            j_eig = torch.linalg.eigvals(J).abs().sort(dim=-1, descending=True).values if K else J.new_zeros(0, d)
        tol_s = 1e2 * eps ** 0.5 if stable_tol is None else stable_tol
        stable = h_eig[:, 0] > tol_s if K else torch.zeros(0, dtype=torch.bool)
        grad_norms = grads.detach().norm(dim=-1) if K else x.new_zeros(0)

    weights = support = None
    kinds = ["-"] * K
    if hasattr(energy, "weights") and K:
        weights = energy.weights(points, beta).detach()
        kinds, support = classify(weights, mass)

    order = torch.argsort(energies)
    remap = torch.empty_like(order)
    remap[order] = torch.arange(K)
    labels = torch.where(labels >= 0, remap[labels.clamp_min(0)] if K else labels, labels)
    return FixedPoints(
        points=points[order],
        energies=energies[order],
        grad_norms=grad_norms[order],
        hessian_eigvals=None if h_eig is None else h_eig[order],
        jacobian_eigvals=None if j_eig is None else j_eig[order],
        stable=stable[order],
        kinds=[kinds[int(i)] for i in order],
        weights=None if weights is None else weights[order],
        support=None if support is None else support[order],
        counts=counts[order],
        labels=labels,
        beta=beta,
        flip_gaps=None if flip is None else flip[order],
        info={"descent": run, "merge_tol": radius[order] if K else radius,
              "unconverged": int((~converged).sum())},
    )


def basins(energy: EnergyFn, beta: float | torch.Tensor, inits: torch.Tensor, **kw) -> FixedPoints:
    """Which attractor each start ends at: ``result.labels`` (per start) and ``result.fractions``."""
    return fixed_points(energy, beta, inits, **kw)


def grid_starts(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, n: int = 50,
                margin: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An ``n × n`` grid of states in the plane through a, b, c (e.g. three patterns).

    Returns (states ``[n*n, d]``, u, v) with state = a + u (b − a) + v (c − a), u, v in
    [−margin, 1 + margin]; reshape labels to ``[n, n]`` to draw the basins.
    """
    for name, v in (("a", a), ("b", b), ("c", c)):
        check_tensor(name, v, ndim=1)
    if not (a.shape == b.shape == c.shape) or not (a.dtype == b.dtype == c.dtype):
        raise ValueError(f"a, b, c must be states of one shape and dtype, got {tuple(a.shape)} {a.dtype}, "
                         f"{tuple(b.shape)} {b.dtype}, {tuple(c.shape)} {c.dtype}")
    check_positive("n", n, integer=True)
    check_positive("margin", margin, allow_zero=True)
    t = torch.linspace(-margin, 1 + margin, n, dtype=a.dtype, device=a.device)
    U, V = torch.meshgrid(t, t, indexing="xy")
    states = a + U.reshape(-1, 1) * (b - a) + V.reshape(-1, 1) * (c - a)
    return states, U, V


@dataclass
class BetaSweep:
    """Fixed-point census per β (see :func:`beta_sweep`)."""

    betas: torch.Tensor
    n_stable: torch.Tensor                 # [B] stable fixed points per β
    counts: dict[str, torch.Tensor]        # kind -> [B] stable fixed points of that kind
    mean_support: torch.Tensor             # [B] mean k over the stable fixed points
    results: list[FixedPoints]
    beta_contraction: float = float("nan")  # below: one global fixed point ([R] Lemma A3)
    beta_separated: float = float("nan")    # from here on every pattern is well separated ([R] Lemma A7)

    def table(self) -> str:
        rows = [f"{'beta':>10} {'stable':>6} {'single':>6} {'metastable':>10} {'global':>6} {'mean k':>7}"]
        for i, b in enumerate(self.betas.tolist()):
            rows.append(f"{b:>10.4g} {int(self.n_stable[i]):>6} {int(self.counts['single'][i]):>6} "
                        f"{int(self.counts['metastable'][i]):>10} {int(self.counts['global'][i]):>6} "
                        f"{float(self.mean_support[i]):>7.2f}")
        return "\n".join(rows)

    def plot(self, ax=None, theory: bool = True):
        """Stacked counts of stable fixed points of each kind against β (log axis); ``theory`` marks
        the Lemma A3 contraction β = 1/m_max² and the β from which every pattern is well separated."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(6, 3.5))[1]
        b = self.betas.numpy()
        bottom = torch.zeros_like(self.betas).numpy()
        colors = {"single": "tab:blue", "metastable": "tab:orange", "global": "tab:green"}
        for kind in KINDS:
            c = self.counts[kind].numpy()
            ax.bar(range(len(b)), c, bottom=bottom, color=colors[kind], label=kind)
            bottom = bottom + c
        ax.set_xticks(range(len(b)), [f"{v:.3g}" for v in b], rotation=45)
        if theory and len(b) > 1:
            logb = np.log(b)
            marks = (("Lemma A3: contraction below", self.beta_contraction, ":"),
                     ("Lemma A7: all separated above", self.beta_separated, "--"))
            for label, value, ls in marks:
                if math.isfinite(value) and logb[0] <= math.log(value) <= logb[-1]:
                    ax.axvline(float(np.interp(math.log(value), logb, np.arange(len(b)))), color="k", ls=ls, lw=1,
                               label=f"{label} (β = {value:.3g})")
        ax.set_xlabel("β")
        ax.set_ylabel("stable fixed points")
        ax.legend()
        return ax


def beta_sweep(patterns: torch.Tensor, betas, inits: torch.Tensor | int = 200, *,
               seed: int = 0, mass: float = 0.9, steps: int = 2000, progress: bool = False) -> BetaSweep:
    """Number and kind of the stable fixed points of the Hopfield energy for each β.

    ``inits``: a ``[n, d]`` tensor of starts, or a number of random starts drawn (with ``seed``)
    as uniform random convex combinations of the patterns plus noise of the patterns' scale.
    """
    X = check_tensor("patterns", patterns, ndim=2)
    try:
        betas = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"betas must be a list of positive numbers, got {type(betas).__name__}") from None
    if betas.numel() == 0 or not bool((torch.isfinite(betas) & (betas > 0)).all()):
        raise ValueError("betas must be a non-empty list of positive finite numbers")
    check_positive("steps", steps, integer=True)
    if isinstance(inits, bool) or not isinstance(inits, (int, torch.Tensor)):
        raise TypeError(f"inits must be a number of random starts or an [n, d] tensor, got {type(inits).__name__}")
    if isinstance(inits, int):
        check_positive("inits", inits, integer=True)
        g = torch.Generator().manual_seed(seed)
        w = -torch.log(torch.rand(inits, X.shape[0], generator=g, dtype=torch.float64))  # Dirichlet(1)
        w = w / w.sum(-1, keepdim=True)
        noise = torch.randn(inits, X.shape[1], generator=g, dtype=X.dtype) * X.std()
        inits = (w.to(X.dtype) @ X.cpu() + noise).to(X.device)
    energy = HopfieldEnergy(X)
    results = []
    it = betas.tolist()
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="beta sweep")
    for b in it:
        results.append(fixed_points(energy, float(b), inits, steps=steps, mass=mass))
    counts = {k: torch.tensor([r.count(k) for r in results]) for k in KINDS}
    n_stable = torch.tensor([int(r.stable.sum()) for r in results])
    mean_k = torch.tensor([float(r.support[r.stable].double().mean()) if bool(r.stable.any()) else float("nan")
                           for r in results])
    return BetaSweep(betas, n_stable, counts, mean_k, results, contraction_beta(X), well_separated_beta(X))
