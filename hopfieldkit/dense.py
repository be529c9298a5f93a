"""Dense associative memories of Krotov & Hopfield [KH16] and Demircigil et al. [D17].

Binary states σ ∈ {−1, +1}^d and K stored patterns x_μ (rows of ``patterns``, ``[K, d]``, or a
stack ``[..., K, d]``: one memory per batch entry of the states, e.g. one per trial of a capacity
scan):

    E(σ) = −β⁻¹ Σ_μ F(β x_μᵀσ)                                           ([KH16] Eq. 2)
    F(z) = zⁿ ("poly"),  max(z, 0)ⁿ ("rectified", [KH16] Eq. 3),  exp(z) ("exp", [D17])
    "lse":  E(σ) = −β⁻¹ log Σ_μ exp(β x_μᵀσ) = −β⁻¹ log(−β E_exp(σ))

β only rescales the energy (β^{n−1} for polynomials); it leaves the minima and the update unchanged.
The asynchronous update ([KH16] Eq. 4) sets σ_i to the sign with the lower energy, all other
neurons held fixed, so no flip raises E. For F = exp the comparison is done in the log domain
(Σ e^{a} vs Σ e^{b} as lse(a) vs lse(b)), so it never overflows.

The exponential energy itself does overflow: e^{βz} exceeds the largest float32 (3.4e38) once an
overlap βz passes 88.7 (709.8 in float64), e.g. any stored pattern of a memory with d ≥ 89. It is
then refused with an error that names the overflow, and inside :func:`~hopfieldkit.descend` (whose
loop skips checks) its −inf ends the state as diverged, never converged. ``F="lse"`` is the same
memory in log form: a monotone function of the exponential energy, so it has the same minima, the
same update and the same stability under flips, and it is finite for every overlap.

The continuous relaxation (``state="continuous"``) is model A of [KH21] with G = ln cosh
(σ = tanh v), bounded below because |tanh| ≤ 1:

    E(v) = Σ_i (v_i tanh v_i − ln cosh v_i) − β⁻¹ Σ_μ F(β x_μᵀ tanh v)
"""
from __future__ import annotations

import math

import torch

from torch._C._functorch import is_functorch_wrapped_tensor

from . import _products
from ._checks import beta_for, check_beta, check_beta_shape, checks_enabled, check_choice, check_finite, check_last_dim, check_like, check_tensor
from .energy import Beta, Energy

_FAMILIES = ("poly", "rectified", "exp", "lse")


def _log_cosh(v: torch.Tensor) -> torch.Tensor:
    # ln cosh v = |v| + log1p(e^{−2|v|}) − ln 2, stable for large |v|
    a = v.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


