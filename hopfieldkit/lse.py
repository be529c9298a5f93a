"""The log-sum-exp of similarities, lse(β, Xᵀξ) = β⁻¹ log Σ_i exp(β x_iᵀ ξ) ([R] Eq. 1), as one op.

``lse_similarity(xi, patterns, beta)`` is the interaction term of the Hopfield energy (and of any
energy a user builds from it). Written with plain torch ops, ``torch.logsumexp(beta * xi @ X.T, -1)``
costs 1.2–2.7× a closed-form Hopfield step under autodiff on the CPUs measured here: MKL's exp is
slow (and ~8× slower on the underflowing inputs of large-β retrieval), the backward pass computes
the exponentials again, and MKL's sgemm reaches half of oneDNN's speed. This op instead

- computes the scores through oneDNN with X packed once (float32, N·d ≥ 2^15; :mod:`._onednn`),
  block by block, and the lse from torch's softmax kernel (ℓ = max_j s_j − log max_j p_j);
- keeps the softmax weights p for the backward pass, ∂lse/∂ξ = p X and ∂lse/∂X = pᵀξ (per state),
  which then costs one product instead of an exp and two products.

It is exact (the same value and derivatives as the plain composition) and differentiable to any
order: when the backward pass is itself differentiated (``create_graph=True``), it is recomputed
from differentiable ops. Inside torch.func transforms, under torch.compile, off the CPU, or when β
requires grad, the plain composition runs (every transform sees ordinary torch ops).
"""
from __future__ import annotations

import torch

from . import _onednn
from ._checks import beta_for, check_beta, check_finite, check_last_dim, check_like, check_tensor, checks_enabled
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
    return lse_rows(xi, patterns, beta_for(beta, xi.dim() - 1)).squeeze(-1)


def lse_rows(xi: torch.Tensor, X: torch.Tensor, b: Beta, owner: object | None = None) -> torch.Tensor:
    """Unchecked core: lse(β, Xᵀξ) as ``[..., 1]`` for a broadcast-ready β (float or ``[..., 1]``).
    ``owner`` keeps X's packed copy (an energy module); None: a module-wide weak cache."""
    if not _fast(xi, X, b):
        return torch.logsumexp(b * (xi @ X.transpose(0, 1)), dim=-1, keepdim=True) / b
    if torch.is_grad_enabled() and (xi.requires_grad or X.requires_grad):
        return _LseSimilarity.apply(xi, X, b, owner)
    return _forward(xi, X, b, owner, keep=False)[0]


def _fast(xi: torch.Tensor, X: torch.Tensor, b: Beta) -> bool:
    """The op may run (plain autograd only, CPU, float32/64, β a constant)."""
    if xi.device.type != "cpu" or X.device.type != "cpu" or xi.dtype not in (torch.float32, torch.float64):
        return False
    if torch.compiler.is_compiling() or _onednn._in_transform():
        return False
    if isinstance(b, torch.Tensor) and b.requires_grad:
        return False
    return True


def _forward(xi, X, b, owner, keep: bool):
    """(lse [..., 1], what the backward needs or None)."""
    q = b * xi
    if _onednn.usable(X, xi):
        packed = _onednn.packed_patterns(owner, X, xi)
        if keep:
            total, kept = packed.lse(q, keep=True)
            return total / b, (packed, kept, total)
        return packed.lse(q) / b, None
    p, total = _onednn.softmax_lse(q @ X.transpose(0, 1))
    return total / b, ((None, p, total) if keep else None)


def _weights(saved) -> torch.Tensor:
    """softmax(β Xᵀξ) [..., N] from what the forward kept."""
    packed, kept, total = saved
    if packed is None:
        return kept
    return torch.cat([p * torch.exp(ell - total) for p, ell in kept.blocks], dim=-1)


class _LseSimilarity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xi, X, b, owner):
        out, saved = _forward(xi, X, b, owner, keep=True)
        ctx.saved = saved
        ctx.b = b
        ctx.save_for_backward(xi, X)
        return out

    @staticmethod
    def backward(ctx, g):
        xi, X = ctx.saved_tensors
        need_xi, need_X = ctx.needs_input_grad[:2]
        saved, ctx.saved = ctx.saved, None          # a second backward (retain_graph) recomputes p
        if torch.is_grad_enabled() or saved is None:     # create_graph: differentiable recompute of p
            p = torch.softmax(ctx.b * (xi @ X.transpose(0, 1)), dim=-1)
        elif need_xi and not need_X and saved[0] is not None:
            packed, kept, total = saved
            d_xi = packed.weighted_sum(kept, total, g)   # g·pX, block by block
            packed.release(kept)
            return d_xi, None, None, None
        else:
            p = _weights(saved)
            if saved[0] is not None:
                saved[0].release(saved[1])
        gp = g * p                                                          # [..., N]
        d_xi = gp @ X if need_xi else None
        d_X = gp.reshape(-1, gp.shape[-1]).transpose(0, 1) @ xi.reshape(-1, xi.shape[-1]) if need_X else None
        return d_xi, d_X, None, None
