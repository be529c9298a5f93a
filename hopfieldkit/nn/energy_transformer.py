"""A trainable Energy Transformer: patch embedding, one ET block run by ``descend``, readout [ET].

    x⁰ = E_patch(patches) (+ positions; masked tokens replaced by a learned MASK token)
    x^{t+1} = x^t − α ∂E/∂g(x^t),  g = LayerNorm(x),   t < T        (:func:`hopfieldkit.et_block`)
    output = readout(g(x^T))

E is :class:`~hopfieldkit.EnergyTransformerEnergy` (attention energy + Hopfield energy of the
normalised tokens), so every step lowers it for a small enough α; ``forward`` returns the
:class:`~hopfieldkit.Descent` beside the output (its energy trace with ``record=True``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..et import EnergyTransformerEnergy, et_block
from ..patches import patchify
from ..positions import sincos_2d
from .layers import _positive_int as _positive


class EnergyTransformer(nn.Module):
    """Image patches → tokens → one shared ET block (``steps`` descent steps) → readout.

    Args:
        image_size: side S of the square images; ``patch``: side p of a patch (p divides S).
        channels: C; a token's input is a patch of C·p·p values.
        dim, heads, head_dim, memories, hn: the ET energy's D, H, Y, K and its Hopfield part
            (``"relu"`` or ``"softmax"``); ``w_std``, ``mem_std``: their initial std.
        steps: T; ``alpha``: the step size α.
        out_dim: size of the readout per token (default C·p·p: pixels back, for completion).
        positions: ``"sincos"`` (a learned embedding that starts as the 2-D sine-cosine code),
            ``"random"`` (starts N(0, 0.02²)) or ``"none"``.

    ``forward(x, mask=None, record=False, trajectory=False)``: ``x`` images ``[B, C, S, S]`` or
    patches ``[B, N, C·p·p]``; ``mask`` ``[B, N]`` bool, True = a masked token (its input is replaced
    by the MASK token). Returns ``(output [B, N, out_dim], Descent)``.
    """

    def __init__(self, image_size: int, patch: int, channels: int = 1, *, dim: int = 32, heads: int = 4,
                 head_dim: int = 8, memories: int = 64, hn: str = "relu", steps: int = 8, alpha: float = 0.1,
                 out_dim: int | None = None, positions: str = "sincos", w_std: float = 0.002,
                 mem_std: float = 0.02):
        super().__init__()
        for name, v in (("image_size", image_size), ("patch", patch), ("channels", channels)):
            _positive(name, v)
        if image_size % patch:
            raise ValueError(f"patch={patch} must divide image_size={image_size}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        if positions not in ("sincos", "random", "none"):
            raise ValueError(f"positions must be 'sincos', 'random' or 'none', got {positions!r}")
        self.image_size, self.patch, self.channels = image_size, patch, channels
        self.steps, self.alpha = steps, float(alpha)
        self.tokens = (image_size // patch) ** 2
        self.patch_dim = channels * patch * patch
        self.embed = nn.Linear(self.patch_dim, dim)
        if positions == "sincos":
            self.pos = nn.Parameter(sincos_2d(image_size // patch, dim))
        elif positions == "random":
            self.pos = nn.Parameter(torch.randn(self.tokens, dim) * 0.02)
        else:
            self.register_parameter("pos", None)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.energy = EnergyTransformerEnergy(dim, heads, head_dim, memories, hn=hn, w_std=w_std, mem_std=mem_std)
        self.decode = nn.Linear(dim, self.patch_dim if out_dim is None else _positive("out_dim", out_dim))

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C·p·p]`` from images ``[B, C, S, S]`` (patches pass through, checked)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor, got {type(x).__name__}")
        if x.dim() == 4:
            if tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
                raise ValueError(f"images must be [B, {self.channels}, {self.image_size}, {self.image_size}], "
                                 f"got {tuple(x.shape)}")
            return patchify(x, self.patch)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.tokens, self.patch_dim):
            raise ValueError(f"x must be images [B, {self.channels}, {self.image_size}, {self.image_size}] or "
                             f"patches [B, {self.tokens}, {self.patch_dim}], got {tuple(x.shape)}")
        return x

    def tokens_in(self, patches: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x⁰: embedded patches, the MASK token where ``mask`` is True, plus positions."""
        x = self.embed(patches)
        if mask is not None:
            if mask.dtype != torch.bool or tuple(mask.shape) != tuple(patches.shape[:2]):
                raise ValueError(f"mask must be a bool tensor of shape {tuple(patches.shape[:2])} (True = masked), "
                                 f"got {mask.dtype} {tuple(mask.shape)}")
            x = torch.where(mask.unsqueeze(-1), self.mask_token.expand_as(x), x)
        return x if self.pos is None else x + self.pos

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, record: bool = False,
                trajectory: bool = False):
        run = et_block(self.energy, self.tokens_in(self.patches(x), mask), alpha=self.alpha, steps=self.steps,
                       record=record, trajectory=trajectory)
        return self.decode(self.energy.activation(run.xi)), run
