"""Log-priors over the adjacency structure: log π_ij, shape broadcastable to ``[..., m, n]``.

Each prior is a tensor of log-probabilities up to a constant per unit (the posterior normalises
it along the constraint axis); −inf forbids an edge. Plain attention is the uniform prior (None).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_positive


def causal(m: int, n: int | None = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Query i may take parent j only if j ≤ i + (n − m) (queries aligned to the end of the keys)."""
    n = m if n is None else n
    i = torch.arange(m, device=device)[:, None]
    j = torch.arange(n, device=device)[None, :]
    return torch.zeros(m, n, dtype=dtype, device=device).masked_fill(j > i + (n - m), float("-inf"))


def padding(key_padding_mask: torch.Tensor, *, dtype=torch.float32) -> torch.Tensor:
    """``[..., n]`` bool mask, True = padding (ignored key) → ``[..., 1, n]`` log-prior."""
    if key_padding_mask.dtype != torch.bool:
        raise TypeError(f"key_padding_mask must be a bool tensor (True = ignore), got {key_padding_mask.dtype}")
    zeros = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return zeros.masked_fill(key_padding_mask, float("-inf")).unsqueeze(-2)


def from_mask(mask: torch.Tensor, *, dtype=torch.float32) -> torch.Tensor:
    """A boolean attention mask (True = may attend, the convention of
    ``scaled_dot_product_attention``) or an additive float mask, as a log-prior."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    return mask.to(dtype)


def alibi(m: int, n: int | None = None, slope: float = 0.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """ALiBi-style distance prior log π_ij = −slope · |i' − j|, with i' = i + (n − m)."""
    n = m if n is None else n
    check_positive("slope", slope, allow_zero=True)
    i = torch.arange(m, device=device, dtype=dtype)[:, None] + (n - m)
    j = torch.arange(n, device=device, dtype=dtype)[None, :]
    return -slope * (i - j).abs()


def geometric(m: int, n: int | None = None, p: float = 0.5, *, causal_: bool = True,
              dtype=torch.float32, device=None) -> torch.Tensor:
    """Geometric prior over the distance back from the query: π(d) = p (1 − p)^d, d = i' − j ≥ 0
    (−inf for keys in the future when ``causal_``)."""
    if not (0 < p < 1):
        raise ValueError(f"p must be in (0, 1), got {p}")
    n = m if n is None else n
    i = torch.arange(m, device=device, dtype=dtype)[:, None] + (n - m)
    j = torch.arange(n, device=device, dtype=dtype)[None, :]
    dist = i - j
    lp = math.log(p) + dist.abs() * math.log1p(-p)
    return lp.masked_fill(dist < 0, float("-inf")) if causal_ else lp


class LearnedBias(nn.Module):
    """A learned log-prior bias ``[m, n]`` (zero-initialised: starts uniform)."""

    def __init__(self, m: int, n: int):
        super().__init__()
        check_positive("m", m, integer=True)
        check_positive("n", n, integer=True)
        self.bias = nn.Parameter(torch.zeros(m, n))

    def forward(self) -> torch.Tensor:
        return self.bias
