"""Multiple-instance data: a sample is a bag (a set) of instances with one label for the bag.

- :func:`mnist_bags`: bags of real MNIST digits (Ilse, Tomczak and Welling 2018): the bag size is
  drawn from a normal with mean 10 and variance 2 (rounded, at least 1), instances uniformly from
  the given images; a bag is positive when it holds at least one ``target`` digit.
- :func:`bit_pattern_bags`: bags of random bit patterns; a positive bag has one instance replaced
  by one of a few implanted signal patterns, a negative bag holds none of them (the synthetic
  task of the reference Hopfield layer library).

Both return :class:`Bags`: padded instances ``[B, L, ...]`` with a mask ``[B, L]`` (True = a real
instance), so a batch of bags goes through a pooling layer at once.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Bags(NamedTuple):
    """Padded bags. ``instances`` ``[B, L, ...]`` (padding zero), ``mask`` ``[B, L]`` bool,
    ``labels`` ``[B]`` float in {0, 1}, ``instance_labels`` ``[B, L]`` long (−1 at padding):
    per instance the digit, or for bit patterns the signal index (−1 for noise)."""

    instances: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    instance_labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index) -> "Bags":
        """The bags at ``index`` (a slice or an index tensor)."""
        return Bags(self.instances[index], self.mask[index], self.labels[index], self.instance_labels[index])


def _count(name: str, v: object, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return v


def mnist_bags(images: torch.Tensor, labels: torch.Tensor, num_bags: int, *, mean_size: float = 10.0,
               var_size: float = 2.0, target: int = 9, seed: int = 0) -> Bags:
    """``num_bags`` bags of instances drawn from ``images`` ``[n, ...]`` with digit ``labels`` ``[n]``."""
    _count("num_bags", num_bags)
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("images and labels must be tensors")
    if labels.dim() != 1 or images.shape[0] != labels.shape[0] or images.shape[0] < 1:
        raise ValueError(f"images [n, ...] and labels [n] must have the same n >= 1, got {tuple(images.shape)} "
                         f"and {tuple(labels.shape)}")
    if not (mean_size >= 1 and var_size >= 0 and math.isfinite(mean_size) and math.isfinite(var_size)):
        raise ValueError(f"mean_size must be >= 1 and var_size >= 0, got {mean_size}, {var_size}")
    g = torch.Generator().manual_seed(seed)
    sizes = (mean_size + math.sqrt(var_size) * torch.randn(num_bags, generator=g)).round().clamp_min(1).long()
    L = int(sizes.max())
    idx = torch.randint(images.shape[0], (num_bags, L), generator=g)
    mask = torch.arange(L) < sizes.unsqueeze(1)
    inst = images[idx] * mask.view(num_bags, L, *([1] * (images.dim() - 1))).to(images.dtype)
    digits = torch.where(mask, labels[idx], torch.full_like(labels[idx], -1))
    return Bags(inst, mask, (digits == target).any(1).float(), digits)


def bit_pattern_bags(num_bags: int, *, num_instances: int = 16, num_signals: int = 2, num_bits: int = 8,
                     fraction_targets: float = 0.5, seed: int = 0, signals: torch.Tensor | None = None) -> Bags:
    """``num_bags`` bags of ``num_instances`` patterns in {−1, +1}^num_bits. ``signals``
    ``[num_signals, num_bits]`` (default: drawn from ``seed + 10**6``, so train and test sets made
    with different seeds share them) are implanted once in each positive bag."""
    for name, v in (("num_bags", num_bags), ("num_instances", num_instances), ("num_signals", num_signals),
                    ("num_bits", num_bits)):
        _count(name, v)
    if not 0 <= fraction_targets <= 1:
        raise ValueError(f"fraction_targets must be in [0, 1], got {fraction_targets}")
    if num_signals >= 2 ** num_bits:
        raise ValueError(f"num_signals={num_signals} leaves no noise patterns among 2**{num_bits}")
    if signals is None:
        signals = bit_signals(num_signals, num_bits)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (num_bags, num_instances, num_bits), generator=g).float() * 2 - 1
    is_signal = (x.unsqueeze(2) == signals).all(-1).any(-1)
    while bool(is_signal.any()):                      # noise never equals a signal
        x[is_signal] = torch.randint(0, 2, (int(is_signal.sum()), num_bits), generator=g).float() * 2 - 1
        is_signal = (x.unsqueeze(2) == signals).all(-1).any(-1)
    positive = torch.rand(num_bags, generator=g) < fraction_targets
    where = torch.randint(num_instances, (num_bags,), generator=g)
    which = torch.randint(num_signals, (num_bags,), generator=g)
    inst_labels = torch.full((num_bags, num_instances), -1, dtype=torch.long)
    rows = positive.nonzero().flatten()
    x[rows, where[rows]] = signals[which[rows]]
    inst_labels[rows, where[rows]] = which[rows]
    return Bags(x, torch.ones(num_bags, num_instances, dtype=torch.bool), positive.float(), inst_labels)


def bit_signals(num_signals: int, num_bits: int, seed: int = 10 ** 6) -> torch.Tensor:
    """``[num_signals, num_bits]`` distinct signal patterns in {−1, +1}."""
    g = torch.Generator().manual_seed(seed)
    while True:
        s = torch.randint(0, 2, (num_signals, num_bits), generator=g).float() * 2 - 1
        if torch.unique(s, dim=0).shape[0] == num_signals:
            return s
