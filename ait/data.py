"""Data for AiT: the Triangle generator, MNIST-5k and CIFAR from local files, and torch augmentation.

Every generator is seeded and deterministic (same seed → same bytes). Nothing is downloaded.
CIFAR training batches get random crops (padding 4) and horizontal flips (:func:`augment_crop_flip`).

Triangle [GWS] (``docs/data.md``): 64×64 binary images of three vertex clusters; label 0 = equilateral
(P3 = P1 + R60°(P2 − P1)), label 1 = three independent points, p = ½. Each vertex is a cluster of 8
points P ± o (4 random offsets o ∈ {−1, 0, 1}²), each a filled disc of radius 2. Fixes over the
reference (``docs/data.md``): a minimum side length (``min_side``, 8 px) and rejection of
near-equilateral negatives (all sides within ``equilateral_tol`` = 10 % of their mean). 2 classes.
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass

import numpy as np
import torch

from hopfieldkit.examples.images import load_cifar10, load_cifar100, load_mnist5k


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about a data set."""

    name: str
    channels: int
    image_size: int
    num_classes: int
    patch: int
    question_dim: int = 0


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

    def subset(self, n: int | None) -> "Split":
        """``n`` samples spread evenly over the split (files are often sorted by class)."""
        if n is None or n >= len(self):
            return self
        keep = torch.linspace(0, len(self) - 1, n).round().long()
        if self.image_index is None:
            return Split(self.images[keep], self.labels[keep])
        return Split(self.images, self.labels[keep], self.questions[keep], self.image_index[keep], self.family[keep])


def _sides(P: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(P[1] - P[0]), np.linalg.norm(P[2] - P[1]), np.linalg.norm(P[0] - P[2])])


def _triangle_vertices(rng: np.random.Generator, label: int, size: int, min_side: float,
                       equilateral_tol: float) -> np.ndarray:
    while True:
        if label == 0:
            p1, p2 = rng.integers(1, size, 2), rng.integers(1, size, 2)
            d = p2 - p1
            c, s = math.cos(math.pi / 3), math.sin(math.pi / 3)
            p3 = (p1 + np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])).astype(np.int64)  # truncate
            P = np.stack([p1, p2, p3])
            if (P < 1).any() or (P >= size).any():
                continue
        else:
            P = rng.integers(1, size, (3, 2))
        sides = _sides(P.astype(float))
        if sides.min() < min_side:
            continue
        if label == 1 and (np.abs(sides - sides.mean()) <= equilateral_tol * sides.mean()).all():
            continue
        return P


