"""Predictive coding with attention as inferred precision [SB §7].

Observations y_i (children, ``[m, d_y]``) are predicted by latent causes x_j (parents, the state
``[..., n, d_x]``) through μ(x_j) = x_j W + b. With prediction errors ε_ij = y_i − μ(x_j),
precision Π = diag(π_prec) (scaled by β) and a prior π over which cause explains each observation:

    F(q, x) = Σ_ij q_ij ½ β ε_ijᵀ Π ε_ij + Σ_i KL(q_i ‖ π_i) + ½ λ ‖x‖²
    q*_ij   = softmax_j(log π_ij − ½ β ε_ijᵀ Π ε_ij)          (the E-step is attention)
    F*(x)   = min_q F = −Σ_i log Σ_j π_ij exp(−½ β ε_ijᵀΠε_ij) + ½ λ ‖x‖²
    ∂F*/∂x_j = −Σ_i q*_ij (β Π ε_ij) Wᵀ + λ x_j

so each error stream ε_ij enters the dynamics with effective precision q*_ij β Π: attention acts as
an inferred precision. :class:`PredictiveCodingEnergy` is F*(x), an energy for ``descend``
(``event_dims = 2``: the state is all causes).
"""
from __future__ import annotations

import torch
from .._checks import check_beta, check_positive, check_tensor
from ..energy import Energy


class PredictiveCodingEnergy(Energy):
    """F*(x) of the module docstring for fixed observations ``y`` ``[m, d_y]``."""

    event_dims = 2

    def __init__(self, y: torch.Tensor, W: torch.Tensor, *, bias: torch.Tensor | None = None,
                 precision: torch.Tensor | None = None, log_prior: torch.Tensor | None = None,
                 weight_decay: float = 1e-2):
        super().__init__()
        check_tensor("y", y, ndim=2)
        check_tensor("W", W, ndim=2)
        if W.shape[1] != y.shape[1]:
            raise ValueError(f"W must map causes to observations: shape [d_x, {y.shape[1]}], got {tuple(W.shape)}")
        precision = torch.ones(y.shape[1], dtype=y.dtype) if precision is None else precision
        check_tensor("precision", precision, ndim=1)
        if not bool((precision > 0).all()):
            raise ValueError("precision must be positive")
        check_positive("weight_decay", weight_decay, allow_zero=True)
        self.register_buffer("y", y)
        self.register_buffer("W", W)
        self.register_buffer("b", torch.zeros(y.shape[1], dtype=y.dtype) if bias is None else bias)
        self.register_buffer("precision", precision)
        self.log_prior = log_prior
        self.weight_decay = float(weight_decay)

    def errors(self, x: torch.Tensor) -> torch.Tensor:
        """ε_ij = y_i − μ(x_j), ``[..., m, n, d_y]``."""
        mu = x @ self.W + self.b                       # [..., n, d_y]
        return self.y.unsqueeze(-2) - mu.unsqueeze(-3)

    def cost(self, x: torch.Tensor, beta=1.0) -> torch.Tensor:
        """½ β ε_ijᵀ Π ε_ij, the precision-weighted error of each stream, ``[..., m, n]``."""
        eps = self.errors(x)
        b = beta.unsqueeze(-1).unsqueeze(-1) if isinstance(beta, torch.Tensor) and beta.dim() else beta
        return 0.5 * b * (eps * eps * self.precision).sum(-1)

    def log_pi(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        """log π_ij normalised over the causes (uniform −log n without a prior)."""
        if self.log_prior is None:
            return torch.full((1, n), -torch.log(torch.tensor(float(n))).item(), dtype=dtype)
        return torch.log_softmax(self.log_prior.to(dtype), -1)

    def attention(self, x: torch.Tensor, beta=1.0) -> torch.Tensor:
        """q*_ij: which cause explains each observation, ``[..., m, n]``."""
        return torch.softmax(self.log_pi(x.shape[-2], x.dtype) - self.cost(x, beta), -1)

    def precisions(self, x: torch.Tensor, beta=1.0) -> torch.Tensor:
        """Effective precision of each error stream, q*_ij β Π, ``[..., m, n, d_y]``."""
        return self.attention(x, beta).unsqueeze(-1) * beta * self.precision

    def free_energy(self, x: torch.Tensor, q: torch.Tensor, beta=1.0) -> torch.Tensor:
        """F(q, x) = Σ q·cost + Σ_i KL(q_i ‖ π_i) + ½λ‖x‖² for any q with rows on the simplex;
        ≥ F*(x) = energy(x), with equality at q = q* (:meth:`attention`)."""
        lp = self.log_pi(x.shape[-2], x.dtype)
        kl = torch.where(q > 0, q * (torch.log(q.clamp_min(1e-300)) - lp), torch.zeros_like(q))
        return (q * self.cost(x, beta) + kl).sum((-1, -2)) + 0.5 * self.weight_decay * (x * x).sum((-1, -2))

    def forward(self, x: torch.Tensor, beta) -> torch.Tensor:
        check_tensor("x", x, min_dim=2, finite=False)
        if x.shape[-1] != self.W.shape[0]:
            raise ValueError(f"x must have shape [..., n, {self.W.shape[0]}], got {tuple(x.shape)}")
        beta = check_beta(beta, ref=x)
        logits = self.log_pi(x.shape[-2], x.dtype) - self.cost(x, beta)
        return -torch.logsumexp(logits, -1).sum(-1) + 0.5 * self.weight_decay * (x * x).sum((-1, -2))
