"""The Energy Transformer's descent direction ∂E/∂g without an autograd graph, in two products.

Derived from the closed form of :meth:`~hopfieldkit.EnergyTransformerEnergy.grad_g_closed`,

    −∂E/∂g_A = Σ_h [W^Qᵀ_h Σ_B ω_{hBA} K_{hB} + W^Kᵀ_h Σ_C ω_{hAC} Q_{hC}] + ξᵀ a(ξ g_A),

with ω = softmax over keys of β_h K·Q and a = ReLU (or softmax(β_HN ·)). Folding β and the signs
into the weights turns it into

- ``front``: g ↦ g [W^K; βW^Q; ξ]ᵀ = [K | βQ | ξg]  (keys, β-scaled queries, memory scores);
- ``back``:  [βΣ_C ωQ | Σ_B ωK | a] ↦ −(W^Kᵀ Σ_C ωQ + W^Qᵀ Σ_B ωK + ξᵀ a) = ∂E/∂g, with 1/β on the
  keys' block of the weights (so β Σ_C ωQ there gives Σ_C ωQ).

The attention sums are written over the K and Q columns of the front product's output once those
are consumed, and the scores and their softmax are computed in place, by query, so the softmax runs
along the last axis. Products go through oneDNN where that applies (:mod:`.onednn`). A test holds
the result equal to the closed form and to autodiff.
"""
from __future__ import annotations

import torch

from . import cache, onednn


class Folded:
    """The ET weights with β and the signs folded in: the ``front`` and ``back`` products above."""

    def __init__(self, energy, b: torch.Tensor, rows: int, packed: bool, key: tuple):
        with torch.no_grad():
            H, Y, D = energy.heads, energy.head_dim, energy.dim
            bh = b.reshape(H, 1, 1).to(energy.Wk.dtype)
            M = energy.memories.detach()
            front = torch.cat([torch.cat([energy.Wk, bh * energy.Wq]).reshape(2 * H * Y, D), M])
            back = torch.cat([torch.cat([energy.Wk / bh, energy.Wq]).reshape(2 * H * Y, D), M]).neg().t()
            self.front = onednn.Product(front, rows, packed)
            self.back = onednn.Product(back, rows, packed)
        self.key, self.rows = key, rows


def folded(energy, beta, g: torch.Tensor) -> Folded:
    """The folded weights for states like ``g``, kept until W^K, W^Q, the memories or β change,
    and packed anew when the batch grows past twice the one they were packed for."""
    b = energy.default_beta() if beta is None else beta
    packed = onednn.applies(energy.Wk, g, (2 * energy.heads * energy.head_dim + energy.memories.shape[0]) * energy.dim)
    key = (None if isinstance(b, torch.Tensor) else float(b), packed, g.dtype, g.device)
    sources = (energy.Wk, energy.Wq, energy.memories) + ((b,) if isinstance(b, torch.Tensor) else ())
    rows = max(1, g.numel() // g.shape[-1])
    return cache.cached(energy, "folded", sources, lambda: Folded(energy, energy._beta(b, g), rows, packed, key),
                        fits=lambda f: f.key == key and rows <= 2 * f.rows)


def direction(energy, x: torch.Tensor, beta, mask: torch.Tensor | None) -> torch.Tensor:
    """∂E/∂g at g = LN(x), ``[..., N, D]`` (module docstring)."""
    g = energy.activation(x)
    f = folded(energy, beta, g)
    H, Y, N = energy.heads, energy.head_dim, g.shape[-2]
    lead, HY2 = g.shape[:-1], 2 * energy.heads * energy.head_dim
    out = f.front(g)                                           # [..., N, 2HY + K]
    kq = out[..., :HY2].reshape(*lead, 2, H, Y).movedim(-3, 0).transpose(-2, -3).contiguous()
    K, Qb = kq[0], kq[1]                                       # K and βQ, [..., H, N, Y]: one copy
    z = out[..., HY2:]
    if energy.hn_kind == "relu":
        z.relu_()
    else:
        z.copy_(torch.softmax(z.mul_(energy.beta_hn), -1))
    if mask is not None:
        z.mul_(mask.unsqueeze(-1).to(z.dtype))                 # masked tokens: no E^HN term
    At = Qb @ K.transpose(-1, -2)                              # the scores by query: [..., H, C, B]
    if mask is None and energy.exclude_self:
        At.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    else:
        allowed = energy._pair_mask(N, mask, g.device)
        if allowed is not None:
            At.masked_fill_(~allowed.transpose(-1, -2), float("-inf"))
    omega_t = onednn.softmax_inplace(At, dim=-1)               # ωᵀ
    if mask is not None or (energy.exclude_self and N == 1):
        omega_t = omega_t.nan_to_num_(nan=0.0)                 # queries with no admissible key
    att = out[..., :HY2].view(*lead, 2, H, Y)                  # K, Q consumed: their columns are free
    att.select(-3, 0).copy_((omega_t.transpose(-1, -2) @ Qb).transpose(-2, -3))  # β Σ_C ω Q (1/β: back)
    att.select(-3, 1).copy_((omega_t @ K).transpose(-2, -3))                     # Σ_B ω K
    return f.back(out)
