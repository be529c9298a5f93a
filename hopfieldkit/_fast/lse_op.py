"""lse(β, Xᵀξ) as its own autograd op: the softmax weights of the forward pass are kept, so the
backward pass, ∂lse/∂ξ = pᵀX and ∂lse/∂X = p ξᵀ (per state), costs one product instead of an exp
and two products. Exact: the same value and derivatives as the plain composition, to any order
(a differentiated backward, ``create_graph=True``, recomputes p from differentiable ops).

The forward pass takes the scores through oneDNN where :mod:`.policy` allows it, and the lse from
torch's softmax kernel (ℓ = max_j s_j − log max_j p_j, :func:`.onednn.softmax_lse`), whose exp stays
fast where ``torch.exp`` through MKL is slow (underflowing inputs of large-β retrieval).
"""
from __future__ import annotations

import torch

from . import cache, onednn, policy


def packed_patterns(owner: object | None, X: torch.Tensor, xi: torch.Tensor) -> onednn.PackedPatterns:
    """X packed for states like ``xi`` [..., d], kept in ``owner`` (:mod:`.cache`); packed anew when
    the batch grows past twice the one it was packed for (oneDNN's layout is chosen per batch size)."""
    rows = max(1, xi.numel() // X.shape[1])
    return cache.cached(owner, "patterns", (X,), lambda: onednn.PackedPatterns(X, rows),
                        fits=lambda p: rows <= 2 * p.batch)


def forward(xi, X, b, owner, keep: bool, route: str | None = None):
    """(lse [..., 1], what the backward needs or None), graph-free (``route``: from
    :func:`.policy.hopfield_route`, when the caller has it)."""
    q = b * xi
    if (route or policy.hopfield_route(X, xi, b)) == "onednn":
        packed = packed_patterns(owner, X, xi)
        if keep:
            total, kept = packed.lse(q, keep=True)
            return total / b, (packed, kept, total)
        return packed.lse(q) / b, None
    p, total = onednn.softmax_lse(q @ X.transpose(0, 1))
    return total / b, ((None, p, total) if keep else None)


def _weights(saved) -> torch.Tensor:
    """softmax(β Xᵀξ) [..., N] from what the forward kept."""
    packed, kept, total = saved
    if packed is None:
        return kept
    return torch.cat([p * torch.exp(ell - total) for p, ell in kept.blocks], dim=-1)


class LseSimilarity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xi, X, b, owner):
        out, saved = forward(xi, X, b, owner, keep=True)         # (autograd is off inside forward)
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
