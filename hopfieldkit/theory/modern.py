"""Ramsauer et al.'s theorems for the continuous modern Hopfield network (arXiv 2008.02217v3, [R]).

E(ξ) = −β⁻¹ lse(β, Xξ) + ½ξᵀξ + β⁻¹ ln N + ½M², update f(ξ) = Xᵀ softmax(βXξ), Jacobian
J(ξ) = β Xᵀ(diag p − ppᵀ)X with p = softmax(βXξ). Row convention: ``patterns`` X is ``[N, d]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import lambertw

from .._checks import check_tensor
from ._args import _beta, _capacity_args, _index, _int, _patterns, _positive, _states

__all__ = [
    "max_norm", "separation", "query_separation", "well_separated_threshold", "is_well_separated",
    "sphere_radius", "in_sphere", "retrieval_error_bound", "jacobian_mean_bound",
    "fixed_point_error_bound", "sandwich_bounds", "hull_upper_bound", "global_contraction",
    "MetastableConditions", "metastable_conditions", "simplex_beta_c", "StorageCapacity",
    "storage_capacity", "storage_capacity_corollary", "mass_count",
    "jacobian_bound", "global_jacobian_bound", "pattern_retrieval_bound", "sphere_contraction_bound",
    "metastable_jacobian_bound", "metastable_error_bound", "sphere_storage_condition",
    "placed_storage_condition", "storage_dimension", "expected_separation_condition",
    "well_separated_beta", "contraction_beta",
]


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


def well_separated_beta(patterns: torch.Tensor) -> float:
    """The smallest β from which on every pattern meets Lemma A7's condition (:func:`is_well_separated`),
    to 0.1 %: a log grid over [10⁻⁴, 10¹⁰], then bisection below the first grid point after which
    the condition holds at every grid point. ``inf`` when some pattern is not separated (Δ_i ≤ 0)."""
    X = _patterns(patterns, min_n=2)
    delta = separation(X)
    if not bool((delta > 0).all()):
        return float("inf")
    N, M, least = X.shape[0], float(max_norm(X)), delta.min()

    def holds(beta: float) -> bool:   # is_well_separated(X, beta).all(), from Δ and M computed once
        return bool(least >= well_separated_threshold(N, beta, M))

    grid = np.logspace(-4, 10, 561)
    ok = [holds(float(b)) for b in grid]
    if not ok[-1]:
        return float("inf")
    k = len(ok) - 1
    while k > 0 and ok[k - 1]:
        k -= 1
    if k == 0:
        return float(grid[0])
    lo, hi = float(grid[k - 1]), float(grid[k])
    while hi / lo > 1.001:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if holds(mid) else (mid, hi)
    return hi


def contraction_beta(patterns: torch.Tensor) -> float:
    """1 / m_max², m_max = max_i ‖x_i − m_x‖: below it the update contracts to one global fixed
    point ([R] Lemma A3; :func:`global_contraction`)."""
    X = _patterns(patterns)
    m_max = float((X - X.mean(0)).norm(dim=-1).max())
    return 1.0 / m_max**2 if m_max > 0 else float("inf")


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
    idx, rest = _cluster(X, cluster)
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


def mass_count(weights: torch.Tensor, mass: float = 0.9) -> torch.Tensor:
    """k: the fewest softmax entries whose sum reaches ``mass`` ([R] §4's metastable-state size)."""
    check_tensor("weights", weights, min_dim=1)
    if isinstance(mass, bool) or not isinstance(mass, (int, float)) or not (0 < mass <= 1):
        raise ValueError(f"mass must be a number in (0, 1], got {mass!r}")
    s = weights.sort(dim=-1, descending=True).values.cumsum(-1)
    tol = 1e3 * torch.finfo(weights.dtype).eps
    return (s < mass - tol).sum(-1) + 1




# ----------------------------------------------------------------------------------------------
# Jacobian and one-step lemmas (A2, A3, A4, A6, A8, A9)
# ----------------------------------------------------------------------------------------------
def _weights(X: torch.Tensor, xi: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.softmax(beta * (xi @ X.T), dim=-1)


def _cluster(X: torch.Tensor, cluster) -> tuple[torch.Tensor, torch.Tensor]:
    """Index tensor of the cluster and the mask of the patterns outside it."""
    N = X.shape[0]
    try:
        members = [_index(j, N, "cluster") for j in cluster]
    except TypeError:
        raise TypeError(f"cluster must be a list of pattern indices, got {type(cluster).__name__}") from None
    if len(set(members)) != len(members):
        raise ValueError(f"cluster must not repeat an index, got {list(cluster)}")
    if not 1 <= len(members) < N:
        raise ValueError(f"cluster must hold between 1 and N-1 = {N - 1} pattern indices, got {len(members)}")
    idx = torch.as_tensor(members, device=X.device, dtype=torch.long)
    rest = torch.ones(N, dtype=torch.bool, device=X.device)
    rest[idx] = False
    return idx, rest


def jacobian_bound(patterns: torch.Tensor, xi: torch.Tensor, beta: float) -> torch.Tensor:
    """‖J(ξ)‖₂ ≤ 2β‖X‖₂² max_i p_i(1 − p_i) ≤ 2βNM² max_i p_i(1 − p_i) ([R] Lemma A2); ``[...]``.

    Returns the first (tighter) form; max_i p_i(1 − p_i) ≤ ¼ always.
    """
    X = _patterns(patterns)
    b = _beta(beta)
    p = _weights(X, _states("xi", xi, X), b)
    return 2.0 * b * torch.linalg.matrix_norm(X, ord=2) ** 2 * (p * (1 - p)).max(-1).values


def global_jacobian_bound(patterns: torch.Tensor, beta: float) -> float:
    """‖J(ξ)‖₂ ≤ β m_max² for every ξ, m_max = max_i ‖x_i − m_x‖ ([R] Lemma A3); below 1 the update
    is a contraction (:func:`global_contraction`)."""
    X = _patterns(patterns)
    return _beta(beta) * float((X - X.mean(0)).norm(dim=-1).max()) ** 2


def pattern_retrieval_bound(patterns: torch.Tensor, xi: torch.Tensor, beta: float):
    """([R] Lemma A4) For the pattern i least separated from ξ, with c its query separation
    (:func:`query_separation`) and ε = (N − 1) e^{−βc}:  p_i ≥ 1 − ε and ‖x_i − f(ξ)‖ ≤ 2εM.

    Returns ``(i, eps, bound)``, each ``[...]``.
    """
    X = _patterns(patterns, min_n=2)
    b = _beta(beta)
    i, c = query_separation(X, xi)
    eps = (X.shape[0] - 1) * torch.exp(-b * c)
    return i, eps, 2.0 * eps * max_norm(X)


def sphere_contraction_bound(patterns: torch.Tensor, i: int, beta: float) -> float:
    """‖J^m‖₂ ≤ 1 − 2(N−1)² exp(−2β(Δ_i + 2/(βN))) βNM² on S_i when Δ_i meets the well-separated
    condition (A2) ([R] Lemma A6): f contracts S_i. ``nan`` where (A2) fails (the lemma says nothing)."""
    X = _patterns(patterns, min_n=2)
    i = _index(i, X.shape[0])
    b, N, M = _beta(beta), X.shape[0], float(max_norm(X))
    delta = float(separation(X)[i])
    if delta < well_separated_threshold(N, b, M):
        return float("nan")
    return 1.0 - 2.0 * (N - 1) ** 2 * math.exp(-2.0 * b * (delta + 2.0 / (b * N))) * b * N * M * M


def metastable_jacobian_bound(patterns: torch.Tensor, cluster: list[int], xi: torch.Tensor,
                              beta: float) -> torch.Tensor:
    """‖J(ξ)‖₂ ≤ β((1 − γ) m_max² + 2γ(2 − γ)M²) with γ = Σ_{j∉cluster} p_j and m_max the largest
    distance of a cluster member from the cluster mean ([R] Lemma A8); ``[...]``."""
    X = _patterns(patterns, min_n=2)
    b = _beta(beta)
    idx, rest = _cluster(X, cluster)
    gamma = _weights(X, _states("xi", xi, X), b)[..., rest].sum(-1)
    m_max = (X[idx] - X[idx].mean(0)).norm(dim=-1).max()
    M = max_norm(X)
    return b * ((1 - gamma) * m_max**2 + 2 * gamma * (2 - gamma) * M**2)


def metastable_error_bound(patterns: torch.Tensor, cluster: list[int], xi: torch.Tensor,
                           beta: float) -> torch.Tensor:
    """‖m_x − f(ξ)‖ ≤ m_max + 2γM ≤ m_max + 2εM with c = ξᵀm_x − max_{j∉cluster} ξᵀx_j and
    ε = (N − l) e^{−βc} ([R] Lemma A9); returns the ε form, ``[...]`` (γ ≤ ε for every ξ)."""
    X = _patterns(patterns, min_n=2)
    b = _beta(beta)
    idx, rest = _cluster(X, cluster)
    xi = _states("xi", xi, X)
    m = X[idx].mean(0)
    c = xi @ m - (xi @ X[rest].T).max(-1).values
    eps = (X.shape[0] - idx.numel()) * torch.exp(-b * c)
    m_max = (X[idx] - m).norm(dim=-1).max()
    return m_max + 2.0 * eps * max_norm(X)


# ----------------------------------------------------------------------------------------------
# Storage on the sphere: the master inequality and Theorems A3, A4, A6, A7
# ----------------------------------------------------------------------------------------------
def sphere_storage_condition(N: int, d: int, M: float, beta: float, alpha_min: float | None = None) -> bool:
    """M²(1 − cos α_min) ≥ 2/(βN) + β⁻¹ ln(2N²βM²) ([R] Eq. 311): N patterns on the sphere of
    radius M whose smallest pairwise angle is α_min are all stored (each meets (A2)).

    ``alpha_min=None`` takes the equidistant placement of Theorems A3/A4, α_min = 2π / N^{1/(d−1)}.
    """
    N, d, M, b = _int("N", N, 2), _int("d", d, 2), _positive("M", M), _beta(beta)
    if alpha_min is None:
        alpha_min = 2 * math.pi / N ** (1.0 / (d - 1))
    elif isinstance(alpha_min, bool) or not isinstance(alpha_min, (int, float)) or not 0 < alpha_min <= math.pi:
        raise ValueError(f"alpha_min must be an angle in (0, pi], got {alpha_min!r}")
    return M * M * (1 - math.cos(alpha_min)) >= 2 / (b * N) + math.log(2 * N * N * b * M * M) / b


def placed_storage_condition(d: int, exponent: int, K: float) -> bool:
    """Whether N = 2^{exponent·(d−1)} equidistant patterns on the sphere of radius M = K√(d−1) meet
    :func:`sphere_storage_condition` at β = 1 ([R] Theorems A3, A4).

    The theorems: exponent 2 with K = 2 for d ≥ 4 or K = 1.7 for d ≥ 50 (A3); exponent 3 with K = 5
    for d ≥ 3 or K = 4 for d ≥ 13 (A4).
    """
    d, e, K = _int("d", d, 2), _int("exponent", exponent, 1), _positive("K", K)
    # N itself overflows a float at large d: the condition only needs ln N and 2π / N^{1/(d−1)} = 2π / 2^e
    lnN = e * (d - 1) * math.log(2)
    M2 = K * K * (d - 1)
    return M2 * (1 - math.cos(2 * math.pi / 2**e)) >= 2 * math.exp(-lnN) + math.log(2 * M2) + 2 * lnN


def storage_dimension(beta: float, K: float, c: float, p: float) -> float:
    """The dimension d at which Theorem 3 gives exactly this c ([R] Theorem A6):
    a = ln(c)/2 − K²β/(5c), b = 1 + ln(2pβK²), d = 1 + W(a e^{−b})/a (W₀ for a > 0, W₋₁ for a < 0,
    d = 1 + e^{−b} for a = 0). Raises where a e^{−b} < −1/e (no real solution)."""
    b_, K = _beta(beta), _positive("K", K)
    c = _positive("c", c)
    _, _, _, p = _capacity_args(beta, K, 2, p)
    a = math.log(c) / 2 - K * K * b_ / (5 * c)
    bb = 1 + math.log(2 * p * b_ * K * K)
    if a == 0:
        return 1 + math.exp(-bb)
    z = a * math.exp(-bb)
    if z < -1 / math.e:
        raise ValueError(f"no dimension gives c = {c} here: a e^(-b) = {z:.4g} < -1/e (a = {a:.4g}, b = {bb:.4g})")
    w = lambertw(z, 0 if a > 0 else -1)
    return 1 + float(np.real(w)) / a


def expected_separation_condition(beta: float, K: float, c: float, d: int) -> bool:
    """([R] Theorem A7) (1/5)(d−1)K²c⁻¹(1 − ln(d−1)/(d−1))² ≥ 2/(βc^{(d−1)/4}) + β⁻¹ln(2c^{(d−1)/2}β(d−1)K²):
    then N = c^{(d−1)/4} random patterns on the sphere of radius K√(d−1) are stored in expectation."""
    b, K, d = _beta(beta), _positive("K", K), _int("d", d, 2)
    c = _positive("c", c)
    if c < 1:
        raise ValueError(f"c must be >= 1, got {c!r}")
    lhs = (d - 1) * K * K / (5 * c) * (1 - math.log(d - 1) / (d - 1)) ** 2
    rhs = 2 / (b * c ** ((d - 1) / 4)) + (math.log(2 * b * (d - 1) * K * K) + (d - 1) / 2 * math.log(c)) / b
    return lhs >= rhs
