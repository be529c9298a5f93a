"""Perceiver (Jaegle et al., ICML 2021) on image patches: a latent array cross-attends into the
inputs, then latent self-attention; repeated, with the weights shared after the first iteration.

    z ← z + CrossAttn(LN(z), LN(x));  z ← z + MLP(LN(z))          # 1 head, latents query the inputs
    z ← z + MHSA(LN(z));              z ← z + MLP(LN(z))          # ``blocks`` times
    (iterations 2.. reuse one second set of weights), logits = Linear(LN(mean z))

The patches get a learned position embedding (the original uses Fourier features of the pixel
coordinates; ``pos_embedding="sincos"`` gives AiT's fixed codes); ``head="flat"`` reads all latents
(LN over latents·dim, then Linear) instead of their mean; the question of Sort-of-CLEVR is one more input token. ``perceiver`` is sized to the
poster's 44.9M on CIFAR-10 (tested within 5 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hopfieldkit.settings import check, setting

from ..data.common import InputSpec
from .layers import HEADS, POS_EMBEDDINGS, STEM_HELP, STEMS, FeedForward, SelfAttention, Tokens, head, pooled


@dataclass
class PerceiverConfig:
    patch: int = 4                 # patch side (the data set's default is passed by ait.train)
    input_dim: int = 256
    latents: int = 256
    dim: int = 512
    heads: int = 8
    blocks: int = 6          # latent self-attention blocks per iteration
    iterations: int = 4      # cross-attend + blocks, repeated; iterations ≥ 2 share the second weights
    mlp_ratio: int = 4
    pos_embedding: str = setting("learned", "position code of the inputs: none, learned or sincos", choices=POS_EMBEDDINGS)
    stem: str = setting("patch", STEM_HELP, choices=STEMS)
    head: str = setting("mean", "mean (LN of the mean latent) or flat (LN over all latents)", choices=HEADS)

    def __post_init__(self):
        check(self)  # every field parsed to its type (a bad value names its field)


VARIANTS = {
    "perceiver": {},
    "perceiver-tiny": dict(input_dim=64, latents=16, dim=64, heads=4, blocks=1, iterations=2),
}


class CrossAttention(nn.Module):
    """Single-head pre-norm cross-attention, latents (queries) into the inputs (keys, values)."""

    def __init__(self, dim: int, input_dim: int):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(input_dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(input_dim, 2 * dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(self.norm_kv(x)).chunk(2, -1)
        return self.o(F.scaled_dot_product_attention(self.q(self.norm_q(z)), k, v))


class PerceiverStage(nn.Module):
    def __init__(self, c: PerceiverConfig):
        super().__init__()
        self.cross = CrossAttention(c.dim, c.input_dim)
        self.cross_ff = FeedForward(c.dim, c.mlp_ratio * c.dim)
        self.attn = nn.ModuleList([SelfAttention(c.dim, c.heads, c.dim // c.heads) for _ in range(c.blocks)])
        self.ff = nn.ModuleList([FeedForward(c.dim, c.mlp_ratio * c.dim) for _ in range(c.blocks)])

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = z + self.cross(z, x)
        z = z + self.cross_ff(z)
        for attn, ff in zip(self.attn, self.ff):
            z = z + attn(z)
            z = z + ff(z)
        return z


class Perceiver(nn.Module):
    """Returns ``(logits, 0)``."""

    def __init__(self, inputs: InputSpec, c: PerceiverConfig):
        super().__init__()
        if c.dim % c.heads:
            raise ValueError(f"dim {c.dim} is not divisible by heads {c.heads}")
        if c.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {c.iterations}")
        self.inputs, self.cfg = inputs, c
        self.embed = Tokens(inputs, c.input_dim, c.patch, c.pos_embedding, c.stem)
        self.latents = nn.Parameter(torch.randn(1, c.latents, c.dim) * 0.02)
        self.stages = nn.ModuleList([PerceiverStage(c) for _ in range(min(2, c.iterations))])
        self.head = head(c.head, c.latents, c.dim, inputs.num_classes)

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        z = self.latents.expand(x.shape[0], -1, -1)
        for i in range(self.cfg.iterations):
            z = self.stages[min(i, 1)](z, x)
        out = self.head(pooled(self.cfg.head, z))
        return out, out.new_zeros(())
