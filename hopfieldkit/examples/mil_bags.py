"""Multiple-instance learning with pooling layers: MNIST bags and bit-pattern sets.

A bag (a set of instances, one label) goes through a shared instance encoder, a pooling operator
that summarises the set into one vector, and a linear classifier (a logit). The poolings compared:

    mean        z = (1/n) Σ_i h_i
    max         z = max_i h_i (per feature)
    attention   z = Σ_i a_i h_i,  a = softmax_i(wᵀ tanh(V h_i))                    (Ilse et al. 2018)
    gated       z = Σ_i a_i h_i,  a = softmax_i(wᵀ (tanh(V h_i) ⊙ sigmoid(U h_i)))  (Ilse et al. 2018)
    hopfield    z = HopfieldPooling: a learned query q reads softmax(β (W_Q q)ᵀ W_K h_i) over the bag

Padded instances (mask False) get no weight in any of them. ``train_bags`` trains one model for a
fixed number of steps (Adam; no model selection, the final model is tested) and returns the test
AUC; ``paper_figures/mil_mnist_bags.py`` runs the comparison over poolings, training-set sizes and
seeds. For MNIST bags the encoder is a small LeNet on the 28×28 digit (:func:`mnist_encoder`).
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..bags import Bags
from ..nn import HopfieldPooling

POOLINGS = ("mean", "max", "attention", "gated", "hopfield")


class MeanPool(nn.Module):
    def forward(self, h: torch.Tensor, mask: torch.Tensor, weights: bool = False):
        w = mask.to(h.dtype) / mask.sum(1, keepdim=True).to(h.dtype)
        return (w.unsqueeze(-1) * h).sum(1), w


class MaxPool(nn.Module):
    def forward(self, h: torch.Tensor, mask: torch.Tensor, weights: bool = False):
        return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1), None


class AttentionPool(nn.Module):
    """a = softmax(wᵀ tanh(V h)), or with ``gated`` softmax(wᵀ(tanh(V h) ⊙ sigmoid(U h)))."""

    def __init__(self, dim: int, hidden: int = 64, gated: bool = False):
        super().__init__()
        self.V = nn.Linear(dim, hidden)
        self.U = nn.Linear(dim, hidden) if gated else None
        self.w = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, weights: bool = False):
        t = torch.tanh(self.V(h))
        if self.U is not None:
            t = t * torch.sigmoid(self.U(h))
        a = torch.softmax(self.w(t).squeeze(-1).masked_fill(~mask, float("-inf")), dim=1)
        return (a.unsqueeze(-1) * h).sum(1), a


class HopfieldPool(nn.Module):
    """HopfieldPooling with one learned query; the weights are the association's."""

    def __init__(self, dim: int, head_dim: int = 32, **kw):
        super().__init__()
        self.pool = HopfieldPooling(dim, queries=1, heads=1, head_dim=head_dim, **kw)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, weights: bool = False):
        if not weights:
            return self.pool(h, mask=mask)[:, 0], None
        a = self.pool(h, mask=mask, return_association=True)
        return a.output[:, 0], a.weights[:, 0, 0]


def make_pooling(name: str, dim: int) -> nn.Module:
    if name == "mean":
        return MeanPool()
    if name == "max":
        return MaxPool()
    if name in ("attention", "gated"):
        return AttentionPool(dim, gated=name == "gated")
    if name == "hopfield":
        return HopfieldPool(dim)
    raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {name!r}")


class MILNet(nn.Module):
    """encoder (per instance) → pooling (per bag) → linear logit."""

    def __init__(self, encoder: nn.Module, dim: int, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = make_pooling(pooling, dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, instances: torch.Tensor, mask: torch.Tensor, weights: bool = False):
        """(logits ``[B]``, with ``weights`` the instance weights ``[B, L]`` (None for max pooling))."""
        B, L = mask.shape
        h = self.encoder(instances.reshape(B * L, *instances.shape[2:])).view(B, L, -1)
        z, w = self.pooling(h, mask, weights)
        return self.head(z).squeeze(-1), w


def mnist_encoder(dim: int = 64) -> nn.Module:
    """A small LeNet (Ilse et al. use a larger one): conv 5×5 (8) → max-pool → conv 5×5 (16) →
    max-pool → linear to ``dim``, ReLU after each, for 1×28×28 digits."""
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, dim), nn.ReLU())


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counted ½
    (the Mann–Whitney statistic from average ranks)."""
    pos = labels.bool()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs positive and negative labels")
    s = scores.detach().double().flatten()
    order = s.argsort()
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=s.dtype)
    uniq, inverse = torch.unique(s, return_inverse=True)      # average ranks over ties
    mean_rank = torch.zeros(len(uniq), dtype=s.dtype).index_add_(0, inverse, ranks) / torch.bincount(inverse).to(s.dtype)
    r = mean_rank[inverse]
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclasses.dataclass
class TrainSettings:
    steps: int = 500
    batch: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-4


def train_bags(model: MILNet, train: Bags, test: Bags, settings: TrainSettings = TrainSettings(),
               seed: int = 0) -> dict:
    """Train ``model`` on ``train`` for ``settings.steps`` Adam steps (batches of bags drawn in
    epochs), then return ``{"auc", "acc", "loss"}`` on ``test`` and the final training loss."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    order, pos, last = torch.randperm(len(train), generator=g), 0, float("nan")
    model.train()
    for _ in range(settings.steps):
        if pos >= len(order):
            order, pos = torch.randperm(len(train), generator=g), 0
        idx = order[pos:pos + settings.batch]
        pos += settings.batch
        b = train.subset(idx)
        logits, _ = model(b.instances, b.mask)
        loss = loss_fn(logits, b.labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {float(loss)}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach())
    scores = predict(model, test)
    return {"auc": roc_auc(scores, test.labels), "acc": float(((scores > 0).float() == test.labels).float().mean()),
            "loss": float(loss_fn(scores, test.labels)), "train_loss": last}


@torch.no_grad()
def predict(model: MILNet, bags: Bags, batch: int = 100) -> torch.Tensor:
    """Logits ``[B]`` of every bag (evaluation mode)."""
    model.eval()
    out = [model(bags.instances[i:i + batch], bags.mask[i:i + batch])[0] for i in range(0, len(bags), batch)]
    return torch.cat(out)


@torch.no_grad()
def top_instances(model: MILNet, bags: Bags, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices ``[B, k]`` of the instances with the largest pooling weight, their weights) per bag."""
    model.eval()
    _, w = model(bags.instances, bags.mask, weights=True)
    if w is None:
        raise ValueError("this pooling has no instance weights (max pooling)")
    k = min(k, w.shape[1])
    top = w.topk(k, dim=1)
    return top.indices, top.values


def bag_counts(bags: Bags) -> dict:
    return {"bags": len(bags), "positive": int(bags.labels.sum()), "mean_size": float(bags.mask.sum(1).float().mean()),
            "max_size": int(bags.mask.shape[1]), "std_size": float(bags.mask.sum(1).float().std()) if len(bags) > 1 else math.nan}
