"""The log-sum-exp of similarities, lse(β, Xᵀξ) = β⁻¹ log Σ_i exp(β x_iᵀ ξ) ([R] Eq. 1), as one op.

``lse_similarity(xi, patterns, beta)`` is the interaction term of the Hopfield energy (and of any
energy a user builds from it). Its value and derivatives are those of the plain composition
``torch.logsumexp(beta * xi @ X.T, -1) / beta``; where :mod:`hopfieldkit._fast` allows, it runs as
one op instead (oneDNN scores on the CPU, the softmax weights of the forward pass kept for a
one-product backward, ∂lse/∂ξ = pᵀX and ∂lse/∂X = p ξᵀ), which makes autodiff descent of energies
built on it about as fast as a closed-form step (README, Performance).
"""
from __future__ import annotations

import torch

from . import _fast
from ._checks import beta_for, check_beta, check_beta_shape, check_finite, check_last_dim, check_like, check_tensor, checks_enabled
from .energy import Beta


def lse_similarity(xi: torch.Tensor, patterns: torch.Tensor, beta: Beta) -> torch.Tensor:
    """lse(β, Xᵀξ) = β⁻¹ log Σ_i exp(β x_iᵀ ξ) for states ``xi`` [..., d] and ``patterns`` X [N, d].

    β > 0 is a float or a tensor that broadcasts against the batch shape ``[...]``. Returns ``[...]``.
    The max is subtracted, so large β and large norms stay finite. ∂/∂ξ = X softmax(β Xᵀξ).
    """
    if checks_enabled():
        check_tensor("patterns", patterns, ndim=2)
        check_tensor("xi", xi, min_dim=1)
        check_last_dim("xi", xi, patterns.shape[1])
        check_like("xi", xi, "patterns", patterns)
        check_finite("patterns", patterns)
        beta = check_beta(beta, ref=xi)
        check_beta_shape(beta, xi.shape[:-1])
    b = beta_for(beta, xi.dim() - 1)
    out = _fast.lse(xi, patterns, b)
    if out is None:
        out = torch.logsumexp(b * (xi @ patterns.transpose(0, 1)), dim=-1, keepdim=True) / b
    return out.squeeze(-1)
