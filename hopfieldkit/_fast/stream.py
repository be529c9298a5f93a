"""Hopfield products over blocks of patterns, so the ``[B, N]`` scores are never held whole.

For q = βξ and patterns in blocks X_c (any dtype and device; a memory per sample ``[..., N, d]``
and a mask ``[..., N]`` included), with s_c = X_c q, a running maximum m and running sums

    m' = max(m, max_j s_cj),   Z' = Z e^{m − m'} + Σ_j e^{s_cj − m'},   A' = A e^{m − m'} + Σ_j e^{s_cj − m'} x_j

give lse(s) = m + log Z and softmax(s)ᵀX = A / Z at the end: the online softmax of flash
attention. Only one block of scores exists at a time (:data:`STREAM_BYTES` in all).
"""
from __future__ import annotations

import torch

from .._products import read, scores

# Score matrices larger than this stream in blocks of about this many bytes.
STREAM_BYTES = 64 << 20


def _rows(X: torch.Tensor, xi: torch.Tensor) -> int:
    if X.dim() == 2:
        return max(1, xi.numel() // xi.shape[-1])
    return max(1, torch.broadcast_shapes(xi.shape[:-1], X.shape[:-2]).numel())


def applies(X: torch.Tensor, xi: torch.Tensor) -> bool:
    """The whole score matrix would exceed :data:`STREAM_BYTES`."""
    return _rows(X, xi) * X.shape[-2] * xi.element_size() > STREAM_BYTES


def block_size(X: torch.Tensor, xi: torch.Tensor) -> int:
    return max(256, STREAM_BYTES // (4 * _rows(X, xi) * xi.element_size()))


def lse_and_step(q: torch.Tensor, X: torch.Tensor, mask: torch.Tensor | None, step: bool):
    """(log Σ_i exp(q·x_i) as ``[..., 1]``, and softmax(Xq)ᵀX ``[..., d]`` if ``step`` else None)."""
    n = block_size(X, q)
    m = z = acc = None
    for i in range(0, X.shape[-2], n):
        Xc = X[..., i:i + n, :]
        s = scores(q, Xc)
        if mask is not None:
            s = s.masked_fill(~mask[..., i:i + n], float("-inf"))
        mc = s.amax(-1, keepdim=True)
        if m is None:
            m = mc.clamp_min(torch.finfo(s.dtype).min)        # finite: an all-masked block adds 0
            e = torch.exp(s.sub_(m))
            z = e.sum(-1, keepdim=True)
            acc = read(e, Xc) if step else None
            continue
        new = torch.maximum(m, mc)
        scale = torch.exp(m - new)
        e = torch.exp(s.sub_(new))
        z = z.mul_(scale).add_(e.sum(-1, keepdim=True))
        if step:
            acc = acc.mul_(scale).add_(read(e, Xc))
        m = new
        del s, e
    lse = m + torch.log(z)
    return lse, (acc.div_(z) if step else None)

