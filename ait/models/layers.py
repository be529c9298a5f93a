"""Layers every model of ``ait.models`` shares: the patch embedding (or a convolutional stem), the
question token, position codes, pre-norm self-attention and the feed-forward sub-layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import hopfieldkit as hk

from ..data.common import InputSpec

POS_EMBEDDINGS = ("none", "learned", "sincos")
STEMS = ("patch", "conv")
STEM_HELP = ("the image's tokens: patch (a linear map of each patch's pixels, the paper) or conv (stride-2 "
             "convolutions, one token per patch-sized cell: ait.models.layers.ConvStem)")
HEADS = ("mean", "flat")


def head(kind: str, tokens: int, dim: int, classes: int) -> nn.Sequential:
    """The classifier of a token model: ``mean`` is LN_D then Linear on the mean token; ``flat`` is
    LN over the N·D entries of all tokens then Linear (AiT's head: it sees which token is where).
    Apply it to :func:`pooled` tokens."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
    width = dim if kind == "mean" else tokens * dim
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, classes))


def pooled(kind: str, x: torch.Tensor) -> torch.Tensor:
    """Tokens ``[B, N, D]`` as the head of that kind reads them: the mean token, or all flattened."""
    return x.mean(1) if kind == "mean" else x.flatten(1)


def num_tokens(inputs: InputSpec, patch: int) -> int:
    """Tokens per sample: the patches, plus the question token when there is one."""
    return (inputs.image_size // patch) ** 2 + (1 if inputs.question_dim else 0)


def check_patch(inputs: InputSpec, patch: int) -> None:
    if not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive int, got {patch!r}")
    if inputs.image_size % patch:
        raise ValueError(f"image size {inputs.image_size} is not divisible by the patch size {patch}")


class PatchEmbed(nn.Module):
    """E = LN_D(Linear(LN_{p²C}(patches))), patches from :func:`hopfieldkit.patchify` (§1.2)."""

    def __init__(self, channels: int, patch: int, dim: int):
        super().__init__()
        pd = patch * patch * channels
        self.patch = patch
        self.net = nn.Sequential(nn.LayerNorm(pd), nn.Linear(pd, dim), nn.LayerNorm(dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(hk.patchify(img, self.patch))


class ConvStem(nn.Module):
    """E = LN_D(Linear(F)): F = the cells of ReLU'd 3×3 stride-2 convolutions of the image (``width``
    channels, as the CNN of the relation-network paper), as many halvings as keep the map at least
    (image / patch)² and average-pooled to that grid when it is larger: one token per cell, as many
    as the patch embedding makes (75 px, patch 15: 75 → 38 → 19 → 10 → 5, 25 tokens). Unlike a linear
    map of a patch's pixels, it tells an object's shape wherever the object sits in its cell."""

    def __init__(self, channels: int, image_size: int, patch: int, dim: int, width: int = 24):
        super().__init__()
        grid, size = image_size // patch, image_size
        layers, c = [], channels
        while -(-size // 2) >= grid:                       # ⌈size / 2⌉ still covers the grid
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU()]
            c, size = width, -(-size // 2)
        if not layers:                                     # patch 1: one cell per pixel
            layers = [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid) if size != grid else nn.Identity()
        self.proj = nn.Sequential(nn.Linear(width, dim), nn.LayerNorm(dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(self.convs(img)).flatten(2).transpose(1, 2))


class Tokens(nn.Module):
    """Images (and questions) → tokens ``[B, N, dim]``: the patch embedding (``stem="patch"``, the
    paper) or a convolutional stem (``"conv"``, :class:`ConvStem`), one token per patch; the question token
    q = LN_D(Linear(LN_q(question))) prepended as token 0 when the task has one (as the released
    code); the position code (``pos_embedding``: none / learned / sincos, the question token gets a
    zero code under sincos) added."""

    def __init__(self, inputs: InputSpec, dim: int, patch: int, pos_embedding: str = "none", stem: str = "patch"):
        super().__init__()
        check_patch(inputs, patch)
        if pos_embedding not in POS_EMBEDDINGS:
            raise ValueError(f"pos_embedding must be 'none', 'learned' or 'sincos', got {pos_embedding!r}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        self.inputs = inputs
        self.patches = PatchEmbed(inputs.channels, patch, dim) if stem == "patch" else \
            ConvStem(inputs.channels, inputs.image_size, patch, dim)
        q = inputs.question_dim
        self.question = nn.Sequential(nn.LayerNorm(q), nn.Linear(q, dim), nn.LayerNorm(dim)) if q else None
        n = num_tokens(inputs, patch)
        if pos_embedding == "none":
            self.pos = None
        elif pos_embedding == "learned":
            self.pos = nn.Parameter(torch.randn(1, n, dim) * 0.02)
        else:  # a buffer: fixed, not a parameter
            codes = hk.sincos_2d(inputs.image_size // patch, dim)
            codes = torch.cat([codes.new_zeros(n - len(codes), dim), codes])
            self.register_buffer("pos", codes.unsqueeze(0))

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> torch.Tensor:
        s = self.inputs
        if img.dim() != 4 or img.shape[1] != s.channels or img.shape[-2:] != (s.image_size, s.image_size):
            raise ValueError(f"images must be [B, {s.channels}, {s.image_size}, {s.image_size}], got {tuple(img.shape)}")
        x = self.patches(img)
        if self.question is None:
            if question is not None:
                raise ValueError("this model takes no question (question_dim = 0)")
        else:
            if question is None or question.shape != (img.shape[0], s.question_dim):
                raise ValueError(f"question must be [B, {s.question_dim}], got "
                                 f"{None if question is None else tuple(question.shape)}")
            x = torch.cat([self.question(question).unsqueeze(1), x], 1)
        return x if self.pos is None else x + self.pos


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention: qkv without bias, output projection with bias."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads, self.dim_head = heads, dim_head
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q, k, v), each ``[B, heads, N, dim_head]``."""
        B, N, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        return q, k, v

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights ``[B, heads, N, N]`` (for figures)."""
        q, k, _ = self.qkv(x)
        return torch.softmax(q @ k.transpose(-1, -2) * self.dim_head ** -0.5, -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: optional ``[N, N]`` bool, True where a query may attend to a key."""
        B, N, _ = x.shape
        q, k, v = self.qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.to_out(out.transpose(1, 2).reshape(B, N, self.heads * self.dim_head))


class FeedForward(nn.Module):
    """The ViT feed-forward sub-layer (pre-norm MLP)."""

    def __init__(self, dim: int, mlp_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        return self.net(x)
