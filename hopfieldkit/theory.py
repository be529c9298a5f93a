"""Bounds and conditions of the papers, as functions (numbers refer to arXiv 2008.02217v3 [R]).

Every function returns the quantity the theorem bounds, so tests can hold numerics against it.
Row convention: ``patterns`` is ``[N, d]``. Nothing here claims tightness: the tests hold numerics
against each bound, never the other way round (``docs/theory.md`` lists what is derived here
beyond the paper). Every argument is checked: a bad one raises a ``ValueError``/``TypeError`` that
names it.

[R] Ramsauer et al., Hopfield Networks is All You Need (ICLR 2021).
[KH16] Krotov & Hopfield, Dense Associative Memory for Pattern Recognition (NeurIPS 2016).
[D17] Demircigil et al., On a model of associative memory with huge storage capacity (2017).

Classical pairwise network (N neurons, P random ±1 patterns, load α = P/N):
[MPRV87] McEliece, Posner, Rodemich, Venkatesh, The capacity of the Hopfield associative memory (1987).
[AGS85] Amit, Gutfreund, Sompolinsky, Storing infinite numbers of patterns in a spin-glass model (1985).
[G88] Gardner, The space of interactions in neural network models (1988).
[S97] Storkey, Increasing the capacity of a Hopfield network without sacrificing functionality (1997).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import lambertw

from ._checks import check_beta, check_tensor

__all__ = [
    "max_norm", "separation", "query_separation", "well_separated_threshold", "is_well_separated",
    "sphere_radius", "in_sphere", "retrieval_error_bound", "jacobian_mean_bound",
    "fixed_point_error_bound", "sandwich_bounds", "hull_upper_bound", "global_contraction",
    "MetastableConditions", "metastable_conditions", "simplex_beta_c", "StorageCapacity",
    "storage_capacity", "storage_capacity_corollary", "krotov_capacity", "demircigil_alpha",
    "mass_count", "hebb_capacity_all", "hebb_capacity_single", "AGS_ALPHA_C", "ags_capacity", "storkey_capacity",
    "gardner_alpha", "hebb_bit_error", "curie_weiss_overlap", "paramagnetic_temperature",
]


def _patterns(patterns: torch.Tensor, min_n: int = 1) -> torch.Tensor:
    X = check_tensor("patterns", patterns, ndim=2)
    if X.shape[0] < min_n or X.shape[1] < 1:
        need = f"at least {min_n} patterns" if min_n > 1 else "N, d >= 1"
        raise ValueError(f"patterns must be [N, d] with {need}, got shape {tuple(X.shape)}")
    return X


def _beta(beta: float) -> float:
    b = check_beta(beta)
    if isinstance(b, torch.Tensor):
        if b.numel() != 1:
            raise ValueError(f"beta must be one positive number here, got a tensor of shape {tuple(b.shape)}")
        b = float(b)
    return b


def _int(name: str, v: object, least: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")
    return int(v)


def _positive(name: str, v: object) -> float:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (0 < float(v) < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def _index(i: object, N: int, name: str = "i") -> int:
    if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point():
        i = int(i)
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not (-N <= int(i) < N):
        raise ValueError(f"{name} must be a pattern index in [0, {N}) (N = {N} patterns), got {i!r}")
    return int(i) % N


def _states(name: str, xi: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    check_tensor(name, xi, min_dim=1)
    if xi.shape[-1] != X.shape[1]:
        raise ValueError(f"{name} must have shape [..., {X.shape[1]}] (the pattern dimension d = {X.shape[1]}), "
                         f"got {tuple(xi.shape)}")
    if xi.dtype != X.dtype or xi.device != X.device:
        raise TypeError(f"{name} has dtype {xi.dtype} on {xi.device} but patterns have {X.dtype} on {X.device}")
    return xi


def max_norm(patterns: torch.Tensor) -> torch.Tensor:
    """M = max_i ‖x_i‖ ([R] notation)."""
    return _patterns(patterns).norm(dim=-1).max()


def separation(patterns: torch.Tensor) -> torch.Tensor:
    """Δ_i = x_iᵀx_i − max_{j≠i} x_iᵀx_j for every pattern ([R] Definition 2, Eq. 5); ``[N]``."""
    X = _patterns(patterns, min_n=2)
    G = X @ X.T
    diag = torch.diagonal(G).clone()
    G = G.masked_fill(torch.eye(X.shape[0], dtype=torch.bool, device=X.device), float("-inf"))
    return diag - G.max(dim=-1).values


def query_separation(patterns: torch.Tensor, xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a query ξ: i = argmax_k (ξᵀx_k − max_{j≠k} ξᵀx_j) and c, that maximum ([R] Lemma A4)."""
    X = _patterns(patterns, min_n=2)
    s = _states("xi", xi, X) @ X.T
    top2 = s.topk(2, dim=-1)
    return top2.indices[..., 0], top2.values[..., 0] - top2.values[..., 1]


