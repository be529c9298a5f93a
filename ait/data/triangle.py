"""Triangle [GWS] (``docs/data.md``): is the triangle equilateral?

64×64 binary images of three vertex clusters; label 0 = equilateral (P3 = P1 + R60°(P2 − P1)),
label 1 = three independent points, p = ½. Each vertex is a cluster of 8 points P ± o (4 random
offsets o ∈ {−1, 0, 1}²), each a filled disc of radius 2. Fixes over the reference
(``docs/data.md``): a minimum side length (``min_side``, 8 px) and rejection of near-equilateral
negatives (all sides within ``equilateral_tol`` = 10 % of their mean). 2 classes. Every image is
seeded (same seed → same bytes).
"""
from __future__ import annotations

import math

import numpy as np
import torch

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
