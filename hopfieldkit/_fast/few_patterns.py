"""The Hopfield update for a memory of a few patterns, with the scores laid out pattern-major.

For N < :data:`MAX_PATTERNS` patterns and many states, the update softmax(β Xξ)ᵀX is computed as

    S = β X Ξᵀ   [N, R]  (R = the states, flattened),   P = softmax(S) along the pattern axis 0,   Ξ' = Pᵀ X

which is the same expression with the ``[R, N]`` scores transposed. On the CPU a softmax over a
short last axis (N below the vector width) runs far slower than one over the leading axis of a
``[N, R]`` matrix, where R is the contiguous axis. Every op is a plain differentiable torch op,
so the route applies with or without an autograd graph.
"""
from __future__ import annotations

import torch

# fewer patterns than this (a softmax row below the CPU's vector width) and at least MIN_ROWS states
MAX_PATTERNS = 16
MIN_ROWS = 1024


def applies(X: torch.Tensor, xi: torch.Tensor, b: object, mask: torch.Tensor | None) -> bool:
    """One shared ``[N, d]`` memory without a mask, N < :data:`MAX_PATTERNS`, at least
    :data:`MIN_ROWS` states, CPU, and one β for all states. The tracing condition is :mod:`.policy`'s."""
    if X.dim() != 2 or mask is not None or X.shape[0] >= MAX_PATTERNS:
        return False
    if X.device.type != "cpu" or xi.device.type != "cpu":
        return False
    if isinstance(b, torch.Tensor) and b.dim() > 0:
        return False
    return xi.numel() >= MIN_ROWS * xi.shape[-1]


def step(xi: torch.Tensor, X: torch.Tensor, b) -> torch.Tensor:
    """softmax(β Xξ)ᵀX for every state of ``xi`` [..., d], shape ``xi.shape``."""
    s = X @ xi.reshape(-1, xi.shape[-1]).T                                     # [N, R]
    p = torch.softmax(s if isinstance(b, (int, float)) and b == 1 else b * s, dim=0)
    return (p.T @ X).view(xi.shape)


def step_and_lse(xi: torch.Tensor, X: torch.Tensor, b) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax(β Xξ)ᵀX, log Σ_i exp(β x_iᵀξ) ``[..., 1]``) from the same pattern-major scores."""
    s = X @ xi.reshape(-1, xi.shape[-1]).T                                     # [N, R]
    if not (isinstance(b, (int, float)) and b == 1):
        s = b * s
    ell = torch.logsumexp(s, dim=0, keepdim=True)                              # [1, R]
    return (torch.exp(s - ell).T @ X).view(xi.shape), ell.reshape(*xi.shape[:-1], 1)
