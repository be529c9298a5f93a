"""Position codes for patch tokens."""
from __future__ import annotations

import torch


def sincos_2d(side: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position codes of a ``side × side`` grid, ``[side², dim]``:
    for the row y and the column x, ``[sin(yω), cos(yω), sin(xω), cos(xω)]`` with ω_i = 100^(−i/(dim/4))."""
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"side must be a positive int (patches per image side), got {side!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 4 or dim % 4:
        raise ValueError(f"sincos position codes need dim a positive multiple of 4, got {dim!r}")
    q = dim // 4
    freq = 1.0 / (100.0 ** (torch.arange(q) / q))
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    parts = []
    for c in (ys.reshape(-1, 1) * freq, xs.reshape(-1, 1) * freq):
        parts += [torch.sin(c), torch.cos(c)]
    return torch.cat(parts, -1)
