"""The classical (pairwise) Hopfield network on binary states (Hopfield 1982).

States s ∈ {−1, +1}^N (``[..., N]``), couplings W ``[N, N]`` (symmetric, zero diagonal) and
thresholds θ ``[N]``:

    E(s) = −½ sᵀWs − θᵀs,        local field h_i = Σ_j W_ij s_j + θ_i
    Δ_i = E(s_i = −1) − E(s_i = +1) = 2 h_i         (the others held fixed; W_ii = 0)

The asynchronous update sets s_i ← sign(h_i) one neuron at a time (a tie h_i = 0 keeps s_i), and no
such step raises E. The synchronous update s ← sign(Ws + θ) has no such guarantee: it ends in a
fixed point or a 2-cycle. Glauber dynamics at temperature T sets s_i = +1 with probability
1 / (1 + exp(−Δ_i / T)) = 1 / (1 + exp(−2h_i / T)); its stationary distribution is ∝ exp(−E(s)/T).
All three run through :func:`hopfieldkit.descend` (``method="async" | "sync" | "glauber"``).

W may be a stack ``[..., N, N]``, one network per batch entry (e.g. one per trial of a capacity
measurement): states ``[..., N]`` then pair with it one to one, and states ``[..., R, N]`` with
W ``[..., 1, N, N]`` run R states through each network.

With ``symmetric=False`` any W is accepted (asymmetric learning rules); E is then evaluated with
the symmetric part of W and no descent guarantee is claimed.
"""
from __future__ import annotations

from typing import Callable

import torch

from . import _fast, _products
from ._checks import check_finite, check_last_dim, check_like, check_tensor, checks_enabled
from .energy import Beta, Energy

Choose = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def deterministic(gap: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """The asynchronous rule: the sign of lower energy, sign(Δ_i); a tie keeps the current sign."""
    return torch.where(gap == 0, current, torch.sign(gap))


def check_binary(name: str, s: torch.Tensor) -> None:
    if checks_enabled() and not bool(((s == 1) | (s == -1)).all()):
        raise ValueError(f"{name} must contain only -1 and +1 entries")


class PairwiseEnergy(Energy):
    """E(s) = −½ sᵀWs − θᵀs on ±1 states ``[..., N]`` (module docstring).

    Args:
        W: ``[N, N]`` couplings; symmetric with zero diagonal unless ``symmetric=False``.
        theta: ``[N]`` thresholds (default 0).
        symmetric: False accepts any W (no energy guarantee for the dynamics).
    """

    binary = True

    def __init__(self, W: torch.Tensor, theta: torch.Tensor | None = None, *, symmetric: bool = True):
        super().__init__()
        check_tensor("W", W, min_dim=2)
        N = W.shape[-1]
        if W.shape[-2] != N or N < 1:
            raise ValueError(f"W must be a square [N, N] matrix (or a stack [..., N, N]), got {tuple(W.shape)}")
        if not isinstance(symmetric, bool):
            raise TypeError(f"symmetric must be True or False, got {symmetric!r}")
        tol = 1e-6 if W.dtype == torch.float32 else 1e-12
        scale = float(W.abs().max()) or 1.0
        if symmetric:
            if not torch.allclose(W, W.transpose(-1, -2), atol=tol * scale, rtol=0):
                raise ValueError("W must be symmetric for an energy that the dynamics descend; pass "
                                 "symmetric=False for an asymmetric rule (no energy guarantee then)")
            if float(W.diagonal(dim1=-2, dim2=-1).abs().max()) > tol * scale:
                raise ValueError("W must have a zero diagonal (self-couplings break the single-flip energy "
                                 "argument); zero it, e.g. W.fill_diagonal_(0)")
        if theta is not None:
            check_tensor("theta", theta, ndim=1)
            if theta.shape[0] != N:
                raise ValueError(f"theta must have shape [{N}], got {tuple(theta.shape)}")
            check_like("theta", theta, "W", W)
        self.symmetric = symmetric
        self.register_buffer("W", W)
        self.register_buffer("theta", theta)

    @property
    def dim(self) -> int:
        return self.W.shape[-1]

    def _check(self, s: torch.Tensor) -> None:
        if not checks_enabled():
            return
        check_tensor("s", s, min_dim=1, finite=False)
        check_last_dim("s", s, self.dim, "the number of neurons")
        check_like("s", s, "W", self.W)
        check_finite("s", s)

    def local_field(self, s: torch.Tensor) -> torch.Tensor:
        """h = W s + θ, ``[..., N]``."""
        h = _products.scores(s, self.W)
        return h if self.theta is None else h + self.theta

    def forward(self, s: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        """E(s) = −½ sᵀWs − θᵀs (β is not used: the couplings set the energy scale)."""
        self._check(s)
        W = self.W if self.symmetric else 0.5 * (self.W + self.W.transpose(-1, -2))
        e = -0.5 * (s * _products.scores(s, W)).sum(-1)
        return e if self.theta is None else e - s @ self.theta

    def field_gaps(self, s: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        """Δ_i = E(s_i = −1) − E(s_i = +1) = 2h_i for every neuron, ``[..., N]``."""
        self._check(s)
        return 2.0 * self.local_field(s)

    def sweep(self, s: torch.Tensor, beta: Beta = 1.0, order: torch.Tensor | None = None,
              choose: Choose = deterministic) -> torch.Tensor:
        """One asynchronous sweep over the neurons in ``order`` (default 0 … N−1): each sets
        s_i ← choose(Δ_i, s_i) with the others fixed (the field updated incrementally, O(N) each)."""
        self._check(s)
        check_binary("s", s)
        s = s.clone()
        h = self.local_field(s)
        cols = self._columns()                         # cols[..., i, :] = W[..., :, i]
        plain = choose is deterministic                # sign(Δ_i) = sign(h_i): no gap to form
        for i in (range(self.dim) if order is None else order.tolist()):
            hi, si = h[..., i], s[..., i]
            new = torch.where(hi == 0, si, torch.sign(hi)) if plain else choose(2.0 * hi, si)
            h.addcmul_((new - si).unsqueeze(-1), cols[..., i, :])
            s[..., i] = new
        return s

    def _columns(self) -> torch.Tensor:
        """Wᵀ, contiguous: a sweep reads column i of W as one contiguous row (kept while W is unchanged)."""
        W = self.W
        return _fast.kept(self, "columns", (W,), lambda: W.transpose(-1, -2).contiguous())

    def update(self, s: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        """One asynchronous sweep in the order 0 … N−1 (never raises E for symmetric W)."""
        return self.sweep(s, beta)

    @property
    def has_update(self) -> bool:
        return True