def well_separated_threshold(N: int, beta: float, M: float) -> float:
    """Right-hand side of (A2): 2/(βN) + β⁻¹ ln(2(N−1)NβM²) ([R] Lemma A5/A7, Thm 3/4)."""
    b, N, M = _beta(beta), _int("N", N, 2), _positive("M", M)
    return 2.0 / (b * N) + math.log(2.0 * (N - 1) * N * b * M ** 2) / b


def is_well_separated(patterns: torch.Tensor, beta: float) -> torch.Tensor:
    """Δ_i ≥ 2/(βN) + β⁻¹ ln(2(N−1)NβM²) for each pattern ([R] Lemma A7): a fixed point in S_i."""
    X = _patterns(patterns, min_n=2)
    thr = well_separated_threshold(X.shape[0], beta, float(max_norm(X)))
    return separation(X) >= thr


def sphere_radius(N: int, beta: float, M: float) -> float:
    """Radius of S_i, 1/(βNM) ([R] Definition 3)."""
    return 1.0 / (_beta(beta) * _int("N", N, 1) * _positive("M", M))


def in_sphere(patterns: torch.Tensor, i: int, xi: torch.Tensor, beta: float) -> torch.Tensor:
    """Whether ξ lies in S_i = {ξ : ‖ξ − x_i‖ ≤ 1/(βNM)}."""
    X = _patterns(patterns)
    i = _index(i, X.shape[0])
    r = sphere_radius(X.shape[0], beta, float(max_norm(X)))
    return (_states("xi", xi, X) - X[i]).norm(dim=-1) <= r


def _spread(X, i, xi, x_star):
    xi, x_star = _states("xi", xi, X), _states("x_star", x_star, X)
    return torch.maximum((xi - X[i]).norm(dim=-1), (x_star - X[i]).norm(dim=-1))


def retrieval_error_bound(patterns: torch.Tensor, i: int, xi: torch.Tensor, x_star: torch.Tensor,
                          beta: float) -> torch.Tensor:
    """‖f(ξ) − x_i‖ ≤ 2(N−1) exp(−β(Δ_i − 2 max{‖ξ−x_i‖, ‖x_i*−x_i‖} M)) M  ([R] Thm 5 = A9, Eq. 8)."""
    X = _patterns(patterns, min_n=2)
    i = _index(i, X.shape[0])
    b, N, M = _beta(beta), X.shape[0], max_norm(X)
    delta = separation(X)[i]
    return 2.0 * (N - 1) * torch.exp(-b * (delta - 2.0 * _spread(X, i, xi, x_star) * M)) * M


def jacobian_mean_bound(patterns: torch.Tensor, i: int, xi: torch.Tensor, x_star: torch.Tensor,
                        beta: float) -> torch.Tensor:
    """‖J^m‖₂ ≤ 2βNM²(N−1) exp(−β(Δ_i − 2 max{‖ξ−x_i‖, ‖x_i*−x_i‖} M)) ([R] Thm 4 = A8, Eq. 7);
    then ‖f(ξ) − x_i*‖ ≤ ‖J^m‖₂ ‖ξ − x_i*‖ (Eq. 6)."""
    X = _patterns(patterns, min_n=2)
    i = _index(i, X.shape[0])
    b, N, M = _beta(beta), X.shape[0], max_norm(X)
    delta = separation(X)[i]
    return 2.0 * b * N * M**2 * (N - 1) * torch.exp(-b * (delta - 2.0 * _spread(X, i, xi, x_star) * M))