class DenseAMEnergy(Energy):
    """Dense associative memory ([KH16], [D17]); see the module docstring for the equations.

    Args:
        patterns: ``[K, d]`` stored patterns (typically ±1 entries), or ``[..., K, d]``: one memory
            per batch entry, broadcast against the states' batch shape.
        F: ``"poly"`` (zⁿ), ``"rectified"`` (max(z,0)ⁿ), ``"exp"`` (eᶻ) or ``"lse"`` (the log of
            the exponential energy: same minima and update, no overflow).
        n: the power for the polynomial families (n = 2 is the classical Hopfield network).
        state: ``"binary"`` (σ ∈ {±1}^d, ``update`` = one asynchronous sweep) or ``"continuous"``
            (v ∈ R^d with σ = tanh v; use the gradient methods of ``descend``).
    """

    def __init__(self, patterns: torch.Tensor, F: str = "poly", n: int = 3, *, state: str = "binary"):
        super().__init__()
        check_tensor("patterns", patterns, min_dim=2)
        self.F = check_choice("F", F, _FAMILIES)
        self.state = check_choice("state", state, ("binary", "continuous"))
        if F in ("poly", "rectified") and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive int for F={F!r}, got {n!r}")
        self.n = n
        self.register_buffer("patterns", patterns)

    def _check(self, s: torch.Tensor, beta: Beta, name: str) -> Beta:
        check_tensor(name, s, min_dim=1, finite=False)
        check_last_dim(name, s, self.patterns.shape[-1])
        check_like(name, s, "patterns", self.patterns)
        check_finite(name, s)
        beta = check_beta(beta, ref=s)
        check_beta_shape(beta, s.shape[:-1])
        return beta_for(beta, s.dim() - 1)

    @property
    def binary(self) -> bool:
        """States are ±1 vectors (``state="binary"``)."""
        return self.state == "binary"

    def interaction(self, overlaps: torch.Tensor, beta: Beta) -> torch.Tensor:
        """β⁻¹ Σ_μ F(β z_μ) over the last axis of ``overlaps`` z (in the log domain for exp)."""
        z = beta * overlaps
        if self.F in ("exp", "lse"):
            lse = torch.logsumexp(z, dim=-1, keepdim=True)
            if self.F == "lse":
                return (lse / beta).squeeze(-1)
            limit = math.log(torch.finfo(z.dtype).max)
            if checks_enabled() and not is_functorch_wrapped_tensor(lse) and bool((lse > limit).any()):
                raise ValueError(
                    f"the exponential dense AM energy overflows {z.dtype}: log Σ_μ exp(β x_μᵀσ) reaches "
                    f"{float(lse.max()):.4g} > {limit:.4g} (exp of it is not representable). Use F='lse' (the "
                    f"same memory in log form: same minima and update), float64, or a smaller beta")
            return (torch.exp(lse) / beta).squeeze(-1)
        if self.F == "rectified":
            z = torch.relu(z)
        return ((z ** self.n).sum(-1, keepdim=True) / beta).squeeze(-1)

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        name = "sigma" if self.state == "binary" else "v"
        b = self._check(xi, beta, name)
        if self.state == "binary":
            return -self.interaction(_products.scores(xi, self.patterns), b)
        s = torch.tanh(xi)
        leak = (xi * s - _log_cosh(xi)).sum(-1)
        return leak - self.interaction(_products.scores(s, self.patterns), b)

    def _gap(self, h_plus: torch.Tensor, h_minus: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Δ = E(σ_i = −1) − E(σ_i = +1) from the overlaps ``[..., K]`` with σ_i = +1 and −1. For
        F = exp it is formed from the log domain: exact in sign, ±inf where it overflows."""
        b = beta.squeeze(-1) if isinstance(beta, torch.Tensor) and beta.dim() else beta
        if self.F in ("exp", "lse"):
            a, c = torch.logsumexp(beta * h_plus, -1), torch.logsumexp(beta * h_minus, -1)
            if self.F == "lse":
                return (a - c) / b
            size = torch.exp(torch.maximum(a, c)) * -torch.expm1(-(a - c).abs())
            return torch.where(a == c, torch.zeros_like(a), torch.sign(a - c) * size) / b
        return self.interaction(h_plus, beta) - self.interaction(h_minus, beta)

    def field_gaps(self, sigma: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        """Δ_i = E(σ_i = −1) − E(σ_i = +1) for every neuron (the others fixed), ``[..., d]``."""
        if self.state != "binary":
            raise ValueError("field_gaps needs state='binary'")
        b = self._check(sigma, beta, "sigma")
        XT = self.patterns.transpose(-1, -2)                                  # [..., d, K]
        base = _products.scores(sigma, self.patterns).unsqueeze(-2) - sigma.unsqueeze(-1) * XT   # without neuron i
        bb = b.unsqueeze(-1) if isinstance(b, torch.Tensor) and b.dim() else b
        return self._gap(base + XT, base - XT, bb)

    def sweep(self, sigma: torch.Tensor, beta: Beta = 1.0, order: torch.Tensor | None = None,
              choose=None) -> torch.Tensor:
        """One asynchronous sweep of [KH16] Eq. 4 over the neurons in ``order`` (default 0..d−1):
        each sets σ_i ← choose(Δ_i, σ_i) given all others; the default takes the sign of lower
        energy (a tie keeps the current sign), so E never increases. Batched over ``sigma``'s
        leading dimensions; the overlaps x_μᵀσ are updated incrementally, O(K) per neuron and state.
        """
        from .pairwise import check_binary, deterministic

        if self.state != "binary":
            raise ValueError("sweep needs state='binary'; relax with descend(method='armijo')")
        b = self._check(sigma, beta, "sigma")
        check_binary("sigma", sigma)
        choose = deterministic if choose is None else choose
        d = self.patterns.shape[-1]
        s = sigma.clone()
        h = _products.scores(s, self.patterns)                  # [..., K]
        for i in (range(d) if order is None else order.tolist()):
            xi_col = self.patterns[..., :, i]                   # [..., K]
            base = h - s[..., i : i + 1] * xi_col               # overlaps without neuron i
            new = choose(self._gap(base + xi_col, base - xi_col, b), s[..., i])
            h = base + new.unsqueeze(-1) * xi_col
            s[..., i] = new
        return s

    def update(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Binary states: one asynchronous sweep (never raises E). Not defined for continuous states."""
        if self.state != "binary":
            raise NotImplementedError("continuous DenseAMEnergy has no closed-form update; use 'armijo'")
        return self.sweep(xi, beta)

    @property
    def has_update(self) -> bool:
        """Only binary states have the closed-form (asynchronous) update."""
        return self.state == "binary"

    def sign_activation(self, v: torch.Tensor) -> torch.Tensor:
        """The relaxed state σ = tanh v (for ``state='continuous'``)."""
        return torch.tanh(v)
