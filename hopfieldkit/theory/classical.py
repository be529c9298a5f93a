"""The classical pairwise network (Hebb's rule unless named): N neurons, P random ±1 patterns,
load α = P/N, temperature T of Glauber dynamics.

[MPRV87] McEliece, Posner, Rodemich, Venkatesh, The capacity of the Hopfield associative memory (1987).
[AGS85] Amit, Gutfreund, Sompolinsky, Storing infinite numbers of patterns in a spin-glass model (1985).
[AGS87] Amit, Gutfreund, Sompolinsky, Statistical mechanics of neural networks near saturation (1987).
[G88] Gardner, The space of interactions in neural network models (1988).
[S97] Storkey, Increasing the capacity of a Hopfield network without sacrificing functionality (1997).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import erf

from ._args import _int, _positive

__all__ = ["hebb_capacity_all", "hebb_capacity_single", "AGS_ALPHA_C", "ags_capacity", "storkey_capacity",
           "gardner_alpha", "hebb_bit_error", "curie_weiss_overlap", "paramagnetic_temperature",
           "AGSState", "ags_saddle", "ags_zero_temperature", "ags_retrieval_load",
           "ags_global_load"]


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


# ----------------------------------------------------------------------------------------------
# The replica-symmetric theory of Amit, Gutfreund and Sompolinsky ([AGS87]): the (α, T) diagram
# ----------------------------------------------------------------------------------------------
@dataclass
class AGSState:
    """A replica-symmetric saddle point of the Hebbian network at load α and temperature T.

    With σ = √(αr), u = m + σz and z standard normal (⟨·⟩ its average):
      m = ⟨tanh βu⟩,  q = ⟨tanh² βu⟩,  C = β(1 − q) = β⟨sech² βu⟩,  r = q / (1 − C)²,
      f = ½m² + α/2 + (α/2β) ln(1 − C) − αq / (2(1 − C)) + (α/2) rC − β⁻¹⟨ln 2cosh βu⟩.
    m is the overlap with the retrieved pattern, q the Edwards–Anderson parameter, r the noise
    from the other P − 1 patterns, f the free energy per neuron.
    """

    alpha: float
    T: float
    m: float
    q: float
    r: float
    free_energy: float
    iterations: int
    converged: bool


def _gauss_average(m: float, sigma: float, beta: float):
    """⟨tanh βu⟩, ⟨tanh² βu⟩, β⟨sech² βu⟩, ⟨β⁻¹ ln 2cosh βu⟩ for u = m + σz.

    The integrands change over a width T/σ around z₀ = −m/σ, far below the grid's spacing at
    low T: the grid is refined there.
    """
    z = np.linspace(-10.0, 10.0, 4001)
    if sigma > 0:
        z0, w = -m / sigma, 40.0 / (beta * sigma)
        if -10 < z0 < 10 and w < 0.5:
            z = np.union1d(z, np.linspace(z0 - w, z0 + w, 2001))
    u = beta * (m + sigma * z)
    t = np.tanh(u)
    a = np.abs(u)
    sech2 = 4.0 * np.exp(-2 * a) / (1 + np.exp(-2 * a)) ** 2
    lncosh = (a + np.log1p(np.exp(-2 * a)) + 0.0) / beta      # β⁻¹ ln 2cosh βu, stable at large βu
    wts = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    avg = [np.trapezoid(wts * g, z) for g in (t, t * t, sech2, lncosh)]
    return avg[0], avg[1], beta * avg[2], avg[3]


def _spin_glass_noise(alpha: float, beta: float) -> float:
    """r of the m = 0 state: the root σ > 0 of σ²(1 − C(σ))² = α q(σ) with C < 1 (σ² = αr), found
    by bracketing (plain iteration is unstable there); 0 (the paramagnet) where there is none."""
    def qc(sig):
        _, q, C, _ = _gauss_average(0.0, sig, beta)
        return q, C

    lo, hi = 1e-6, 1.0
    while qc(hi)[1] >= 1:                       # C falls as σ grows: find where it drops below 1
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if qc(mid)[1] >= 1 else (lo, mid)
    sig_lo = hi

    def g(sig):
        q, C = qc(sig)
        return sig * sig * (1 - C) ** 2 - alpha * q

    top = max(10.0, 2 * sig_lo)
    if g(sig_lo) >= 0:
        return 0.0
    return brentq(g, sig_lo, top, xtol=1e-13) ** 2 / alpha


def _alpha_T(alpha, T):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0 < alpha < math.inf):
        raise ValueError(f"alpha must be a positive finite load P/N, got {alpha!r}")
    return float(alpha), _positive("T", T)


def ags_saddle(alpha: float, T: float, m0: float = 1.0, tol: float = 1e-10, max_iter: int = 20000) -> AGSState:
    """Iterate the replica-symmetric equations of :class:`AGSState` from overlap ``m0`` (q = 1).

    From m0 = 1 this reaches the retrieval state where one exists; from m0 = 0 the spin-glass
    (or, above T = 1 + √α, the paramagnetic) state, m = 0. ``converged`` is False when the change
    stayed above ``tol`` after ``max_iter`` iterations or C reached 1 (no valid state).
    """
    alpha, T = _alpha_T(alpha, T)
    if isinstance(m0, bool) or not isinstance(m0, (int, float)) or not 0 <= m0 <= 1:
        raise ValueError(f"m0 must be an overlap in [0, 1], got {m0!r}")
    beta = 1.0 / T
    if m0 == 0:
        r, it, converged = _spin_glass_noise(alpha, beta), 1, True
        m, q = 0.0, _gauss_average(0.0, math.sqrt(alpha * r), beta)[1]
    else:
        m, q, r = float(m0), 1.0, 1.0
        converged, it = False, 0
        for it in range(1, max_iter + 1):
            m_new, q_new, C, _ = _gauss_average(m, math.sqrt(alpha * r), beta)
            if not C < 1:
                break
            r_new = q_new / (1 - C) ** 2
            change = max(abs(m_new - m), abs(q_new - q), abs(r_new - r) / max(r_new, 1.0))
            m, q, r = m_new, q_new, r_new
            if change < tol:
                converged = True
                break
    mt, qt, C, lncosh = _gauss_average(m, math.sqrt(alpha * r), beta)
    if C < 1:
        f = (0.5 * m * m + alpha / 2 + alpha / (2 * beta) * math.log(1 - C) - alpha * q / (2 * (1 - C))
             + alpha / 2 * r * C - lncosh)
    else:
        f, converged = float("nan"), False
    return AGSState(alpha, T, float(m), float(q), float(r), float(f), it, converged)


def ags_zero_temperature() -> tuple[float, float]:
    """(α_c, m): the largest load with a retrieval state at T = 0 and its overlap ([AGS87]).

    At T = 0 the equations reduce to √(2α) = erf(y)/y − (2/√π) e^{−y²} with m = erf(y); α_c is the
    maximum over y. The values are ≈ 0.138 and ≈ 0.967.
    """
    def alpha(y):
        return 0.5 * (erf(y) / y - 2 / math.sqrt(math.pi) * math.exp(-y * y)) ** 2

    res = minimize_scalar(lambda y: -alpha(y), bounds=(0.5, 3.0), method="bounded", options={"xatol": 1e-12})
    return alpha(res.x), float(erf(res.x))


def _retrieves(alpha: float, T: float, threshold: float = 0.2) -> bool:
    s = ags_saddle(alpha, T, 1.0)
    return s.converged and s.m > threshold


def _bisect(pred, lo: float, hi: float, tol: float) -> float:
    """The point in [lo, hi] where pred switches from True (below) to False (above)."""
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pred(mid) else (lo, mid)
    return 0.5 * (lo + hi)


def _temperature(T) -> float:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not 0 < T < math.inf:
        raise ValueError(f"T must be a positive finite temperature, got {T!r}")
    return float(T)


def ags_retrieval_load(T: float, tol: float = 1e-5) -> float:
    """α_M(T): the largest load at which a retrieval state (m > 0.2) exists at temperature T, the
    line T_M of [AGS87] read as α against T (single-valued, unlike T_M(α): the replica-symmetric
    line bends back near T = 0). α_M → α_c ≈ 0.138 as T → 0 and → 0 as T → 1; 0 for T ≥ 1."""
    T = _temperature(T)
    hi = 1.01 * ags_zero_temperature()[0]
    if T >= 1 or not _retrieves(tol, T):
        return 0.0
    return _bisect(lambda a: _retrieves(a, T), tol, hi, tol)


def ags_global_load(T: float, tol: float = 1e-5) -> float:
    """α_c(T): below this load the retrieval states have a lower free energy than the spin-glass
    state (they are the global minima), the line T_c of [AGS87] read as α against T; it ends near
    α ≈ 0.05 at T = 0 and at α = 0 at T = 1; 0 for T ≥ 1."""
    T = _temperature(T)

    def lower(a):
        ret = ags_saddle(a, T, 1.0)
        return ret.converged and ret.m > 0.2 and ret.free_energy < ags_saddle(a, T, 0.0).free_energy

    top = ags_retrieval_load(T, tol)
    if top == 0.0 or not lower(tol):
        return 0.0
    return _bisect(lower, tol, top, tol)