def fixed_point_error_bound(patterns: torch.Tensor, i: int, beta: float) -> torch.Tensor:
    """‖x_i − x_i*‖ ≤ 2e(N−1)M exp(−βΔ_i) when ‖x_i − x_i*‖, ‖x_i − ξ‖ ≤ 1/(2βM) ([R] Thm 5, Eq. 9)."""
    X = _patterns(patterns, min_n=2)
    i = _index(i, X.shape[0])
    b, N, M = _beta(beta), X.shape[0], max_norm(X)
    return 2.0 * math.e * (N - 1) * M * torch.exp(-b * separation(X)[i])


def sandwich_bounds(patterns: torch.Tensor, xi: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """g(ξ) ≤ E(ξ) ≤ g(ξ) + β⁻¹ ln N for every ξ, g(ξ) = min_i ½‖ξ−x_i‖² + ½(M² − ‖x_i‖²) ≥ 0.

    Derived from max z ≤ lse(β, z) ≤ max z + β⁻¹ ln N; implies [R] Lemma A1's E ≥ 0.
    """
    X = _patterns(patterns)
    xi = _states("xi", xi, X)
    b, N = _beta(beta), X.shape[0]
    M2 = (X * X).sum(-1).max()
    g = (0.5 * torch.cdist(xi.reshape(-1, X.shape[1]), X) ** 2 + 0.5 * (M2 - (X * X).sum(-1))).min(-1).values
    g = g.reshape(xi.shape[:-1])
    return g, g + math.log(N) / b


def hull_upper_bound(patterns: torch.Tensor, beta: float) -> float:
    """E(ξ) ≤ min(β⁻¹ ln N + ½M², 2M²) for ξ in the convex hull of the patterns ([R] Lemma A1).

    Every iterate of the update from t ≥ 1 lies in the hull. Outside it E is unbounded.
    """
    X = _patterns(patterns)
    b, N, M = _beta(beta), X.shape[0], float(max_norm(X))
    return min(math.log(N) / b + 0.5 * M * M, 2.0 * M * M)


def global_contraction(patterns: torch.Tensor, beta: float) -> bool:
    """β m_max² < 1, m_max = max_i ‖x_i − m_x‖: the update is a contraction with one (global)
    fixed point ([R] Lemma A3)."""
    X = _patterns(patterns)
    m_max = (X - X.mean(0)).norm(dim=-1).max()
    return bool(_beta(beta) * m_max**2 < 1.0)


@dataclass
class MetastableConditions:
    """[R] Lemmas A10–A12 for a cluster of l patterns: both conditions give a fixed point in S_m."""

    delta_m: float       # Δ_m = m_xᵀm_x − max_{j∉cluster} m_xᵀx_j
    threshold: float     # right-hand side of condition (i)
    contraction: bool    # condition (ii): β m_max² < 1
    radius: float        # radius of S_m, 1/(β m_max)
    center: torch.Tensor  # m_x, the cluster mean

    @property
    def holds(self) -> bool:
        return self.contraction and self.delta_m >= self.threshold


def metastable_conditions(patterns: torch.Tensor, cluster: list[int], beta: float) -> MetastableConditions:
    """Conditions (i) and (ii) of [R] Lemmas A10–A12 for the patterns indexed by ``cluster``.

    (i)  Δ_m ≥ 2M/(β m_max) − β⁻¹ ln[(1 − β m_max²) / (2β(N−l) M max{m_max, 2M})]
    (ii) β m_max² < 1 (strict: the logarithm diverges at 1).
    The lemma does not imply a mixture: a single pattern can lie in S_m (``docs/theory.md``).
    """
    X = _patterns(patterns, min_n=2)
    b, N, M = _beta(beta), X.shape[0], float(max_norm(X))
    try:
        members = [_index(j, N, "cluster") for j in cluster]
    except TypeError:
        raise TypeError(f"cluster must be a list of pattern indices, got {type(cluster).__name__}") from None
    if len(set(members)) != len(members):
        raise ValueError(f"cluster must not repeat an index, got {list(cluster)}")
    idx = torch.as_tensor(members, device=X.device, dtype=torch.long)
    if idx.numel() < 1 or idx.numel() >= N:
        raise ValueError(f"cluster must hold between 1 and N-1 = {N - 1} pattern indices, got {idx.numel()}")
    rest = torch.ones(N, dtype=torch.bool, device=X.device)
    rest[idx] = False
    m = X[idx].mean(0)
    m_max = float((X[idx] - m).norm(dim=-1).max())
    delta_m = float(m @ m - (X[rest] @ m).max())
    contraction = b * m_max**2 < 1.0
    if contraction and m_max > 0:
        arg = (1 - b * m_max**2) / (2 * b * (N - len(cluster)) * M * max(m_max, 2 * M))
        thr = 2 * M / (b * m_max) - math.log(arg) / b
    else:
        thr = float("inf")
    radius = 1.0 / (b * m_max) if m_max > 0 else float("inf")
    return MetastableConditions(delta_m, thr, contraction, radius, m)


def simplex_beta_c(N: int, r: float) -> float:
    """Critical β of N patterns on a centred regular simplex of norm r: β_c = (N−1)/r².

    At ξ = 0, J = (β/N) XXᵀ has eigenvalue βr²/(N−1) on the patterns' span, so the global
    average is stable iff β < β_c (derived in ``docs/theory.md``). Lemma A3 only gives 1/r².
    """
    N, r = _int("N", N, 2), _positive("r", r)
    return (N - 1) / r**2


@dataclass
class StorageCapacity:
    """[R] Theorem 3 (= A5): with probability 1−p, N ≥ √p c^{(d−1)/4} random patterns are stored."""

    c: float
    n_min: float
    condition: bool   # c ≥ (2/√p)^{4/(d−1)}


def storage_capacity(beta: float, K: float, d: int, p: float) -> StorageCapacity:
    """[R] Theorem 3: a = 2/(d−1)(1 + ln(2βK²p(d−1))), b = 2K²β/5, c = b / W₀(exp(a + ln b)).

    Patterns lie on the sphere of radius M = K√(d−1). Examples from [R]: c ≈ 3.1546 for
    (β, K, d, p) = (1, 3, 20, 0.001) and c ≈ 1.3718 for (1, 1, 75, 0.001).
    """
    b_, K, d, p = _capacity_args(beta, K, d, p)
    a = 2.0 / (d - 1) * (1.0 + math.log(2.0 * b_ * K**2 * p * (d - 1)))
    b = 2.0 * K**2 * b_ / 5.0
    c = b / float(np.real(lambertw(math.exp(a + math.log(b)), 0)))
    return StorageCapacity(c, math.sqrt(p) * c ** ((d - 1) / 4), c >= (2 / math.sqrt(p)) ** (4 / (d - 1)))


def _capacity_args(beta, K, d, p) -> tuple[float, float, int, float]:
    """β > 0, K > 0, d ≥ 2 (the bounds divide by d − 1), 0 < p ≤ 1."""
    b = _beta(beta)
    K = _positive("K", K)
    d = _int("d", d, 2)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 < p <= 1):
        raise ValueError(f"p must be a probability in (0, 1], got {p!r}")
    return b, K, d, float(p)


