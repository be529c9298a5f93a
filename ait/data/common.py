"""What every data set shares: the input spec a model is built from, and the split type."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class InputSpec:
    """What a model needs to know about its inputs (and nothing about the model)."""

    image_size: int
    channels: int
    num_classes: int
    question_dim: int = 0          # > 0: each sample comes with a question vector of this size

    def __post_init__(self):
        for name in ("image_size", "channels", "num_classes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"InputSpec.{name} must be a positive int, got {v!r}")
        if not isinstance(self.question_dim, int) or self.question_dim < 0:
            raise ValueError(f"InputSpec.question_dim must be an int ≥ 0, got {self.question_dim!r}")


@dataclass(frozen=True)
class DataSpec:
    """A data set's registry entry: its inputs, the patch size its models use by default, and how
    many training samples are held out for validation (``val_size``; for Sort-of-CLEVR, images)."""

    name: str
    inputs: InputSpec
    patch: int
    val_size: int


@dataclass
class Split:
    """One split: images, labels, and for question answering the questions, the image each question
    is about (``image_index``) and its family (0 unary / non-relational, 1 binary / relational, 2 ternary)."""

    images: torch.Tensor
    labels: torch.Tensor
    questions: torch.Tensor | None = None
    image_index: torch.Tensor | None = None
    family: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(images, questions or None, labels) of the samples ``idx``."""
        img = self.images[idx] if self.image_index is None else self.images[self.image_index[idx]]
        return img, None if self.questions is None else self.questions[idx], self.labels[idx]

    def take(self, idx: torch.Tensor) -> "Split":
        """The samples ``idx`` (questions keep pointing at their images)."""
        if self.image_index is None:
            return Split(self.images[idx], self.labels[idx])
        return Split(self.images, self.labels[idx], self.questions[idx], self.image_index[idx], self.family[idx])

    def subset(self, n: int | None) -> "Split":
        """``n`` samples spread evenly over the split (files are often sorted by class)."""
        if n is None or n >= len(self):
            return self
        return self.take(torch.linspace(0, len(self) - 1, n).round().long())


def holdout(n: int, n_val: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) of ``n`` samples: ``n_val`` of them drawn by a seeded
    permutation, both sorted."""
    if not 0 < n_val < n:
        raise ValueError(f"val_size must be between 1 and {n - 1} (the training set has {n}), got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(7919 + seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values
