"""Classical associative memory: learning rules for the pairwise network, overlaps, and a census of
its fixed points.

Patterns are the rows of ``patterns`` ``[P, N]`` with ±1 entries (ξ^μ, μ = 1 … P); every rule
returns couplings W ``[N, N]`` for :class:`~hopfieldkit.PairwiseEnergy` (symmetric with zero
diagonal unless stated). Overlap m^μ(s) = ξ^μ·s / N.

    hebbian:        W = (1/N) Σ_μ ξ^μ ξ^μᵀ, diag W = 0                           (Hopfield 1982)
    storkey:        one pattern at a time, W_ij += (1/N)(ξ_i ξ_j − ξ_i h_ji − h_ij ξ_j),
                    h_ij = Σ_{k ≠ i, j} W_ik ξ_k, diag W = 0                       (Storkey 1997)
    pseudo_inverse: W = Ξ (ΞᵀΞ)⁻¹ Ξᵀ, Ξ = [ξ¹ … ξ^P] (N × P), the projection onto the patterns'
                    span, diagonal removed by default           (Personnaz, Guyon, Dreyfus 1985)
    perceptron:     per neuron i, w_i ← w_i + (1/N) ξ^μ_i ξ^μ (w_ii = 0) for every pattern with
                    ξ^μ_i h^μ_i ≤ κ ‖w_i‖, until all are stable (κ = 0: each pattern a fixed point);
                    ``symmetric=True`` keeps W = (W + Wᵀ)/2 after each epoch, so that the energy
                    argument holds (it then stores fewer patterns than Gardner's 2N bound for
                    independent rows)                          (Gardner 1988; Diederich & Opper 1987)
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ._checks import check_positive, check_tensor


class NotStoredWarning(UserWarning):
    """A learning rule stopped before every pattern was stable."""


def check_patterns(patterns: object, name: str = "patterns", stack: bool = False) -> torch.Tensor:
    """±1 patterns ``[P, N]`` (with ``stack``: also ``[..., P, N]``, one pattern set per entry)."""
    check_tensor(name, patterns, min_dim=2) if stack else check_tensor(name, patterns, ndim=2)
    if patterns.shape[-2] < 1 or patterns.shape[-1] < 2:
        raise ValueError(f"{name} must be [P, N] with P >= 1 patterns of N >= 2 neurons, got {tuple(patterns.shape)}")
    if not bool(((patterns == 1) | (patterns == -1)).all()):
        raise ValueError(f"{name} must hold only -1 and +1 entries")
    return patterns


def random_patterns(P: int, N: int, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[P, N]`` independent uniform ±1 patterns."""
    check_positive("P", P, integer=True)
    check_positive("N", N, integer=True)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (P, N), generator=g).to(dtype) * 2 - 1


