"""Expanding attention [SB §6]: a geometric prior over the distance back from the query, whose
rate has a conjugate Beta hyper-prior inferred per query.

For query i (queries aligned to the end of the keys, i' = i + n − m), distance d = i' − j ≥ 0:

    π(d | p) = p (1 − p)^d,   p ~ Beta(α, β),   p̂ = α / (α + β)
    window D = the largest d with (1 − p̂)^d ≥ tail  (the geometric tail beyond D holds < tail)
    a_d ∝ π(d | p̂) ψ(q_i, k_{i'−d}),  d ≤ D                               (E-step on the window)
    α ← α + 1,  β ← β + Σ_d a_d d                                          (conjugate update)

repeated until no query's window grows (or it covers every key). The window grows exactly when
the attention's mean distance exceeds the prior mean (1 − p̂)/p̂.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_positive, check_tensor
from .posterior import potential_scores


@dataclass
class ExpandingResult:
    output: torch.Tensor      # [..., m, d_v]
    weights: torch.Tensor     # [..., m, n] final attention (zero outside the window)
    window: torch.Tensor      # [..., m] final window D (long)
    windows: list[torch.Tensor]  # the window after each iteration
    alpha: torch.Tensor       # [..., m]
    beta: torch.Tensor        # [..., m]
    iters: int


def _window(p: torch.Tensor, tail: float, d_max: torch.Tensor) -> torch.Tensor:
    D = torch.floor(math.log(tail) / torch.log1p(-p.clamp(max=1 - 1e-12)))
    return torch.minimum(D.clamp_min(0).long(), d_max)


def expanding_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, alpha: float = 1.0,
                        beta: float = 1.0, tail: float = 0.05, max_iters: int = 50,
                        scale: float | None = None) -> ExpandingResult:
    """Causal attention whose window grows with the inferred Beta–geometric prior (module docstring)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, min_dim=2)
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    m, n = q.shape[-2], k.shape[-2]
    if m > n:
        raise ValueError(f"expanding attention needs m <= n (queries aligned to the end of the keys), got {m} > {n}")
    s = potential_scores(q, k, "dot", scale=scale)
    ip = torch.arange(m, device=q.device) + (n - m)
    dist = (ip[:, None] - torch.arange(n, device=q.device)[None, :]).to(q.dtype)   # [m, n]
    d_max = ip.expand(s.shape[:-1])
    a = torch.full(s.shape[:-1], float(alpha), dtype=q.dtype, device=q.device)
    b = torch.full(s.shape[:-1], float(beta), dtype=q.dtype, device=q.device)
    D = _window(a / (a + b), tail, d_max)
    windows = [D]
    it = 0
    for it in range(1, max_iters + 1):
        p = (a / (a + b)).unsqueeze(-1)
        inside = (dist >= 0) & (dist <= D.unsqueeze(-1).to(q.dtype))
        logits = (s + torch.log(p) + dist.clamp_min(0) * torch.log1p(-p)).masked_fill(~inside, float("-inf"))
        W = torch.softmax(logits, dim=-1)
        a, b = a + 1, b + (W * dist.clamp_min(0)).sum(-1)
        D_new = torch.maximum(_window(a / (a + b), tail, d_max), D)
        grew = D_new > D
        D = D_new
        windows.append(D)
        if not bool(grew.any()):
            break
    return ExpandingResult(W @ v, W, D, windows, a, b, it)