def make_triangles(n: int, seed: int = 0, size: int = 64, min_side: float = 8.0,
                   equilateral_tol: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` Triangle images ``[n, 1, size, size]`` in {0, 1} and labels ``[n]`` (0 = equilateral).

    Vertices are drawn per image with numpy (rejection sampling); the 24 discs of each image are
    rendered at once in torch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    offsets = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)])
    centres = np.zeros((n, 24, 2), dtype=np.float32)
    for i in range(n):
        P = _triangle_vertices(rng, int(labels[i]), size, min_side, equilateral_tol)
        for j, v in enumerate(P):
            o = offsets[rng.choice(len(offsets), 4, replace=False)]
            centres[i, 8 * j: 8 * (j + 1)] = np.concatenate([v + o, v - o])
    c = torch.from_numpy(centres)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    images = torch.empty(n, 1, size, size)
    for s in range(0, n, 256):  # bounded memory: 256 × 24 × size² booleans at a time
        cx, cy = c[s:s + 256, :, 0, None, None], c[s:s + 256, :, 1, None, None]
        images[s:s + 256, 0] = (((xx - cx) ** 2 + (yy - cy) ** 2) <= 4).any(1).float()
    return images, torch.from_numpy(labels).long()


def fresh_triangles(batch: int, seed: int, step: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of step ``step`` in the original's infinite mode (a fresh image on every access),
    seeded by (seed, step) so that runs and resumed runs see the same batches."""
    return make_triangles(batch, seed=1_000_003 * (seed + 1) + step, size=size)


TRIANGLE_EPOCH = 50_000  # images per nominal epoch in the infinite mode (as the original)


SPECS = {
    "triangle": DataSpec("triangle", 1, 64, 2, 8),
    "sort-of-clevr": DataSpec("sort-of-clevr", 3, 75, 10, 15, question_dim=18),
    "mnist5k": DataSpec("mnist5k", 1, 28, 10, 4),
    "cifar10": DataSpec("cifar10", 3, 32, 10, 4),
    "cifar100": DataSpec("cifar100", 3, 32, 100, 4),
}


def model_fields(name: str, image_size: int | None = None) -> dict:
    """The model config fields a data set fixes: image size, channels, patch, classes, question size."""
    if name not in SPECS:
        raise ValueError(f"unknown data set {name!r}; choose from {sorted(SPECS)}")
    spec = SPECS[name]
    return dict(image_size=image_size or spec.image_size, channels=spec.channels, num_classes=spec.num_classes,
                patch=spec.patch, question_dim=spec.question_dim)


# each set with its own statistics (the released code used CIFAR-10's for CIFAR-100: quirk Q6)
NORMALISE = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
             "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
AUGMENTED = ("cifar10", "cifar100")


def load(name: str, split: str, *, data_dir: str | None = None, size: int | None = None, seed: int = 0,
         clevr_quirks: bool = False, image_size: int | None = None) -> Split:
    """A split of a data set key, normalised as the model expects. ``size`` limits the number of
    samples (generated ones are generated in that number: Triangle images, Sort-of-CLEVR images).
    ``image_size``: the Triangle canvas (64 as the paper; the CPU default uses 32); other sets
    have a fixed size."""
    if name not in SPECS:
        raise ValueError(f"unknown data set {name!r}; choose from {sorted(SPECS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    native = SPECS[name].image_size
    if image_size is not None and image_size != native and name != "triangle":
        raise ValueError(f"image_size: {name} images are {native}×{native}; only the Triangle canvas can be "
                         f"changed, got {image_size}")
    if name == "triangle":
        n = size or (10_000 if split == "train" else 2_000)
        canvas = image_size or native
        if canvas < 16:
            raise ValueError(f"image_size: the Triangle canvas must be at least 16 px, got {canvas}")
        return Split(*make_triangles(n, seed=seed if split == "train" else seed + 10_007, size=canvas))
    if name == "sort-of-clevr":
        from .clevr import load_sort_of_clevr
        n_img = None if size is None else max(1, size // 30)
        kw = {} if n_img is None else {"n_train": n_img, "n_test": n_img}
        cache = None
        if n_img is None:  # the full set is cached; small test sets are generated on the fly
            root = pathlib.Path(data_dir) if data_dir else pathlib.Path.home() / ".cache" / "hopfieldkit"
            cache = root / f"sort_of_clevr_seed{seed}{'_quirks' if clevr_quirks else ''}.npz"
        img, q, a = load_sort_of_clevr(split, cache=cache, seed=seed, quirks=clevr_quirks, **kw)
        Q = q.shape[1]
        qf = q.reshape(-1, 18)
        return Split(img, a.reshape(-1), qf, torch.arange(len(img)).repeat_interleave(Q), qf[:, 12:15].argmax(-1))
    if name == "mnist5k":
        return Split(*load_mnist5k(split)).subset(size)
    if data_dir is None:
        raise ValueError(f"{name} loads from a local folder: pass --data-dir (the folder holding "
                         f"{'cifar-10-batches-py' if name == 'cifar10' else 'cifar-100-python'})")
    x, y = (load_cifar10 if name == "cifar10" else load_cifar100)(data_dir, split)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALISE[name])
    return Split((x - mean) / std, y).subset(size)


def augment_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and a random horizontal flip, per image (torch only)."""
    B, C, H, W = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen).tolist()
    out = torch.stack([padded[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])
    flip = torch.rand(B, generator=gen) < 0.5
    return torch.where(flip.view(B, 1, 1, 1), out.flip(-1), out)