def storage_capacity_corollary(beta: float, K: float, d: int, p: float) -> float:
    """c of [R] Corollary A1 (no Lambert W): u = a + ln b, Ω = W₀(1); c = b/U with
    U = ln((Ω eᵘ + 1)/(Ω(1+Ω))) for u ≤ 0 and U = u^{u/(1+u)} for u > 0."""
    b_, K, d, p = _capacity_args(beta, K, d, p)
    a = 2.0 / (d - 1) * (1.0 + math.log(2.0 * b_ * K**2 * p * (d - 1)))
    b = 2.0 * K**2 * b_ / 5.0
    u = a + math.log(b)
    omega = float(np.real(lambertw(1.0)))
    U = math.log((omega * math.exp(u) + 1) / (omega * (1 + omega))) if u <= 0 else u ** (u / (1 + u))
    return b / U


def krotov_capacity(d: int, n: int) -> float:
    """Patterns storable without errors in a polynomial DAM: K ≈ d^{n−1} / (2 (2n−3)!! ln d)
    ([KH16] Eq. 6); d = 100 gives ≈ 10.86, 361.9, 7238 for n = 2, 3, 4."""
    d, n = _int("d", d, 2), _int("n", n, 2)
    dfact = math.prod(range(2 * n - 3, 0, -2))
    return d ** (n - 1) / (2.0 * dfact * math.log(d))


