"""Set Transformer (Lee et al., ICML 2019) on image patches: ISAB encoder, PMA decoder.

    MAB(X, Y) = LN(H + relu(W_o H)),   H = LN(W_q X + Multihead(W_q X, W_k Y, W_v Y))
    ISAB(X)   = MAB(X, MAB(I, X))       with m learned inducing points I
    PMA(X)    = MAB(S, X)               with one learned seed S

as in the authors' reference layout (the query projection is the attention's residual; no output
projection). Encoder ``depth`` ISABs, decoder PMA → SAB → Linear. A set model: the patches enter
without a position code (``pos_embedding="learned"`` or ``"sincos"`` adds one), which is why it is near chance on
Triangle in the AiT poster (60.31 %). ``set-transformer`` is sized to the poster's 2.2M on CIFAR-10
(tested within 5 %); the question of Sort-of-CLEVR is one more set element. Its head
reads the PMA's pooled seed: a flattened, position-aware head like AiT's would replace the decoder
that makes it a set model, so it has none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from hopfieldkit.settings import check, setting

from ..data.common import InputSpec
from .layers import POS_EMBEDDINGS, STEM_HELP, STEMS, Tokens


@dataclass
class SetTransformerConfig:
    patch: int = 4                 # patch side (the data set's default is passed by ait.train)
    dim: int = 256
    depth: int = 3
    heads: int = 4
    inducing: int = 32
    pos_embedding: str = setting("none", "position code of the set elements: none (a set model), learned or "
                                 "sincos", choices=POS_EMBEDDINGS)
    stem: str = setting("patch", STEM_HELP, choices=STEMS)

    def __post_init__(self):
        if isinstance(self.pos_embedding, bool):   # configs written when this was a flag
            self.pos_embedding = "learned" if self.pos_embedding else "none"
        check(self)  # every field parsed to its type (a bad value names its field)


VARIANTS = {
    "set-transformer": {},
    "set-transformer-tiny": dict(dim=64, depth=2, heads=4, inducing=16),
}


class MAB(nn.Module):
    """Multihead attention block MAB(X, Y) of the reference implementation."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln0, self.ln1 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        B, n, D = X.shape
        h = self.heads
        q = self.q(X)
        Q, K, V = (t.reshape(B, -1, h, D // h).transpose(1, 2) for t in (q, self.k(Y), self.v(Y)))
        A = torch.softmax(Q @ K.transpose(-1, -2) / math.sqrt(D), -1)  # the reference scales by √D
        H = self.ln0(q + (A @ V).transpose(1, 2).reshape(B, n, D))
        return self.ln1(H + torch.relu(self.o(H)))


class ISAB(nn.Module):
    def __init__(self, dim: int, heads: int, inducing: int):
        super().__init__()
        self.I = nn.Parameter(torch.randn(1, inducing, dim) * dim ** -0.5)
        self.mab0, self.mab1 = MAB(dim, heads), MAB(dim, heads)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.mab1(X, self.mab0(self.I.expand(X.shape[0], -1, -1), X))


class SetTransformer(nn.Module):
    """Patches (and question) as a set → ISAB × depth → PMA → SAB → Linear. Returns ``(logits, 0)``."""

    def __init__(self, inputs: InputSpec, c: SetTransformerConfig):
        super().__init__()
        if c.dim % c.heads:
            raise ValueError(f"dim {c.dim} is not divisible by heads {c.heads}")
        self.inputs, self.cfg = inputs, c
        self.embed = Tokens(inputs, c.dim, c.patch, c.pos_embedding, c.stem)
        self.encoder = nn.ModuleList([ISAB(c.dim, c.heads, c.inducing) for _ in range(c.depth)])
        self.seed = nn.Parameter(torch.randn(1, 1, c.dim) * c.dim ** -0.5)
        self.pma, self.sab = MAB(c.dim, c.heads), MAB(c.dim, c.heads)
        self.head = nn.Linear(c.dim, inputs.num_classes)

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        for isab in self.encoder:
            x = isab(x)
        s = self.pma(self.seed.expand(x.shape[0], -1, -1), x)
        out = self.head(self.sab(s, s)[:, 0])
        return out, out.new_zeros(())
