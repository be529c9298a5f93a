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

Discrete step size. (i) An energy of Hopfield terms alone (E = E^HN, no attention) decreases for
every α > 0: E^HN is concave in g, and LN = ∇L is the gradient of a convex function, hence a
monotone map, so with d = ∂E^HN/∂g, (g_{t+1} − g_t)ᵀ(−α d) ≥ 0; concavity then gives
E^HN(g_{t+1}) ≤ E^HN(g_t) + dᵀ(g_{t+1} − g_t) ≤ E^HN(g_t) (the CCCP argument again). In the full
energy the step follows d = ∂(E^ATT + E^HN)/∂g, and the argument bounds neither part: the Hopfield
part alone can rise while the total falls (``paper_figures/et_step_size.py`` counts how often).
(ii) The attention energy is not concave (an lse of a bilinear form in g), so it needs a small
effective step in g-space, α·γ/σ (σ = the tokens' standard deviation; the LN Jacobian's eigenvalues
are γ/σ). ``paper_figures/et_step_size.py`` measures the monotone range of α for attention-only,
Hopfield-only and full energies (float64, random token states; ``paper_figures/results/et_step_size.md``).
Documented range: α·γ/σ ≤ 1 (the paper's α = 0.1 with unit-scale tokens is well inside it).

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

from . import _fast
from ._checks import check_positive, check_tensor, checks_enabled
from .energy import Energy
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

        Where no gradient is needed, the folded form of this expression runs instead
        (:mod:`hopfieldkit._fast.et_folded`, tested equal to it)."""
        self._check_x(x)
        mask = self._mask(mask, x)
        fast = _fast.et_direction(self, x, beta, mask)
        if fast is not None:
            return fast
        g = self.activation(x)
        K, Q = self.keys_queries(g)                                # [..., H, N, Y]
        A = self.attention_scores(g, beta, mask)                   # β_h K_B·Q_C, [..., H, B, C]
        omega = torch.softmax(A, dim=-2)                           # over the keys B
        if mask is not None or (self.exclude_self and g.shape[-2] == 1):
            omega = torch.nan_to_num(omega, nan=0.0)               # queries with no admissible key
        as_query = omega.transpose(-1, -2) @ K                     # Σ_B ω_{hBC} K_{hB}, [..., H, C, Y]
        as_key = omega @ Q                                         # Σ_C ω_{hBC} Q_{hC}, [..., H, B, Y]
        att = (torch.einsum("hyd,...hny->...nd", self.Wq, as_query)
               + torch.einsum("hyd,...hny->...nd", self.Wk, as_key))
        z = g @ self.memories.T
        act = torch.relu(z) if self.hn_kind == "relu" else torch.softmax(self.beta_hn * z, -1)
        hn = act @ self.memories
        if mask is not None:
            hn = hn * mask.unsqueeze(-1).to(hn.dtype)
        return -(att + hn)

    def descent_direction(self, x: torch.Tensor, beta=None, mask=None) -> torch.Tensor:
        """∂E/∂g: the ET dynamics are τ dx/dt = −∂E/∂g. The closed form (:meth:`grad_g_closed`,
        equal to the autodiff :meth:`grad_g`, tested) is cheaper than autodiff of the energy."""
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

    if not isinstance(energy, EnergyTransformerEnergy):
        raise TypeError(f"energy must be an EnergyTransformerEnergy, got {type(energy).__name__}")
    check_positive("alpha", alpha)
    check_positive("steps", steps, allow_zero=True, integer=True)
    if method not in ("gd", "ode"):
        raise ValueError(f"method must be 'gd' (the paper's discrete block) or 'ode', got {method!r}")
    fn = energy if mask is None else energy.masked(mask)
    return descend(fn, x, beta, method=method, step_size=alpha, steps=steps, tol=0, record=record,
                   trajectory=trajectory)
