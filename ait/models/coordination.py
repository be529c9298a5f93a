"""Coordination through a shared global workspace (Goyal et al., ICLR 2022, [GWS]) and its variants.

One layer (parameters shared across the ``depth`` applications unless ``shared=False``)::

    x ← x + MHSA(LN(x))                                   # STR: a strided sparse attention mask
    write:     A = softmax_j(q(m_s)·k(x_j)/√d)             # slots m query the tokens of their own sample
               TR+HSW: keep each slot's top-k probabilities, zero the rest, no re-normalisation
               u = m + W_o(A v(x));  u ← u + MLP(LN(u))
               m ← σ(i) ⊙ tanh(u) + σ(f + 1) ⊙ m            # relational-memory-core gates from (x̄, m)
    broadcast: x ← x + W_o(softmax_s(q(x)·k(m_s)/√d) v(m))  # the same projections as the write
    x ← x + FFN(LN(x))

The memory m (``slots × dim``) starts every forward pass from a learned initial state and is carried
from layer to layer, per sample. Head: LN of the mean token, then Linear (``head="flat"``: AiT's
LN over all tokens). Tokens get a learned position embedding (``pos_embedding``: none / learned /
sincos); the Sort-of-CLEVR question is one extra token.

Variants by name (:data:`VARIANTS`): ``coordination`` (TR+HSW, 4 shared layers), ``-ssw`` (soft write),
``-tr`` (shared layers, no workspace), ``-hc`` (separate parameters per layer, no workspace),
``-str`` (strided sparse self-attention, no workspace), and the AiT poster's ``-d`` (deeper: 8 shared
layers), ``-h`` (separate parameters per layer), ``-dh`` (both). The released code's exact layout is
not in our sources; the memory-MLP width (2048) was chosen so that the counts on CIFAR-10 match the
poster (2.2M, 2.2M, 8.4M, 16.6M for Coordination, -D, -H, -DH; tested within 5 %).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from hopfieldkit.settings import check, setting

from ..data.common import InputSpec
from .layers import HEADS, POS_EMBEDDINGS, STEM_HELP, STEMS, FeedForward, SelfAttention, Tokens, head, num_tokens, pooled


@dataclass
class CoordinationConfig:
    patch: int = 4                 # patch side (the data set's default is passed by ait.train)
    dim: int = 256
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 512
    slots: int = 8
    topk: int = 20                 # tokens each slot keeps per sample (TR+HSW)
    workspace: str = "hard"        # "hard" (TR+HSW), "soft" (TR+SSW) or "none"
    shared: bool = True            # one set of layer parameters applied ``depth`` times
    sparse_attention: bool = False  # STR: strided sparse self-attention
    memory_mlp_dim: int = 2048
    pos_embedding: str = setting("learned", "position code of the tokens: none, learned or sincos", choices=POS_EMBEDDINGS)
    stem: str = setting("patch", STEM_HELP, choices=STEMS)
    head: str = setting("mean", "mean (LN of the mean token) or flat (LN over all tokens, as AiT)", choices=HEADS)

    def __post_init__(self):
        check(self)  # every field parsed to its type (a bad value names its field)


VARIANTS = {
    "coordination": {},
    "coordination-ssw": dict(workspace="soft"),
    "coordination-tr": dict(workspace="none"),
    "coordination-hc": dict(workspace="none", shared=False),
    "coordination-str": dict(workspace="none", sparse_attention=True),
    "coordination-d": dict(depth=8),
    "coordination-h": dict(shared=False),
    "coordination-dh": dict(depth=8, shared=False),
    "coordination-tiny": dict(dim=64, heads=4, mlp_dim=128, slots=4, topk=8, memory_mlp_dim=128, depth=2),
}


def strided_mask(n: int) -> torch.Tensor:
    """[n, n] bool, True = may attend: the non-causal strided pattern of Child et al. (2019):
    the same block of s = ⌈√n⌉ tokens, or the last key of a block (the block summaries). Every token
    reaches every other in two hops (through the summary of the other's block)."""
    s = max(1, math.ceil(math.sqrt(n)))
    i = torch.arange(n)
    summary = ((i % s) == s - 1) | (i == n - 1)
    return ((i[:, None] // s) == (i[None, :] // s)) | summary[None, :]


class SharedWorkspace(nn.Module):
    """Top-k (or soft) write of the tokens into the slots, gated memory update, broadcast back."""

    def __init__(self, dim: int, heads: int, topk: int | None, memory_mlp_dim: int):
        super().__init__()
        self.heads, self.topk = heads, topk
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.o = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, memory_mlp_dim), nn.GELU(),
                                 nn.Linear(memory_mlp_dim, dim))
        self.gate_in, self.gate_mem = nn.Linear(dim, 2 * dim), nn.Linear(dim, 2 * dim)

    def attend(self, queries: torch.Tensor, keys: torch.Tensor, topk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """W_o(A v), A = softmax over the keys (then top-k of each row, not re-normalised); also A."""
        B, Nq, D = queries.shape
        h = self.heads
        q = self.q(queries).reshape(B, Nq, h, D // h).transpose(1, 2)
        k = self.k(keys).reshape(B, -1, h, D // h).transpose(1, 2)
        v = self.v(keys).reshape(B, -1, h, D // h).transpose(1, 2)
        A = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // h), -1)
        if topk is not None and topk < A.shape[-1]:
            kept = A.topk(topk, -1).indices
            A = A * torch.zeros_like(A).scatter_(-1, kept, 1.0)
        return self.o((A @ v).transpose(1, 2).reshape(B, Nq, D)), A

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(broadcast added to the tokens, new memory)."""
        u, _ = self.attend(m, x, self.topk)
        u = m + u
        u = u + self.mlp(u)
        i, f = (self.gate_in(x.mean(1)).unsqueeze(1) + self.gate_mem(torch.tanh(m))).chunk(2, -1)
        m = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f + 1.0) * m
        b, _ = self.attend(x, m)
        return b, m


class CoordinationLayer(nn.Module):
    def __init__(self, c: CoordinationConfig):
        super().__init__()
        self.sparse = c.sparse_attention
        self.attn = SelfAttention(c.dim, c.heads, c.dim // c.heads)
        self.ws = None
        if c.workspace != "none":
            self.norm = nn.LayerNorm(c.dim)
            self.ws = SharedWorkspace(c.dim, c.heads, c.topk if c.workspace == "hard" else None, c.memory_mlp_dim)
        self.ff = FeedForward(c.dim, c.mlp_dim)

    def forward(self, x: torch.Tensor, m: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x + self.attn(x, strided_mask(x.shape[1]).to(x.device) if self.sparse else None)
        if self.ws is not None:
            b, m = self.ws(self.norm(x), m)
            x = x + b
        return x + self.ff(x), m


class Coordination(nn.Module):
    """The [GWS] Transformer family on image patches (+ question token). Returns ``(logits, 0)``."""

    def __init__(self, inputs: InputSpec, c: CoordinationConfig):
        super().__init__()
        if c.workspace not in ("hard", "soft", "none"):
            raise ValueError(f"workspace must be 'hard', 'soft' or 'none', got {c.workspace!r}")
        if c.dim % c.heads:
            raise ValueError(f"dim {c.dim} is not divisible by heads {c.heads}")
        if c.workspace == "hard" and c.topk < 1:
            raise ValueError(f"topk must be ≥ 1, got {c.topk}")
        self.inputs, self.cfg = inputs, c
        self.embed = Tokens(inputs, c.dim, c.patch, c.pos_embedding, c.stem)
        n_layers = 1 if c.shared else c.depth
        self.layers = nn.ModuleList([CoordinationLayer(c) for _ in range(n_layers)])
        self.memory_init = nn.Parameter(torch.randn(c.slots, c.dim) * 0.02) if c.workspace != "none" else None
        self.head = head(c.head, num_tokens(inputs, c.patch), c.dim, inputs.num_classes)

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        m = None if self.memory_init is None else self.memory_init.expand(x.shape[0], -1, -1)
        for d in range(self.cfg.depth):
            x, m = self.layers[0 if self.cfg.shared else d](x, m)
        out = self.head(pooled(self.cfg.head, x))
        return out, out.new_zeros(())
