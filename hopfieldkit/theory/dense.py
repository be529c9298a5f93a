"""Capacity of dense associative memories on ±1 states: E(σ) = −Σ_μ F(ξ^μ·σ).

[KH16] Krotov & Hopfield, Dense Associative Memory for Pattern Recognition (NeurIPS 2016): F(x) = xⁿ.
[D17] Demircigil et al., On a model of associative memory with huge storage capacity (J. Stat.
Phys. 2017), as quoted in [R] App. A.3 (Theorem A10): F(x) = eˣ, and its polynomial case.
"""
from __future__ import annotations

import math

from scipy.optimize import brentq

from ._args import _int, _positive

__all__ = ["krotov_capacity", "krotov_error_probability", "krotov_alpha", "demircigil_alpha",
           "demircigil_polynomial_capacity"]


def _double_factorial(n: int) -> int:
    """(2n − 3)!! = 1·3·5···(2n − 3)."""
    return math.prod(range(2 * n - 3, 0, -2))


def krotov_capacity(d: int, n: int) -> float:
    """Patterns storable without errors in a polynomial DAM: K ≈ d^{n−1} / (2 (2n−3)!! ln d)
    ([KH16] Eq. 6); d = 100 gives ≈ 10.86, 361.9, 7238 for n = 2, 3, 4."""
    d, n = _int("d", d, 2), _int("n", n, 2)
    dfact = _double_factorial(n)
    return d ** (n - 1) / (2.0 * dfact * math.log(d))


def demircigil_alpha(rho: float) -> float:
    """Largest α with N = e^{αd} patterns retrieved from Hamming radius ρd: α < I(1−2ρ)/2,
    I(a) = ½((1+a)ln(1+a) + (1−a)ln(1−a)) ([D17] via [R] Theorem A10); ρ = 0 gives ln(2)/2."""
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not (0 <= rho < 0.5):
        raise ValueError(f"rho must be a number in [0, 0.5), got {rho!r}")
    a = 1 - 2 * rho
    I = 0.5 * ((1 + a) * math.log(1 + a) + ((1 - a) * math.log(1 - a) if a < 1 else 0.0))
    return I / 2


def krotov_error_probability(N: int, K: float, n: int) -> float:
    """P(a bit of a stored pattern flips) ≈ √((2n−3)!!/(2π) · K/N^{n−1}) · exp(−N^{n−1}/(2K(2n−3)!!))
    for K random ±1 memories in N neurons and F(x) = xⁿ ([KH16] §2: the energy gap has mean
    2nN^{n−1} and variance 4n²(2n−3)!!(K−1)N^{n−1}; a Gaussian tail)."""
    N, n, K = _int("N", N, 2), _int("n", n, 2), _positive("K", K)
    x = K / N ** (n - 1)
    return _error_at_load(x, n)


def _error_at_load(x: float, n: int) -> float:
    df = _double_factorial(n)
    return math.sqrt(df * x / (2 * math.pi)) * math.exp(-1.0 / (2 * x * df))


def krotov_alpha(n: int, error: float = 0.005) -> float:
    """α_n with K_max = α_n N^{n−1}: the load K/N^{n−1} at which :func:`krotov_error_probability`
    reaches ``error`` ([KH16] §2; N cancels). n = 2 and 0.5 % give ≈ 0.146, the classical ≈ 0.14 N."""
    n = _int("n", n, 2)
    if isinstance(error, bool) or not isinstance(error, (int, float)) or not 0 < error < 0.1:
        raise ValueError(f"error must be a probability in (0, 0.1), got {error!r}")
    # the error rises monotonically in x up to x = 1/(2n−3)!!, where it is above 0.1
    top = 1.0 / _double_factorial(n)
    return brentq(lambda x: _error_at_load(x, n) - error, 1e-6 * top, top, xtol=1e-14, rtol=1e-12)


def demircigil_polynomial_capacity(d: int, n: int, c_n: float) -> float:
    """d^{n−1} / (c_n ln d) patterns, every one a fixed point w.h.p., for F(x) = xⁿ and any
    c_n > 2(2n−3)!! ([D17] as quoted in [R] A.3.1.2); at c_n = 2(2n−3)!! it is :func:`krotov_capacity`."""
    d, n = _int("d", d, 2), _int("n", n, 2)
    c_n = _positive("c_n", c_n)
    least = 2 * _double_factorial(n)
    if c_n <= least:
        raise ValueError(f"c_n must exceed 2(2n-3)!! = {least} for n = {n}, got {c_n!r}")
    return d ** (n - 1) / (c_n * math.log(d))