def overlaps(states: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
    """m^μ(s) = ξ^μ·s / N for every state and pattern, ``[..., P]``."""
    return states @ patterns.T / patterns.shape[1]


def _zero_diagonal(W: torch.Tensor) -> torch.Tensor:
    W.diagonal(dim1=-2, dim2=-1).zero_()
    return W


def hebbian(patterns: torch.Tensor) -> torch.Tensor:
    """W = (1/N) Σ_μ ξ^μ ξ^μᵀ with a zero diagonal (``[..., P, N]`` → ``[..., N, N]``)."""
    X = check_patterns(patterns, stack=True)
    return _zero_diagonal(X.transpose(-1, -2) @ X / X.shape[-1])


def storkey(patterns: torch.Tensor) -> torch.Tensor:
    """Storkey's incremental rule (module docstring), one pattern at a time, zero diagonal
    (``[..., P, N]`` → ``[..., N, N]``)."""
    X = check_patterns(patterns, stack=True)
    N = X.shape[-1]
    W = torch.zeros(*X.shape[:-2], N, N, dtype=X.dtype, device=X.device)
    for mu in range(X.shape[-2]):
        xi = X[..., mu, :]
        col, row = xi.unsqueeze(-1), xi.unsqueeze(-2)
        h = (W @ col).squeeze(-1)                               # h_i = Σ_k W_ik ξ_k (W_ii = 0)
        H = h.unsqueeze(-1) - W * row                           # h_ij = h_i − W_ij ξ_j: k ≠ i, j
        W = _zero_diagonal(W + (col * row - col * H.transpose(-1, -2) - H * row) / N)
    return W


def pseudo_inverse(patterns: torch.Tensor, zero_diagonal: bool = True) -> torch.Tensor:
    """W = Ξ (ΞᵀΞ)⁺ Ξᵀ (the projection onto the patterns' span; ⁺: the pseudo-inverse, so linearly
    dependent patterns are allowed); ``zero_diagonal`` removes its diagonal (``[..., P, N]`` →
    ``[..., N, N]``)."""
    X = check_patterns(patterns, stack=True)
    XT = X.transpose(-1, -2)
    W = XT @ torch.linalg.pinv(X @ XT) @ X
    W = 0.5 * (W + W.transpose(-1, -2))
    return _zero_diagonal(W) if zero_diagonal else W


def perceptron(patterns: torch.Tensor, kappa: float = 0.0, *, symmetric: bool = True, max_epochs: int = 500,
               seed: int = 0) -> torch.Tensor:
    """The perceptron rule (module docstring): epochs over the patterns in a random order (from
    ``seed``) until ξ^μ_i h^μ_i > κ‖w_i‖ for every neuron and pattern, at most ``max_epochs``; a
    :class:`NotStoredWarning` names the patterns left unstable. ``symmetric=False`` gives
    independent rows (no energy)."""
    X = check_patterns(patterns)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not (kappa >= 0 and math.isfinite(kappa)):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    check_positive("max_epochs", max_epochs, integer=True)
    P, N = X.shape
    g = torch.Generator().manual_seed(seed)
    W = torch.zeros(N, N, dtype=X.dtype, device=X.device)
    off = 1 - torch.eye(N, dtype=X.dtype, device=X.device)

    def unstable(W):
        margin = X * (X @ W.T)                                  # ξ^μ_i h^μ_i, [P, N]
        return margin <= kappa * torch.linalg.vector_norm(W, dim=1)

    # W is kept in units of 1/N, so its entries are integers (halves after symmetrising): a field
    # that is exactly 0 then computes as 0 and counts as unstable, never as a rounding-error +1e-17
    for _ in range(max_epochs):
        if not bool(unstable(W).any()):
            return W / N
        for mu in torch.randperm(P, generator=g).tolist():
            xi = X[mu]
            bad = (xi * (W @ xi)) <= kappa * torch.linalg.vector_norm(W, dim=1)     # neurons i to correct
            W = W + (bad.to(X.dtype) * xi).unsqueeze(1) * xi.unsqueeze(0) * off
        if symmetric:
            W = 0.5 * (W + W.T)
    left = unstable(W)
    if bool(left.any()):
        warnings.warn(f"perceptron: after max_epochs={max_epochs}, {int(left.any(1).sum())} of {P} patterns are not "
                      f"stable at kappa={kappa} (the load may exceed this rule's capacity"
                      + (", which symmetrising lowers" if symmetric else "") + ")", NotStoredWarning, stacklevel=2)
    return W / N


@dataclass
class Census:
    """What each fixed point is (:func:`census`).

    Attributes:
        kinds: per state ``"stored" | "reversed" | "mixture" | "spin glass"``.
        members: per state the patterns it is made of, as (index, sign) pairs: one for stored and
            reversed, an odd number for a mixture, none for a spin-glass state.
        overlaps: ``[n, P]`` m^μ of every state.
        match: the overlap that counts as "is this state".
    """

    kinds: list[str]
    members: list[tuple[tuple[int, int], ...]]
    overlaps: torch.Tensor
    match: float

    def counts(self) -> dict[str, int]:
        return {k: self.kinds.count(k) for k in ("stored", "reversed", "mixture", "spin glass")}

    def fractions(self) -> dict[str, float]:
        n = max(1, len(self.kinds))
        return {k: v / n for k, v in self.counts().items()}


def census(states: torch.Tensor, patterns: torch.Tensor, *, match: float = 0.95, max_mixture: int = 5) -> Census:
    """Classify states ``[n, N]`` (e.g. fixed points from random starts): *stored* when some
    m^μ ≥ ``match``, *reversed* when some m^μ ≤ −match, *mixture* when its overlap with
    sign(Σ_{μ∈S} ε_μ ξ^μ) is ≥ ``match`` for an odd set S of at most ``max_mixture`` patterns (the
    |S| of largest |m^μ|, signs ε_μ = sign m^μ), else *spin glass*."""
    X = check_patterns(patterns)
    check_tensor("states", states, ndim=2)
    if states.shape[1] != X.shape[1]:
        raise ValueError(f"states must be [n, {X.shape[1]}], got {tuple(states.shape)}")
    if not 0 < match <= 1:
        raise ValueError(f"match must be in (0, 1], got {match}")
    m = overlaps(states, X)
    kinds, members = [], []
    for s, ms in zip(states, m):
        top = int(ms.abs().argmax())
        if ms[top] >= match or ms[top] <= -match:
            kinds.append("stored" if ms[top] > 0 else "reversed")
            members.append(((top, 1 if ms[top] > 0 else -1),))
            continue
        found = None
        order = ms.abs().argsort(descending=True)
        for k in range(3, min(max_mixture, X.shape[0]) + 1, 2):
            S = order[:k]
            eps = torch.sign(ms[S])
            eps[eps == 0] = 1
            mix = torch.sign((eps.unsqueeze(1) * X[S]).sum(0))
            if float(mix @ s) / X.shape[1] >= match:
                found = tuple((int(i), int(e)) for i, e in zip(S, eps))
                break
        kinds.append("mixture" if found else "spin glass")
        members.append(found or ())
    return Census(kinds, members, m, float(match))


def mixture_overlap(k: int) -> float:
    """The overlap of the symmetric odd mixture sign(ξ¹ + … + ξ^k) with each of its k patterns for
    large N: P(ξ¹ agrees with the majority of k fair coins) − P(disagrees) = C(k−1, (k−1)/2) / 2^{k−1}
    (1/2 for k = 3, 3/8 for k = 5, 5/16 for k = 7)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"k must be an odd positive int, got {k!r}")
    return math.comb(k - 1, (k - 1) // 2) / 2 ** (k - 1)


__all__ = ["hebbian", "storkey", "pseudo_inverse", "perceptron", "overlaps", "random_patterns", "census", "Census",
           "mixture_overlap", "NotStoredWarning"]
