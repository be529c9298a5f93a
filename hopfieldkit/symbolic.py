"""Symbolic derivations with sympy, and checks of the torch energies against them.

- :func:`hopfield_gradient`: E(ξ) of [R] Eq. 2 for small N, d; its symbolic gradient, the proof
  that ∇E = ξ − X softmax(βXᵀξ) (difference simplifies to 0), the fixed-point equation
  ξ = X softmax(βXᵀξ), and a lambdified gradient to compare with autodiff at random points.
- :func:`check_autodiff_gradient`: the torch energy's autodiff gradient against the symbolic one.
- :func:`lse_duality` / :func:`layernorm_duality`: for the lse and layer-norm Lagrangians, the
  activation ∂L/∂x (softmax, LayerNorm) and the Hessian in closed form, and the quadratic form
  vᵀ(∇²L)v written as a manifestly non-negative expression — the condition under which the
  Lagrangian energy decreases along its dynamics ([KH21] App. A).

Each check returns a :class:`SymbolicCheck` with the residual expression that must simplify to 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp
import torch


@dataclass
class SymbolicCheck:
    """One symbolic identity: ``residual`` simplifies to 0 when ``ok``."""

    name: str
    residual: sp.Expr | sp.Matrix
    ok: bool
    details: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


def _is_zero(expr) -> bool:
    if isinstance(expr, sp.MatrixBase):
        return all(_is_zero(e) for e in expr)
    return sp.simplify(expr) == 0


@dataclass
class HopfieldSymbolic:
    """Symbols, energy, gradient and fixed-point map of the Hopfield energy for small N, d."""

    N: int
    d: int
    xi: sp.Matrix
    X: sp.Matrix          # d × N, columns are patterns (the paper's layout)
    beta: sp.Symbol
    energy: sp.Expr
    gradient: sp.Matrix
    update: sp.Matrix     # X softmax(β Xᵀ ξ)
    checks: list[SymbolicCheck]
    gradient_fn: Callable  # (xi[d], X[d,N], beta) -> ndarray[d]


def hopfield_gradient(N: int = 2, d: int = 2) -> HopfieldSymbolic:
    """Derive ∇E and the fixed-point equation of [R] Eq. 2 symbolically (N, d small)."""
    if N < 1 or d < 1 or N * d > 16:
        raise ValueError("keep N, d small (N·d ≤ 16): the expressions grow quickly")
    beta = sp.Symbol("beta", positive=True)
    xi = sp.Matrix(sp.symbols(f"xi0:{d}", real=True))
    X = sp.Matrix(d, N, lambda i, j: sp.Symbol(f"x{j}_{i}", real=True))
    z = X.T * xi
    # log N and ½M² are constants; M = max norm is not differentiable in X but constant in ξ
    Mc = sp.Symbol("M", positive=True)
    lse = sp.log(sum(sp.exp(beta * z[i]) for i in range(N))) / beta
    E = -lse + (xi.T * xi)[0] / 2 + sp.log(N) / beta + Mc**2 / 2
    grad = sp.Matrix([sp.diff(E, xi[k]) for k in range(d)])
    Z = sum(sp.exp(beta * z[i]) for i in range(N))
    p = sp.Matrix([sp.exp(beta * z[i]) / Z for i in range(N)])
    update = X * p
    checks = [
        SymbolicCheck("gradient: dE/dxi == xi - X softmax(beta X^T xi)", sp.simplify(grad - (xi - update)),
                      _is_zero(grad - (xi - update))),
        SymbolicCheck("fixed points: grad E = 0  <=>  xi = X softmax(beta X^T xi)",
                      sp.simplify((xi - grad) - update), _is_zero((xi - grad) - update)),
    ]
    s_ = sp.symbols(f"s0:{N}", real=True)
    lse_s = sp.log(sum(sp.exp(beta * si) for si in s_)) / beta
    a18 = sp.Matrix([sp.diff(lse_s, si) - sp.exp(beta * si) / sum(sp.exp(beta * t) for t in s_) for si in s_])
    checks.append(SymbolicCheck("softmax(beta s) == grad_s lse(beta, s)  ([R] Lemma A18)",
                                sp.simplify(a18), _is_zero(a18)))
    fn = sp.lambdify((list(xi), list(X), beta), list(grad), "numpy")

    def gradient_fn(x_: np.ndarray, Xdn: np.ndarray, b: float) -> np.ndarray:
        return np.asarray(fn(list(x_), list(Xdn.reshape(-1)), b), dtype=float)

    return HopfieldSymbolic(N, d, xi, X, beta, E, grad, update, checks, gradient_fn)


def check_autodiff_gradient(N: int = 3, d: int = 2, points: int = 20, beta: float = 1.7,
                            seed: int = 0) -> float:
    """Max |autodiff ∇E − symbolic ∇E| of :class:`~hopfieldkit.HopfieldEnergy` at random points
    (float64). Returns the max abs error; a correct energy gives ~1e-15."""
    from .energy import autodiff_grad
    from .hopfield import HopfieldEnergy

    sym = hopfield_gradient(N, d)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(points):
        patterns = torch.randn(N, d, generator=g, dtype=torch.float64)
        xi = torch.randn(d, generator=g, dtype=torch.float64) * 2
        auto = autodiff_grad(HopfieldEnergy(patterns), xi, beta).numpy()
        # sympy's X is d × N with entries ordered row-major: X[i, j] = pattern j, coordinate i
        ref = sym.gradient_fn(xi.numpy(), patterns.T.contiguous().numpy(), beta)
        worst = max(worst, float(np.abs(auto - ref).max()))
    return worst


def lse_duality(n: int = 3) -> list[SymbolicCheck]:
    """lse Lagrangian L = β⁻¹ log Σ e^{βx}: g = softmax(βx), ∇²L = β(diag p − ppᵀ), and
    vᵀ∇²L v = β Σ_i p_i (v_i − Σ_j p_j v_j)² ≥ 0 (a p-weighted variance: PSD)."""
    beta = sp.Symbol("beta", positive=True)
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{n}", real=True))
    L = sp.log(sum(sp.exp(beta * xi) for xi in x)) / beta
    g = sp.Matrix([sp.diff(L, xi) for xi in x])
    Z = sum(sp.exp(beta * xi) for xi in x)
    p = sp.Matrix([sp.exp(beta * xi) / Z for xi in x])
    H = sp.hessian(L, list(x))
    H_closed = beta * (sp.diag(*p) - p * p.T)
    quad = (v.T * H * v)[0]
    vbar = sum(p[i] * v[i] for i in range(n))
    var = beta * sum(p[i] * (v[i] - vbar) ** 2 for i in range(n))
    return [
        SymbolicCheck("lse: activation dL/dx == softmax(beta x)", sp.simplify(g - p), _is_zero(g - p)),
        SymbolicCheck("lse: Hessian == beta (diag p - p p^T)", sp.simplify(H - H_closed), _is_zero(H - H_closed)),
        SymbolicCheck("lse: v^T H v == beta * Var_p(v) >= 0  (PSD)", sp.simplify(quad - var), _is_zero(quad - var)),
    ]


def layernorm_duality(n: int = 2) -> list[SymbolicCheck]:
    """Layer-norm Lagrangian L = n γ sqrt(Var(x) + ε) + Σ δ_i x_i [ET]:
    g = γ (x − x̄)/σ + δ (LayerNorm, σ = sqrt(Var + ε)), and ∇²L = (γ/σ)(P − ĝĝᵀ/n) with
    P = I − 11ᵀ/n, ĝ = (x − x̄)/σ. Then vᵀ∇²L v = (γ/σ)(‖Pv‖² − (ĝ·Pv)²/n) ≥ 0 by
    Cauchy–Schwarz, since ‖ĝ‖² = n·Var/(Var + ε) < n. The last identity is checked here."""
    gamma, eps = sp.Symbol("gamma", positive=True), sp.Symbol("epsilon", positive=True)
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{n}", real=True))
    delta = sp.Matrix(sp.symbols(f"delta0:{n}", real=True))
    mean = sum(x) / n
    var = sum((xi - mean) ** 2 for xi in x) / n
    sigma = sp.sqrt(var + eps)
    L = n * gamma * sigma + (delta.T * x)[0]
    g = sp.Matrix([sp.diff(L, xi) for xi in x])
    ghat = (x - sp.Matrix([mean] * n)) / sigma
    g_closed = gamma * ghat + delta
    H = sp.hessian(L, list(x))
    P = sp.eye(n) - sp.ones(n, n) / n
    H_closed = (gamma / sigma) * (P - ghat * ghat.T / n)
    Pv = P * v
    quad_closed = (gamma / sigma) * ((Pv.T * Pv)[0] - ((ghat.T * Pv)[0]) ** 2 / n)
    norm_ghat = sp.simplify((ghat.T * ghat)[0] - n * var / (var + eps))
    return [
        SymbolicCheck("layernorm: activation dL/dx == gamma (x - mean)/sigma + delta",
                      sp.simplify(g - g_closed), _is_zero(g - g_closed)),
        SymbolicCheck("layernorm: Hessian == (gamma/sigma)(P - ghat ghat^T / n)",
                      sp.simplify(H - H_closed), _is_zero(H - H_closed)),
        SymbolicCheck("layernorm: v^T H v == (gamma/sigma)(|Pv|^2 - (ghat.Pv)^2/n)",
                      sp.simplify((v.T * H * v)[0] - quad_closed), _is_zero((v.T * H * v)[0] - quad_closed)),
        SymbolicCheck("layernorm: |ghat|^2 == n Var/(Var + eps) < n", norm_ghat, norm_ghat == 0),
    ]
