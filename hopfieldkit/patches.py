"""Images as sequences of patch tokens (the one patch layout of the library and ``ait``).

    patchify:   [B, C, H, W] → [B, (H/p)(W/p), p·p·C],  tokens row-major, each patch flattened in
                (row in patch, column in patch, channel) order
    unpatchify: the inverse
"""
from __future__ import annotations

import torch

__all__ = ["patchify", "unpatchify"]


def patchify(img: torch.Tensor, p: int) -> torch.Tensor:
    """``[B, C, H, W]`` → ``[B, N, p·p·C]`` with N = (H/p)(W/p), row-major over the patch grid."""
    if img.dim() != 4:
        raise ValueError(f"img must be [B, C, H, W], got shape {tuple(img.shape)}")
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"patch size must be a positive int, got {p!r}")
    B, C, H, W = img.shape
    if H % p or W % p:
        raise ValueError(f"image size {H}×{W} is not divisible by the patch size {p}")
    x = img.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(x: torch.Tensor, p: int, C: int, H: int, W: int) -> torch.Tensor:
    """``[B, N, p·p·C]`` → ``[B, C, H, W]``, the inverse of :func:`patchify`."""
    if x.dim() != 3 or x.shape[1] != (H // p) * (W // p) or x.shape[2] != p * p * C:
        raise ValueError(f"x must be [B, {(H // p) * (W // p)}, {p * p * C}], got shape {tuple(x.shape)}")
    B = x.shape[0]
    return x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)
