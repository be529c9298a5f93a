"""The ViT baseline: AiT's blocks with a feed-forward sub-layer in place of the workspace
(``AiTConfig(memory=False)``), with AiT's flattened head (``head="flat"``) or a CLS token +
learned position embedding + LN(D) head (``head="cls"``, the released ``vit_org.py``)."""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..data.common import InputSpec
from .ait import AiTConfig, Block
from .layers import Tokens, check_patch, num_tokens


class ViT(nn.Module):
    """Returns ``(logits, 0)``."""

    def __init__(self, cfg: AiTConfig, inputs: InputSpec, head: str = "flat"):
        super().__init__()
        if head not in ("flat", "cls"):
            raise ValueError(f"head must be 'flat' or 'cls', got {head!r}")
        check_patch(inputs, cfg.patch)
        self.cfg, self.inputs, self.head_kind = replace(cfg, memory=False), inputs, head
        self.embed = Tokens(inputs, cfg.dim, cfg.patch, cfg.pos_embedding, cfg.stem)
        self.blocks = nn.ModuleList([Block(self.cfg) for _ in range(cfg.depth)])
        n = num_tokens(inputs, cfg.patch)
        if head == "cls":
            self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, cfg.dim) * 0.02)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
            self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, inputs.num_classes))
        else:
            self.head = nn.Sequential(nn.LayerNorm(n * cfg.dim), nn.Linear(n * cfg.dim, inputs.num_classes))

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        if self.head_kind == "cls":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embedding
        for blk in self.blocks:
            x, _ = blk(x)
        out = self.head(x[:, 0] if self.head_kind == "cls" else x.flatten(1))
        return out, out.new_zeros(())
