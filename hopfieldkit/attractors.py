"""Attractor analysis: find fixed points, test their stability, classify them, measure basins.

- :func:`fixed_points` descends from many starts, merges the end points that coincide, and for
  each fixed point reports its energy, gradient norm, the eigenvalues of the Hessian of E (and,
  when the energy has an update, of the update's Jacobian), whether it is stable, and its kind.
- Kind ([R] §2, §4): from the softmax weights p = softmax(β Xᵀξ*), k = the fewest patterns that
  hold ``mass`` (0.9) of p. ``"single"`` if k = 1, ``"global"`` if k > N/2 (the paper's class I),
  else ``"metastable"`` (a mixture of a subset). Energies without softmax weights get ``"-"``.
- Stability: a fixed point is stable when the Hessian of E is positive definite (min eigenvalue
  > ``stable_tol``); for the Hopfield energy this is the same as the spectral radius of the update
  Jacobian J = β Var_p[x] being < 1, since ∇²E = I − J (SPEC_HOPFIELD §1.8.2).
- :func:`basins` gives the fraction of starts that end at each attractor; :func:`grid_starts`
  makes a 2-D grid of starts in the plane of three points for pictures of basins.
- :func:`beta_sweep` counts the stable fixed points of each kind as β varies (the phase diagram
  of [R] §2; small β: one global average, intermediate: metastable mixtures, large: one per pattern).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.func import hessian as func_hessian
from torch.func import jacrev, vmap

from ._checks import check_beta, check_positive, check_tensor
from .descend import descend
from .energy import EnergyFn, has_update
from .hopfield import HopfieldEnergy
from .theory import mass_count

KINDS = ("single", "metastable", "global")


@dataclass
class FixedPoints:
    """Fixed points found by :func:`fixed_points` (K of them, sorted by energy).

    Attributes:
        points: ``[K, d]`` the fixed points.
        energies: ``[K]`` E at each.
        grad_norms: ``[K]`` ‖∇E‖ at each (≈ 0 for a true fixed point).
        hessian_eigvals: ``[K, d]`` eigenvalues of ∇²E, ascending.
        jacobian_eigvals: ``[K, d]`` eigenvalues (moduli, descending) of the update Jacobian, or None.
        stable: ``[K]`` bool, ∇²E positive definite.
        kinds: K strings, ``"single" | "metastable" | "global"`` (``"-"`` without weights).
        weights: ``[K, N]`` softmax weights, or None.
        support: ``[K]`` k, patterns holding ``mass`` of the weights, or None.
        counts: ``[K]`` starts that ended at each point.
        labels: ``[n_starts]`` index of the point each start ended at (−1: did not converge).
    """

    points: torch.Tensor
    energies: torch.Tensor
    grad_norms: torch.Tensor
    hessian_eigvals: torch.Tensor
    jacobian_eigvals: torch.Tensor | None
    stable: torch.Tensor
    kinds: list[str]
    weights: torch.Tensor | None
    support: torch.Tensor | None
    counts: torch.Tensor
    labels: torch.Tensor
    beta: float | torch.Tensor = 1.0
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.points.shape[0]

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
        rows = [f"{'#':>3} {'kind':>10} {'k':>4} {'stable':>6} {'energy':>12} {'|grad|':>9} "
                f"{'min eig H':>10} {'basin':>6}"]
        for i in range(len(self)):
            k = "-" if self.support is None else str(int(self.support[i]))
            rows.append(f"{i:>3} {self.kinds[i]:>10} {k:>4} {str(bool(self.stable[i])):>6} "
                        f"{float(self.energies[i]):>12.6g} {float(self.grad_norms[i]):>9.2e} "
                        f"{float(self.hessian_eigvals[i, 0]):>10.4g} {float(self.fractions[i]):>6.3f}")
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


def _dedup(points: torch.Tensor, ok: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy merge of end points closer than ``tol``; returns (representatives, labels)."""
    labels = torch.full((points.shape[0],), -1, dtype=torch.long)
    reps: list[torch.Tensor] = []
    for i in range(points.shape[0]):
        if not bool(ok[i]):
            continue
        if reps:
            dist = (torch.stack(reps) - points[i]).norm(dim=-1)
            j = int(dist.argmin())
            if float(dist[j]) <= tol:
                labels[i] = j
                continue
        reps.append(points[i])
        labels[i] = len(reps) - 1
    if not reps:
        return points[:0], labels
    return torch.stack(reps), labels


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
) -> FixedPoints:
    """Descend from each row of ``inits`` (``[n, d]``), merge coinciding end points, analyse each.

    Args:
        energy: an energy with vector states (``event_dims = 1``).
        beta: inverse temperature.
        inits: ``[n, d]`` starting states (e.g. random, or noisy patterns).
        method, steps, tol: passed to :func:`descend`.
        merge_tol: end points closer than this are one fixed point (default √tol · max(1, ‖ξ‖)).
        mass: softmax mass for the kind (k = fewest patterns holding it).
        stable_tol: Hessian eigenvalues above this count as positive (default 1e3 · sqrt(eps)·…).
    """
    check_tensor("inits", inits, ndim=2)
    beta = check_beta(beta, ref=inits)
    check_positive("mass", mass)
    if getattr(energy, "event_dims", 1) != 1:
        raise ValueError("fixed_points analyses vector states (event_dims = 1)")
    run = descend(energy, inits, beta, method=method, steps=steps, tol=tol, record=False)
    x = run.xi.detach()
    eps = torch.finfo(x.dtype).eps
    scale = max(1.0, float(x.norm(dim=-1).max()))
    if merge_tol is None:
        merge_tol = max(1e3 * float(eps) ** 0.5, 10 * (tol or (1e-10 if x.dtype == torch.float64 else 1e-5))) * scale
    points, labels = _dedup(x, run.converged, merge_tol)
    K, d = points.shape
    counts = torch.bincount(labels[labels >= 0], minlength=K) if K else torch.zeros(0, dtype=torch.long)

    energies = energy(points, beta).detach()
    if isinstance(energy, HopfieldEnergy):
        grads = energy.grad(points, beta)
        H = energy.hessian(points, beta)
        J = energy.jacobian(points, beta)
    else:
        grads = torch.func.grad(lambda p: energy(p, beta).sum())(points)
        H = vmap(func_hessian(lambda p: energy(p, beta)))(points) if K else points.new_zeros(0, d, d)
        J = (vmap(jacrev(lambda p: energy.update(p, beta)))(points)
             if has_update(energy) and K and getattr(energy, "state", "") != "binary" else None)
    H = 0.5 * (H + H.transpose(-1, -2))
    h_eig = torch.linalg.eigvalsh(H) if K else H.new_zeros(0, d)
    j_eig = None
    if J is not None:
        j_eig = torch.linalg.eigvals(J).abs().sort(dim=-1, descending=True).values if K else J.new_zeros(0, d)
    if stable_tol is None:
        stable_tol = 1e2 * float(eps) ** 0.5
    stable = h_eig[:, 0] > stable_tol if K else torch.zeros(0, dtype=torch.bool)

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
        grad_norms=grads.detach().norm(dim=-1)[order],
        hessian_eigvals=h_eig[order],
        jacobian_eigvals=None if j_eig is None else j_eig[order],
        stable=stable[order],
        kinds=[kinds[int(i)] for i in order],
        weights=None if weights is None else weights[order],
        support=None if support is None else support[order],
        counts=counts[order],
        labels=labels,
        beta=beta,
        info={"descent": run, "merge_tol": merge_tol, "unconverged": int((~run.converged).sum())},
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

    def table(self) -> str:
        rows = [f"{'beta':>10} {'stable':>6} {'single':>6} {'metastable':>10} {'global':>6} {'mean k':>7}"]
        for i, b in enumerate(self.betas.tolist()):
            rows.append(f"{b:>10.4g} {int(self.n_stable[i]):>6} {int(self.counts['single'][i]):>6} "
                        f"{int(self.counts['metastable'][i]):>10} {int(self.counts['global'][i]):>6} "
                        f"{float(self.mean_support[i]):>7.2f}")
        return "\n".join(rows)

    def plot(self, ax=None):
        """Stacked counts of stable fixed points of each kind against β (log axis)."""
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
    betas = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    if betas.numel() == 0 or not bool((betas > 0).all()):
        raise ValueError("betas must be a non-empty list of positive numbers")
    if isinstance(inits, int):
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
    return BetaSweep(betas, n_stable, counts, mean_k, results)