def demircigil_alpha(rho: float) -> float:
    """Largest α with N = e^{αd} patterns retrieved from Hamming radius ρd: α < I(1−2ρ)/2,
    I(a) = ½((1+a)ln(1+a) + (1−a)ln(1−a)) ([D17] via [R] Theorem A10); ρ = 0 gives ln(2)/2."""
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not (0 <= rho < 0.5):
        raise ValueError(f"rho must be a number in [0, 0.5), got {rho!r}")
    a = 1 - 2 * rho
    I = 0.5 * ((1 + a) * math.log(1 + a) + ((1 - a) * math.log(1 - a) if a < 1 else 0.0))
    return I / 2


def mass_count(weights: torch.Tensor, mass: float = 0.9) -> torch.Tensor:
    """k: the fewest softmax entries whose sum reaches ``mass`` ([R] §4's metastable-state size)."""
    check_tensor("weights", weights, min_dim=1)
    if isinstance(mass, bool) or not isinstance(mass, (int, float)) or not (0 < mass <= 1):
        raise ValueError(f"mass must be a number in (0, 1], got {mass!r}")
    s = weights.sort(dim=-1, descending=True).values.cumsum(-1)
    tol = 1e3 * torch.finfo(weights.dtype).eps
    return (s < mass - tol).sum(-1) + 1


# ----------------------------------------------------------------------------------------------
# The classical pairwise network (Hebb's rule unless named)
# ----------------------------------------------------------------------------------------------
AGS_ALPHA_C = 0.138
"""Critical load of Hebb's rule for retrieval with a small fraction of errors (replica theory, [AGS85])."""


def hebb_capacity_all(N: int) -> float:
    """P = N / (4 ln N): all patterns exact fixed points with probability → 1 ([MPRV87])."""
    N = _int("N", N, 2)
    return N / (4 * math.log(N))


def hebb_capacity_single(N: int) -> float:
    """P = N / (2 ln N): each single pattern an exact fixed point with probability → 1 ([MPRV87])."""
    N = _int("N", N, 2)
    return N / (2 * math.log(N))


def ags_capacity(N: int) -> float:
    """P = 0.138 N: retrieval with a small fraction of errors ([AGS85])."""
    return AGS_ALPHA_C * _int("N", N, 1)


def storkey_capacity(N: int) -> float:
    """P = N / √(2 ln N): the capacity Storkey states for his rule ([S97])."""
    N = _int("N", N, 2)
    return N / math.sqrt(2 * math.log(N))


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def gardner_alpha(kappa: float = 0.0) -> float:
    """α_c(κ) = 1 / ∫_{−κ}^{∞} Dz (z + κ)² = 1 / ((1 + κ²)Φ(κ) + κφ(κ)): the most patterns per
    neuron that independent rows can store with stability margin κ ([G88]); α_c(0) = 2."""
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not (kappa >= 0 and math.isfinite(kappa)):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    return 1.0 / ((1 + kappa * kappa) * _Phi(kappa) + kappa * _phi(kappa))


def hebb_bit_error(alpha: float) -> float:
    """P(a bit of a stored pattern is unstable under Hebb's rule) = Φ(−1/√α) for large N
    (signal 1 against crosstalk of variance α); α = 0.138 gives 0.0036."""
    alpha = _positive("alpha", alpha)
    return _Phi(-1.0 / math.sqrt(alpha))


def curie_weiss_overlap(T: float, tol: float = 1e-14) -> float:
    """The positive root m of m = tanh(m / T) (the overlap at vanishing load and temperature T);
    0 for T ≥ 1. Bisection on [0, 1]."""
    T = _positive("T", T)
    if T >= 1:
        return 0.0
    lo, hi = 1e-300, 1.0                     # f(m) = tanh(m/T) − m is > 0 just above 0 and < 0 at 1
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if math.tanh(mid / T) > mid:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def paramagnetic_temperature(alpha: float) -> float:
    """T_g = 1 + √α: above it the Hebbian network is paramagnetic (no order), below it a spin
    glass or retrieval ([AGS85])."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return 1.0 + math.sqrt(alpha)
