"""The two products of a Hopfield memory, Xᵀξ and Σ_i p_i x_i, for each layout of states and patterns.

Patterns ``X`` are ``[N, d]`` (one shared memory), ``[..., N, d]`` (a memory per state) or
``[..., 1, N, d]`` for states ``[..., S, d]``: one memory shared by the S states of a batch entry
(the heads of a layer: memory ``[B, H, 1, N, d]``, states ``[B, H, S, d]``). The last layout is one
batched matrix product; written as the general broadcast it would materialise ``[..., S, N, d]``.
"""
from __future__ import annotations

import torch


def shared_by_rows(X: torch.Tensor, rows: torch.Tensor) -> bool:
    """``X`` is ``[..., 1, N, d]`` against ``rows`` ``[..., S, k]``: one memory for S rows."""
    return X.dim() > 2 and X.dim() == rows.dim() + 1 and X.shape[-3] == 1


def scores(xi: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Xᵀξ for every state: ``[..., N]``."""
    if X.dim() == 2:
        return xi @ X.transpose(0, 1)
    if shared_by_rows(X, xi):
        return xi @ X.squeeze(-3).transpose(-1, -2)
    return (X @ xi.unsqueeze(-1)).squeeze(-1)


def read(p: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Σ_i p_i x_i for weights ``p`` ``[..., N]``: ``[..., d]``."""
    if X.dim() == 2:
        return p @ X
    if shared_by_rows(X, p):
        return p @ X.squeeze(-3)
    return (p.unsqueeze(-2) @ X).squeeze(-2)
