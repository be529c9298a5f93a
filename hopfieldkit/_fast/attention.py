"""The value read of an association, softmax(β ξKᵀ) V, as torch's fused attention kernel.

``torch.nn.functional.scaled_dot_product_attention`` computes the same expression without holding
the weights for the backward pass (flash-style kernels on CPU and GPU). A per-head β is folded
into the states, so the kernel's scale is 1. Its dropout draws other random numbers than
``torch.nn.functional.dropout`` on the weights: the two paths are equal without dropout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def read(xi: torch.Tensor, K: torch.Tensor, V: torch.Tensor, b, mask: torch.Tensor | None,
         dropout_p: float) -> torch.Tensor:
    """softmax(β ξ Kᵀ) V for states ``xi`` [B, H, S, d], keys [B or 1, H, N, d], values
    [B or 1, H, N, d_v], β a float or ``[1, H, 1]``, mask [B, N] (True = a real member)."""
    shape = (xi.shape[0], *K.shape[1:-2])
    K = K.expand(*shape, *K.shape[-2:])
    V = V.expand(*shape, *V.shape[-2:])
    attn_mask = None if mask is None else mask[:, None, None, :]
    if isinstance(b, torch.Tensor):
        return F.scaled_dot_product_attention(xi * b.unsqueeze(-1), K, V, attn_mask=attn_mask,
                                              dropout_p=dropout_p, scale=1.0)
    return F.scaled_dot_product_attention(xi, K, V, attn_mask=attn_mask, dropout_p=dropout_p, scale=float(b))
