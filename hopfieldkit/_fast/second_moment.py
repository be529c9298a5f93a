"""The second moment Σ_i p_i x_i x_iᵀ of many weight vectors over one memory, as one product.

For K states over one shared memory ``X`` [N, d] the plain expression ``(p ⊙ X)ᵀ X`` builds a
``[K, N, d]`` product (and copies it into the batched matmul's layout): memory-bound, K·N·d
entries written twice. Written as

    S = p O,   O = [vec(x_i x_iᵀ)]_i  ``[N, d²]``,

it is one matrix product whose outer products O depend on X alone, so they are made once and kept
with the energy (a β sweep asks at every β). That pays where K > d (O is then smaller than the
plain temporary) and O is of moderate size (:data:`MAX_OUTER` entries).
"""
from __future__ import annotations

import torch

from . import cache

MAX_OUTER = 1 << 23


def applies(p: torch.Tensor, X: torch.Tensor) -> bool:
    """Sizes only (the graph and tracing conditions are :mod:`.policy`'s)."""
    if X.dim() != 2 or p.shape[-1] != X.shape[0]:
        return False
    N, d = X.shape
    rows = p.numel() // max(N, 1)
    return rows > d and N * d * d <= MAX_OUTER


def outer_products(X: torch.Tensor) -> torch.Tensor:
    """``[N, d²]``: row i is vec(x_i x_iᵀ)."""
    return (X.unsqueeze(-1) * X.unsqueeze(-2)).reshape(X.shape[0], -1)


def second_moment(p: torch.Tensor, X: torch.Tensor, owner: object | None) -> torch.Tensor:
    """Σ_i p_i x_i x_iᵀ for weights ``p`` [..., N]: ``[..., d, d]``."""
    d = X.shape[1]
    O = cache.cached(owner, "outer_products", (X,), lambda: outer_products(X.detach()))
    return (p.reshape(-1, X.shape[0]) @ O).view(*p.shape[:-1], d, d)
