"""Sparsemax: the free-energy minimiser when the entropy −H(q) is replaced by ½‖q‖² [SB §4].

    sparsemax(s) = argmin_{q ∈ simplex} −⟨q, s⟩ + ½‖q‖² = the Euclidean projection of s onto the simplex
"""
from __future__ import annotations

import torch


def sparsemax(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Projection of ``s`` onto the probability simplex along ``dim`` (Martins & Astudillo 2016)."""
    z = s.movedim(dim, -1)
    srt = z.sort(dim=-1, descending=True).values
    cs = srt.cumsum(-1) - 1
    r = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    support = (srt - cs / r) > 0
    k = support.sum(-1, keepdim=True)
    tau = cs.gather(-1, k - 1) / k.to(z.dtype)
    return (z - tau).clamp_min(0).movedim(-1, dim)
