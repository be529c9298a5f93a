"""The Energy Transformer energy [ET] (Hoover et al., NeurIPS 2023) and its descent.

Tokens x ∈ R^{N×D} (any batch shape in front), activation g = LayerNorm(x) from the layer-norm
Lagrangian (scalar γ, bias δ; :class:`~hopfieldkit.LayerNormLagrangian`), and E = E^ATT + E^HN:

    K_{hB} = W^K_h g_B,  Q_{hC} = W^Q_h g_C                       (W^K, W^Q: [H, Y, D])
    E^ATT = −Σ_h (1/β_h) Σ_C log Σ_{B≠C} exp(β_h K_{hB}·Q_{hC})    (β_h = 1/√Y by default)
    E^HN  = −½ Σ_B Σ_μ ReLU(ξ_μ·g_B)²                              ("relu")
          = −(1/β_HN) Σ_B log Σ_μ exp(β_HN ξ_μ·g_B)               ("softmax")

Dynamics: τ dx/dt = −∂E/∂g (the gradient with respect to g, applied to x; no leak term), so
dE/dt = −(∂E/∂g)ᵀ ∇²L (∂E/∂g)/τ ≤ 0 because the layer-norm Lagrangian's Hessian
(γ/σ)[P − uuᵀ/(Dσ²)] is PSD for γ ≥ 0 (eigenvalues 0 along 1, γε/σ³ along u, γ/σ otherwise).
:meth:`EnergyTransformerEnergy.descent_direction` is ∂E/∂g, so ``descend(E, x, beta, method="gd")``
is the ET block x ← x − α ∂E/∂g and ``method="ode"`` its continuous-time version.

Discrete step size. Two facts bound it. (i) The Hopfield terms are concave in g, and LN = ∇L is the
gradient of a convex function, hence a monotone map: (g_{t+1} − g_t)ᵀ(−α d) ≥ 0. Concavity then gives
E^HN(g_{t+1}) ≤ E^HN(g_t) + dᵀ(g_{t+1} − g_t) ≤ E^HN(g_t): that part decreases for EVERY α > 0 (the CCCP
argument again). (ii) The attention energy is not concave (an lse of a bilinear form in g), so it needs
a small effective step in g-space, α·γ/σ (σ = the tokens' standard deviation; the LN Jacobian's
eigenvalues are γ/σ). ``paper_figures/et_step_size.py`` measured (float64, 32 random samples × 40
steps, D = 32, H = 4, Y = 8): attention-only energies stayed monotone up to α·γ/σ = 3 and rose
beyond; with the Hopfield memories (random at three scales, and the trained completion model)
every α up to 100 was monotone. Documented range: α·γ/σ ≤ 1 (the paper's α = 0.1 with unit-scale
tokens is well inside it).

Masking (``mask``: ``[..., N]`` bool, True = the token takes part): a masked-out token is removed as
key, as query and from E^HN, so it does not affect the energy of the others. A query with no
admissible key (N = 1 with the self-pair excluded) contributes nothing.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad as func_grad

from . import _onednn
from ._checks import check_positive, check_tensor, checks_enabled
from .energy import Energy, _needs_graph
from .lagrangian import HopfieldSynapse, LayerNormLagrangian


class EnergyTransformerEnergy(Energy):
    """ET energy over token states ``x`` ``[..., N, D]`` (module docstring for the equations).

    Args:
        dim: token width D.
        heads, head_dim: H and Y of the attention energy.
        memories: K (number of Hopfield memories, initialised N(0, ``mem_std``²)) or a ``[K, D]`` tensor.
        hn: ``"relu"`` (½ReLU², the paper's image model) or ``"softmax"``.
        beta_hn: β of the softmax Hopfield energy.
        exclude_self: drop the self-pair B = C from the attention sum (the paper); ``False`` matches
            the authors' code and released weights.
        eps: layer-norm ε. ``w_std``, ``mem_std``: initial standard deviations (the paper's 0.002, 0.02).

    Attributes: ``Wq``, ``Wk`` (``[H, Y, D]``), ``memories`` (``[K, D]``), ``ln_gamma``, ``ln_delta``, ``eps``.
    Call ``energy(x, beta=None, mask=None)``: ``beta`` is the attention β (None = 1/√Y; a float, or a
    ``[H]`` tensor for per-head β); returns one energy per sample, ``[...]``.
    """

    event_dims = 2

    def __init__(self, dim: int, heads: int, head_dim: int, memories: int | torch.Tensor, *, hn: str = "relu",
                 beta_hn: float = 1.0, exclude_self: bool = True, eps: float = 1e-5, w_std: float = 0.002,
                 mem_std: float = 0.02):
        super().__init__()
        for name, v in (("dim", dim), ("heads", heads), ("head_dim", head_dim)):
            check_positive(name, v, integer=True)
        if hn not in ("relu", "softmax"):
            raise ValueError(f"hn must be 'relu' or 'softmax', got {hn!r}")
        check_positive("beta_hn", beta_hn)
        self.dim, self.heads, self.head_dim, self.hn_kind = dim, heads, head_dim, hn
        self.beta_hn, self.exclude_self = float(beta_hn), bool(exclude_self)
        self.Wq = nn.Parameter(torch.randn(heads, head_dim, dim) * w_std)
        self.Wk = nn.Parameter(torch.randn(heads, head_dim, dim) * w_std)
        if isinstance(memories, torch.Tensor):
            check_tensor("memories", memories, ndim=2)
            if memories.shape[1] != dim:
                raise ValueError(f"memories must have shape [K, {dim}], got {tuple(memories.shape)}")
            mem = nn.Parameter(memories.detach().clone())
        else:
            check_positive("memories", memories, integer=True)
            mem = nn.Parameter(torch.randn(memories, dim) * mem_std)
        self.hn = HopfieldSynapse(mem, "relu2" if hn == "relu" else "lse")
        self.ln = LayerNormLagrangian(dim, eps=eps)

    # -- parameters under the names of the paper ---------------------------------------------------
    @property
    def memories(self) -> torch.Tensor:
        return self.hn.memories

    @property
    def ln_gamma(self) -> torch.Tensor:
        return self.ln.gamma

    @property
    def ln_delta(self) -> torch.Tensor:
        return self.ln.delta

    @property
    def eps(self) -> float:
        return self.ln.eps

    @classmethod
    def from_weights(cls, Wq: torch.Tensor, Wk: torch.Tensor, memories: torch.Tensor, **kw) -> "EnergyTransformerEnergy":
        """Build from given weights (e.g. a checkpoint), checking that their shapes agree."""
        check_tensor("Wq", Wq, ndim=3)
        check_tensor("Wk", Wk, ndim=3)
        if Wq.shape != Wk.shape:
            raise ValueError(f"Wq and Wk must both be [H, Y, D]; got {tuple(Wq.shape)} and {tuple(Wk.shape)} "
                             f"(H·Y mismatch)")
        H, Y, D = Wq.shape
        e = cls(D, H, Y, memories, **kw).to(Wq.dtype)
        with torch.no_grad():
            e.Wq.copy_(Wq)
            e.Wk.copy_(Wk)
        return e

    # -- pieces ----------------------------------------------------------------------------------
    def default_beta(self) -> float:
        return 1.0 / math.sqrt(self.head_dim)

    def _beta(self, beta, like: torch.Tensor) -> torch.Tensor:
        if beta is None:
            return torch.full((self.heads,), self.default_beta(), dtype=like.dtype, device=like.device)
        b = torch.as_tensor(beta, dtype=like.dtype, device=like.device)
        if b.dim() > 1 or (b.dim() == 1 and b.shape[0] not in (1, self.heads)):
            raise ValueError(f"beta must be a float or a [{self.heads}] tensor (one per head), got shape {tuple(b.shape)}")
        if checks_enabled() and not bool((b > 0).all() & torch.isfinite(b).all()):
            raise ValueError(f"beta must be positive and finite, got {beta}")
        return b.expand(self.heads)

    def _check_x(self, x: torch.Tensor) -> None:
        check_tensor("x", x, min_dim=2, finite=False)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [..., N, {self.dim}] (token width D = {self.dim}), got {tuple(x.shape)}")

    def _mask(self, mask, x: torch.Tensor) -> torch.Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor [..., N] (True = the token takes part)")
        if mask.shape[-1] != x.shape[-2]:
            raise ValueError(f"mask must have shape [..., {x.shape[-2]}] (one flag per token), got {tuple(mask.shape)}")
        return mask

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """g = γ (x − x̄)/sqrt(Var x + ε) + δ (closed form of ∂L/∂x; equal to the Lagrangian's autodiff),
        through torch's fused layer-norm kernel (with the scalar γ as its weight)."""
        return F.layer_norm(x, (self.dim,), self.ln.gamma.expand(self.dim), self.ln.delta, self.ln.eps)

    def keys_queries(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K, Q: ``[..., H, N, Y]``."""
        K = torch.einsum("hyd,...nd->...hny", self.Wk, g)
        Q = torch.einsum("hyd,...nd->...hny", self.Wq, g)
        return K, Q

    def _pair_mask(self, N: int, mask: torch.Tensor | None, device) -> torch.Tensor | None:
        """[..., 1, N(keys B), N(queries C)] True = pair allowed."""
        allowed = None
        if self.exclude_self:
            allowed = ~torch.eye(N, dtype=torch.bool, device=device)
        if mask is not None:
            m = mask.unsqueeze(-1) & mask.unsqueeze(-2)
            allowed = m if allowed is None else (allowed & m)
        return None if allowed is None else allowed.unsqueeze(-3)

    def attention_scores(self, g: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """β_h K_{hB}·Q_{hC}, ``[..., H, N(keys), N(queries)]``, −inf on excluded pairs."""
        K, Q = self.keys_queries(g)
        b = self._beta(beta, g).reshape(self.heads, 1, 1)
        A = b * (K @ Q.transpose(-1, -2))
        allowed = self._pair_mask(g.shape[-2], mask, g.device)
        return A if allowed is None else A.masked_fill(~allowed, float("-inf"))

    def attention_energy(self, g: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """E^ATT(g), ``[...]``."""
        A = self.attention_scores(g, beta, mask)
        lse = torch.logsumexp(A, dim=-2)                              # [..., H, C]
        lse = torch.where(torch.isneginf(lse), torch.zeros_like(lse), lse)  # queries with no key
        b = self._beta(beta, g).reshape(self.heads, 1)
        return -(lse / b).sum((-1, -2))

    def hopfield_energy(self, g: torch.Tensor, mask=None) -> torch.Tensor:
        """E^HN(g), ``[...]``."""
        per_token = self.hn(g, beta=self.beta_hn)                      # [..., N]
        if mask is not None:
            per_token = per_token * mask.to(per_token.dtype)
        return per_token.sum(-1)

    def energy_of_g(self, g: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        return self.attention_energy(g, beta, mask) + self.hopfield_energy(g, mask)

    def forward(self, x: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        self._check_x(x)
        mask = self._mask(mask, x)
        return self.energy_of_g(self.activation(x), beta, mask)

    # -- gradients -------------------------------------------------------------------------------
    def grad_g(self, x: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """∂E/∂g at g = LN(x), by autodiff (torch.func), ``[..., N, D]``."""
        g = self.activation(x)
        return func_grad(lambda gg: self.energy_of_g(gg, beta, mask).sum())(g)

    def grad_g_closed(self, x: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """∂E/∂g in closed form [ET]: with ω_{hBC} = softmax over keys B of the scores,
        −∂E^ATT/∂g_A = Σ_h [W^Qᵀ_h Σ_B ω_{hBA} K_{hB} + W^Kᵀ_h Σ_C ω_{hAC} Q_{hC}],
        −∂E^HN/∂g_B = ξᵀ ReLU(ξ g_B) (relu) or ξᵀ softmax(β_HN ξ g_B) (softmax).

        Where no gradient is needed, a graph-free path (folded weights, in-place buffers, oneDNN
        products on the CPU) computes the same numbers; else plain differentiable ops."""
        self._check_x(x)
        mask = self._mask(mask, x)
        if self._graph_free(x, beta):
            return self._grad_g_graph_free(x, beta, mask)
        g = self.activation(x)
        H, Y, N = self.heads, self.head_dim, g.shape[-2]
        W = torch.cat([self.Wk, self.Wq]).reshape(2 * H * Y, self.dim)
        kq = (g @ W.T).reshape(*g.shape[:-1], 2, H, Y).movedim(-3, 0).transpose(-2, -3)  # [2, ..., H, N, Y]
        K, Q = kq[0], kq[1]
        b = self._beta(beta, g).reshape(H, 1, 1)
        A = (b * K) @ Q.transpose(-1, -2)                           # [..., H, B, C]
        allowed = self._pair_mask(N, mask, g.device)
        if allowed is not None:
            A = A.masked_fill(~allowed, float("-inf"))
        omega = torch.softmax(A, dim=-2)
        if mask is not None or (self.exclude_self and N == 1):
            omega = torch.nan_to_num(omega, nan=0.0)               # queries with no admissible key
        as_query = omega.transpose(-1, -2) @ K                     # [..., H, C, Y]: Σ_B ω_{hBC} K_{hB}
        as_key = omega @ Q                                         # [..., H, B, Y]: Σ_C ω_{hBC} Q_{hC}
        both = torch.stack([as_key.transpose(-2, -3), as_query.transpose(-2, -3)], -3)  # [..., N, 2, H, Y]
        neg = both.reshape(*g.shape[:-1], 2 * H * Y) @ W             # W^Kᵀ as_key + W^Qᵀ as_query
        z = g @ self.memories.T
        act = torch.relu(z) if self.hn_kind == "relu" else torch.softmax(self.beta_hn * z, -1)
        hn = act @ self.memories
        if mask is not None:
            hn = hn * mask.unsqueeze(-1).to(hn.dtype)
        return -(neg + hn)

    def _graph_free(self, x: torch.Tensor, beta) -> bool:
        """Whether no autograd graph is needed (and none is being traced): the graph-free path applies."""
        if torch.compiler.is_compiling() or _onednn._in_transform():
            return False
        return not _needs_graph(self, x, beta)

    def _grad_g_graph_free(self, x: torch.Tensor, beta, mask) -> torch.Tensor:
        """:meth:`grad_g_closed` without a graph, in two products with the weights folded
        (:class:`_Folded`): g ↦ [K | βQ | ξg] (one product for the keys, the β-scaled queries and
        the memory scores), then [βΣ_C ωQ | Σ_B ωK | ReLU(ξg)] ↦ ∂E/∂g (one product; β, the signs
        and both energies' sums inside it). The attention sums are written over the K, Q columns
        of the first product's output, and the scores and their softmax are computed in place."""
        g = self.activation(x)
        f = self._folded(beta, g)
        H, Y, N = self.heads, self.head_dim, g.shape[-2]
        lead, HY2 = g.shape[:-1], 2 * self.heads * self.head_dim
        out = f.front(g)                                           # [..., N, 2HY + K]
        kq = out[..., :HY2].reshape(*lead, 2, H, Y).movedim(-3, 0).transpose(-2, -3).contiguous()
        K, Qb = kq[0], kq[1]                                       # K and βQ, [..., H, N, Y]: one copy
        z = out[..., HY2:]
        if self.hn_kind == "relu":
            z.relu_()
        else:
            z.copy_(torch.softmax(z.mul_(self.beta_hn), -1))
        if mask is not None:
            z.mul_(mask.unsqueeze(-1).to(z.dtype))                 # masked tokens: no E^HN term
        At = Qb @ K.transpose(-1, -2)                              # the scores by query: [..., H, C, B]
        if mask is None and self.exclude_self:
            At.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
        else:
            allowed = self._pair_mask(N, mask, g.device)
            if allowed is not None:
                At.masked_fill_(~allowed.transpose(-1, -2), float("-inf"))
        omega_t = _onednn.softmax_inplace(At, dim=-1)              # ωᵀ: along the last axis (18 % faster)
        if mask is not None or (self.exclude_self and N == 1):
            omega_t = omega_t.nan_to_num_(nan=0.0)                 # queries with no admissible key
        att = out[..., :HY2].view(*lead, 2, H, Y)                  # K, Q consumed: their columns are free
        att.select(-3, 0).copy_((omega_t.transpose(-1, -2) @ Qb).transpose(-2, -3))  # β Σ_C ω Q (1/β: f.back)
        att.select(-3, 1).copy_((omega_t @ K).transpose(-2, -3))                     # Σ_B ω K
        return f.back(out)

    def _folded(self, beta, g: torch.Tensor) -> "_Folded":
        """The folded weights for states like ``g``, kept until W^K, W^Q, the memories or β change."""
        b = self.default_beta() if beta is None else beta
        packed = _onednn.usable(self.Wk, g, (2 * self.heads * self.head_dim + self.memories.shape[0]) * self.dim)
        key = (None if isinstance(b, torch.Tensor) else float(b), packed, g.dtype, g.device)
        sources = (self.Wk, self.Wq, self.memories) + ((b,) if isinstance(b, torch.Tensor) else ())
        rows = max(1, g.numel() // g.shape[-1])
        return _onednn.cached(self, "folded", sources, lambda: _Folded(self, self._beta(b, g), rows, packed, key),
                              fits=lambda f: f.key == key and rows <= 2 * f.rows)   # (packing is tuned per batch)

    def descent_direction(self, x: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """∂E/∂g: the ET dynamics are τ dx/dt = −∂E/∂g. The closed form (:meth:`grad_g_closed`,
        equal to the autodiff :meth:`grad_g` to 2e-15, tested) is 2–3× cheaper per step."""
        return self.grad_g_closed(x, beta, mask)

    def masked(self, mask: torch.Tensor) -> "MaskedETEnergy":
        """This energy with a fixed token mask, as an energy callable for ``descend``."""
        return MaskedETEnergy(self, mask)


class MaskedETEnergy(Energy):
    """An :class:`EnergyTransformerEnergy` with its token mask fixed (for ``descend``)."""

    event_dims = 2

    def __init__(self, energy: EnergyTransformerEnergy, mask: torch.Tensor):
        super().__init__()
        self.inner = energy
        self.mask = mask

    def forward(self, x, beta=None):
        return self.inner(x, beta, self.mask)

    def descent_direction(self, x, beta=None):
        return self.inner.grad_g_closed(x, beta, self.mask)


def et_block(energy: EnergyTransformerEnergy, x: torch.Tensor, *, alpha: float = 0.1, steps: int = 12,
             beta=None, mask: torch.Tensor | None = None, method: str = "gd", record: bool = True,
             trajectory: bool = False):
    """The ET block: ``steps`` updates x ← x − α ∂E/∂g (``method="gd"``, the paper's), or the
    continuous-time flow (``method="ode"``, ``steps`` accepted solver steps). Returns a
    :class:`~hopfieldkit.Descent` with the energy trace ``energies`` ``[steps + 1, ...]``."""
    from .descend import descend

    check_positive("alpha", alpha)
    if method not in ("gd", "ode"):
        raise ValueError(f"method must be 'gd' (the paper's discrete block) or 'ode', got {method!r}")
    fn = energy if mask is None else energy.masked(mask)
    return descend(fn, x, beta, method=method, step_size=alpha, steps=steps, tol=0, record=record,
                   trajectory=trajectory)


class _Folded:
    """The ET weights with β and the signs folded in, for the graph-free descent direction: two
    :class:`~hopfieldkit._onednn.Product` s (packed for oneDNN where that applies),

    - ``front``: g ↦ g [W^K; βW^Q; ξ]ᵀ, the keys, the β-scaled queries and the memory scores;
    - ``back``: [βΣ_C ωQ | Σ_B ωK | a] ↦ −(W^Kᵀ Σ_C ωQ + W^Qᵀ Σ_B ωK + ξᵀ a) = ∂E/∂g for a = ReLU(ξg)
      (or softmax(β_HN ξg)), with the 1/β on the keys' block.
    """

    def __init__(self, energy: EnergyTransformerEnergy, b: torch.Tensor, rows: int, packed: bool, key: tuple):
        with torch.no_grad():
            H, Y, D = energy.heads, energy.head_dim, energy.dim
            bh = b.reshape(H, 1, 1).to(energy.Wk.dtype)
            M = energy.memories.detach()
            front = torch.cat([torch.cat([energy.Wk, bh * energy.Wq]).reshape(2 * H * Y, D), M])
            back = torch.cat([torch.cat([energy.Wk / bh, energy.Wq]).reshape(2 * H * Y, D), M]).neg().t()
            self.front = _onednn.Product(front, rows, packed)
            self.back = _onednn.Product(back, rows, packed)
        self.key, self.rows = key, rows
