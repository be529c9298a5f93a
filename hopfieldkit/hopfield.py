"""The continuous modern Hopfield energy of Ramsauer et al. [R], and its low-rank variant for AiT.

Row convention throughout: ``patterns`` is ``[N, d]`` (row i is x_i), states are ``[..., d]``.

    E(ξ) = −lse(β, Xᵀξ) + ½ ξᵀξ + β⁻¹ log N + ½ M²,    lse(β, z) = β⁻¹ log Σ_i exp(β z_i),
    M = max_i ‖x_i‖                                                         ([R] Eq. 2)
    update (CCCP):  ξ_new = X softmax(β Xᵀ ξ)                               ([R] Eq. 3, Thm A1)
    ∇E(ξ) = ξ − X softmax(β Xᵀ ξ),   ∇²E(ξ) = I − β X(diag p − ppᵀ)Xᵀ       ([R] Eq. 59)
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import _onednn
from ._checks import beta_for, check_beta, checks_enabled, check_finite, check_last_dim, check_like, check_tensor
from .energy import Beta, Energy
from .lse import lse_rows


class HopfieldEnergy(Energy):
    """Continuous modern Hopfield energy ([R] Eq. 2) with its CCCP update.

    Args:
        patterns: ``[N, d]`` stored patterns, one per row. A tensor that requires grad (or an
            ``nn.Parameter``) stays attached, so gradients reach it through energies and updates.

    ``energy(xi, beta)`` takes ``xi`` of shape ``[..., d]`` and β > 0 (a float, or a tensor that
    broadcasts against the batch shape ``[...]``) and returns ``[...]``. The lse is computed with
    the max subtracted, so β up to 1e4 and pattern norms up to 1e3 stay finite.
    """

    def __init__(self, patterns: torch.Tensor):
        super().__init__()
        check_tensor("patterns", patterns, ndim=2)
        if patterns.shape[0] < 1 or patterns.shape[1] < 1:
            raise ValueError(f"patterns must be [N, d] with N, d >= 1, got {tuple(patterns.shape)}")
        if isinstance(patterns, nn.Parameter) or patterns.requires_grad:
            self._patterns = patterns  # a Parameter registers itself; a graph tensor stays attached
        else:
            self.register_buffer("_patterns", patterns)

    # -- the stored patterns ------------------------------------------------------------------
    @property
    def patterns(self) -> torch.Tensor:
        """``[N, d]`` stored patterns X (rows)."""
        return self._patterns

    @property
    def num_patterns(self) -> int:
        return self.patterns.shape[0]

    @property
    def dim(self) -> int:
        return self.patterns.shape[1]

    def max_norm(self) -> torch.Tensor:
        """M = max_i ‖x_i‖."""
        return self.patterns.norm(dim=-1).max()

    def _check(self, xi: torch.Tensor, beta: Beta) -> tuple[torch.Tensor, Beta]:
        X = self.patterns
        if not checks_enabled():  # inside descend's loop: inputs were validated once
            return X, beta_for(beta, xi.dim() - 1)
        check_tensor("xi", xi, min_dim=1, finite=False)
        check_last_dim("xi", xi, X.shape[1])
        check_like("xi", xi, "patterns", X)
        check_finite("xi", xi)
        beta = check_beta(beta, ref=xi)
        return X, beta_for(beta, xi.dim() - 1)

    # -- energy and its derivatives -----------------------------------------------------------
    def scores(self, xi: torch.Tensor) -> torch.Tensor:
        """Similarities Xᵀξ, shape ``[..., N]``."""
        return xi @ self.patterns.transpose(0, 1)

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        X, b = self._check(xi, beta)
        N = X.shape[0]
        M2 = self._max_sq_norm(X)
        lse = lse_rows(xi, X, b, owner=self)          # fused op: oneDNN scores, p kept for backward
        const = math.log(N) / b + 0.5 * M2
        return (-lse + 0.5 * (xi * xi).sum(-1, keepdim=True) + const).squeeze(-1)

    def _max_sq_norm(self, X: torch.Tensor) -> torch.Tensor:
        """M² = max_i ‖x_i‖², kept while X is unchanged and needs no gradient (the energy's
        constant: recomputing it read all of X on every energy evaluation)."""
        def compute():
            return torch.linalg.vector_norm(X, dim=-1).max() ** 2
        return _onednn.cached(self, "max_sq_norm", (X,), compute) if _onednn.cacheable(X) else compute()

    def weights(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Softmax weights p = softmax(β Xᵀξ), shape ``[..., N]``: how much each pattern is retrieved."""
        _, b = self._check(xi, beta)
        return self._weights(xi, b)

    def _weights(self, xi: torch.Tensor, b: Beta) -> torch.Tensor:
        """softmax(β Xᵀξ) for a checked, broadcast-ready β."""
        return torch.softmax(b * self.scores(xi), dim=-1)

    def update(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """CCCP step ξ ← X softmax(β Xᵀξ) ([R] Eq. 3); E never increases ([R] Thm A1).

        Float32 on the CPU without autograd, the step runs through oneDNN with X packed once, block
        by block (:mod:`hopfieldkit._onednn`; 1.5–2.3× faster than the plain matmul here)."""
        X, b = self._check(xi, beta)
        if _onednn.usable(X, xi):
            return _onednn.packed_patterns(self, X, xi).step(b * xi)
        return self._weights(xi, b) @ X

    def grad(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∇E(ξ) = ξ − X softmax(β Xᵀξ), so one gradient step of size 1 is one CCCP update."""
        return xi - self.update(xi, beta)

    def jacobian(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Jacobian of the update, J = β X(diag p − ppᵀ)Xᵀ = β Var_p[x] ([R] Eq. 59), ``[..., d, d]``."""
        X, b = self._check(xi, beta)
        p = self._weights(xi, b)
        mean = p @ X
        second = (p.unsqueeze(-1) * X).transpose(-1, -2) @ X  # Σ_i p_i x_i x_iᵀ
        bb = b.unsqueeze(-1) if isinstance(b, torch.Tensor) else b
        return bb * (second - mean.unsqueeze(-1) * mean.unsqueeze(-2))

    def hessian(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∇²E(ξ) = I − J(ξ), ``[..., d, d]``."""
        J = self.jacobian(xi, beta)
        return torch.eye(self.dim, dtype=J.dtype, device=J.device) - J


class LowRankPriorEnergy(HopfieldEnergy):
    """Hopfield energy whose attractors are low-rank priors upscaled by a learned map ([AiT] §1.9–1.10).

        Y = f_LT(γ) = γ W_LT + b_LT,   γ ∈ R^{M×r} (the priors), W_LT: r → D,
        E(ξ) = −lse(β, Yᵀξ) + ½ ξᵀξ + β⁻¹ log M + ½ max_i ‖Y_i‖²

    ``priors`` (γ) is a buffer by default, since AiT writes it with an EMA rather than by
    gradient; pass ``learn_priors=True`` to make it an ``nn.Parameter``. ``f_LT`` is an
    ``nn.Linear(rank, dim)`` and is trained through the Hopfield read. ``set_priors(γ)`` swaps in
    the memory of the current step (it keeps its autograd graph, if any).
    """

    def __init__(self, num_priors: int, rank: int, dim: int, *, learn_priors: bool = False,
                 priors: torch.Tensor | None = None, bias: bool = True):
        nn.Module.__init__(self)
        for name, v in (("num_priors", num_priors), ("rank", rank), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if priors is None:
            priors = torch.randn(num_priors, rank) / math.sqrt(rank)
        check_tensor("priors", priors, ndim=2)
        if tuple(priors.shape) != (num_priors, rank):
            raise ValueError(f"priors must have shape [{num_priors}, {rank}], got {tuple(priors.shape)}")
        if learn_priors:
            self.priors = nn.Parameter(priors.clone())
        else:
            self.register_buffer("priors", priors.clone())
        self.f_LT = nn.Linear(rank, dim, bias=bias)

    @property
    def patterns(self) -> torch.Tensor:
        """Y = f_LT(γ), ``[M, D]``: rank ≤ r (+1 with the bias)."""
        return self.f_LT(self.priors)

    @property
    def dim(self) -> int:
        return self.f_LT.out_features

    def set_priors(self, priors: torch.Tensor) -> None:
        """Replace γ (shape ``[M, r]``) by the memory of the current step."""
        check_tensor("priors", priors, ndim=2)
        if priors.shape != self.priors.shape:
            raise ValueError(f"priors must have shape {tuple(self.priors.shape)}, got {tuple(priors.shape)}")
        if isinstance(self.priors, nn.Parameter):
            with torch.no_grad():
                self.priors.copy_(priors)
        else:
            self.priors = priors
