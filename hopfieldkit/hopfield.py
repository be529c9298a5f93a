"""The continuous modern Hopfield energy of Ramsauer et al. [R], and its low-rank variant for AiT.

Row convention throughout: ``patterns`` is ``[N, d]`` (row i is x_i), states are ``[..., d]``.
A memory per sample is ``[..., N, d]`` with an optional mask ``[..., N]`` (True = a real pattern;
the others get zero weight, and N and M below count the real ones only). A memory ``[..., 1, N, d]``
against states ``[..., S, d]`` is shared by the S states of each batch entry (the heads of a layer).

    E(ξ) = −lse(β, Xᵀξ) + ½ ξᵀξ + β⁻¹ log N + ½ M²,    lse(β, z) = β⁻¹ log Σ_i exp(β z_i),
    M = max_i ‖x_i‖                                                         ([R] Eq. 2)
    update (CCCP):  ξ_new = X softmax(β Xᵀ ξ)                               ([R] Eq. 3, Thm A1)
    ∇E(ξ) = ξ − X softmax(β Xᵀ ξ),   ∇²E(ξ) = I − β X(diag p − ppᵀ)Xᵀ       ([R] Eq. 59)

Since ∇²E ⪯ I, gradient descent with a step η ≤ 2 never raises E (:meth:`HopfieldEnergy.gd_step_limit`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import _fast, _products
from ._checks import beta_for, check_beta, check_beta_shape, checks_enabled, check_finite, check_last_dim, check_like, check_tensor
from .energy import Beta, Energy


class HopfieldEnergy(Energy):
    """Continuous modern Hopfield energy ([R] Eq. 2) with its CCCP update.

    Args:
        patterns: ``[N, d]`` stored patterns, one per row, or ``[..., N, d]``: one memory per
            sample (a bag, a set), whose batch shape broadcasts against the states' batch shape.
            A tensor that requires grad (or an ``nn.Parameter``) stays attached, so gradients
            reach it through energies and updates.
        mask: optional bool ``[..., N]``, True = a real pattern. Padded patterns get zero weight
            in the energy, the update, the gradient and the Hessian; N and M count real patterns.

    ``energy(xi, beta)`` takes ``xi`` of shape ``[..., d]`` and β > 0 (a float, or a tensor that
    broadcasts against the batch shape ``[...]``) and returns ``[...]``. The lse is computed with
    the max subtracted, so β up to 1e4 and pattern norms up to 1e3 stay finite. Large memories are
    processed in blocks of patterns without a graph (``hopfieldkit._fast``); the packed copies this
    keeps are freed with the energy or by :func:`hopfieldkit.clear_caches`.
    """

    def __init__(self, patterns: torch.Tensor, mask: torch.Tensor | None = None):
        super().__init__()
        check_tensor("patterns", patterns, min_dim=2)
        if patterns.shape[-2] < 1 or patterns.shape[-1] < 1:
            raise ValueError(f"patterns must be [..., N, d] with N, d >= 1, got {tuple(patterns.shape)}")
        if isinstance(patterns, nn.Parameter) or patterns.requires_grad:
            self._patterns = patterns  # a Parameter registers itself; a graph tensor stays attached
        else:
            self.register_buffer("_patterns", patterns)
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise TypeError(f"mask must be a bool tensor [..., N] (True = a real pattern), got "
                                f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
            if mask.shape != patterns.shape[:-1]:
                raise ValueError(f"mask must have shape {tuple(patterns.shape[:-1])} (one flag per pattern), "
                                 f"got {tuple(mask.shape)}")
            if mask.device != patterns.device:
                raise ValueError(f"mask is on {mask.device} but patterns are on {patterns.device}")
            if not bool(mask.any(-1).all()):
                raise ValueError("mask leaves a sample without any real pattern; every memory needs one")
        self.register_buffer("mask", mask)

    # -- the stored patterns ------------------------------------------------------------------
    @property
    def patterns(self) -> torch.Tensor:
        """``[N, d]`` (or ``[..., N, d]``) stored patterns X (rows)."""
        return self._patterns

    @property
    def num_patterns(self) -> int:
        """N, padded patterns included (:meth:`counts` gives the real ones per sample)."""
        return self.patterns.shape[-2]

    @property
    def dim(self) -> int:
        return self.patterns.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        """The memory's batch shape: ``[]`` for one shared memory."""
        return self.patterns.shape[:-2]

    def counts(self) -> torch.Tensor | int:
        """The number of real patterns N, per sample (an int for an unmasked memory)."""
        return self.num_patterns if self.mask is None else self.mask.sum(-1)

    def max_norm(self) -> torch.Tensor:
        """M = max_i ‖x_i‖ over the real patterns (per sample for a batched memory)."""
        return self._max_sq_norm(self.patterns, self.mask).sqrt()

    def gd_step_limit(self) -> float:
        """The largest gradient step η for which E never rises: ∇²E ⪯ I, so η ≤ 2."""
        return 2.0

    def _check(self, xi: torch.Tensor, beta: Beta) -> tuple[torch.Tensor, Beta]:
        X = self.patterns
        if not checks_enabled():  # inside descend's loop: inputs were validated once
            return X, beta_for(beta, xi.dim() - 1)
        check_tensor("xi", xi, min_dim=1, finite=False)
        check_last_dim("xi", xi, X.shape[-1])
        check_like("xi", xi, "patterns", X)
        check_finite("xi", xi)
        batch = xi.shape[:-1]
        if X.dim() > 2:
            try:
                torch.broadcast_shapes(batch, self.batch_shape)
            except RuntimeError:
                raise ValueError(f"xi has batch shape {tuple(batch)} but the memory has batch shape "
                                 f"{tuple(self.batch_shape)} (patterns {tuple(X.shape)}); they must broadcast") from None
            batch = torch.broadcast_shapes(batch, self.batch_shape)
        beta = check_beta(beta, ref=xi)
        check_beta_shape(beta, batch)
        return X, beta_for(beta, xi.dim() - 1)

    # -- energy and its derivatives -----------------------------------------------------------
    def scores(self, xi: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Similarities Xᵀξ, shape ``[..., N]`` (−inf at padded patterns); ``X``: the patterns,
        when the caller has them already (a derived memory is then computed once per call)."""
        s = _products.scores(xi, self.patterns if X is None else X)
        return s if self.mask is None else s.masked_fill(~self.mask, float("-inf"))

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        X, b = self._check(xi, beta)
        mask = self.mask
        lse = _fast.lse(xi, X, b, mask, owner=self)
        if lse is None:
            lse = torch.logsumexp(self._logits(xi, b, X), dim=-1, keepdim=True) / b
        N = X.shape[-2] if mask is None else mask.sum(-1, keepdim=True).to(xi.dtype)
        log_n = math.log(N) if mask is None else torch.log(N)
        const = log_n / b + 0.5 * self._max_sq_norm(X, mask).unsqueeze(-1)
        return (-lse + 0.5 * (xi * xi).sum(-1, keepdim=True) + const).squeeze(-1)

    def _max_sq_norm(self, X: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """M² = max_i ‖x_i‖² over the real patterns, ``[...]`` per sample; kept while X is unchanged
        and needs no gradient (the energy's constant would otherwise read all of X every call)."""
        def compute():
            sq = torch.linalg.vector_norm(X, dim=-1).square()
            if mask is not None:
                sq = sq.masked_fill(~mask, 0.0)
            return sq.amax(-1)
        return _fast.kept(self, "max_sq_norm", (X,) if mask is None else (X, mask), compute)

    def weights(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Softmax weights p = softmax(β Xᵀξ), shape ``[..., N]``: how much each pattern is retrieved."""
        X, b = self._check(xi, beta)
        return self._weights(xi, b, X)

    def _weights(self, xi: torch.Tensor, b: Beta, X: torch.Tensor | None = None) -> torch.Tensor:
        """softmax(β Xᵀξ) for a checked, broadcast-ready β."""
        return torch.softmax(self._logits(xi, b, X), dim=-1)

    def _logits(self, xi: torch.Tensor, b: Beta, X: torch.Tensor | None = None) -> torch.Tensor:
        """β Xᵀξ with −inf at padded patterns, masked after the product with β (a learned β would
        otherwise get the gradient 0·(−inf) = NaN)."""
        s = b * _products.scores(xi, self.patterns if X is None else X)
        return s if self.mask is None else s.masked_fill(~self.mask, float("-inf"))

    def _read(self, p: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_i p_i x_i, ``[..., d]``."""
        return _products.read(p, self.patterns if X is None else X)

    def update(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """CCCP step ξ ← X softmax(β Xᵀξ) ([R] Eq. 3); E never increases ([R] Thm A1)."""
        X, b = self._check(xi, beta)
        fast = _fast.hopfield_step(xi, X, b, self.mask, owner=self)
        return fast if fast is not None else self._read(self._weights(xi, b, X), X)

    def update_and_energy(self, xi: torch.Tensor, beta: Beta) -> tuple[torch.Tensor, torch.Tensor]:
        """(update(ξ), E(ξ)) from one evaluation of the scores s = β Xᵀξ:

            ℓ = log Σ_i exp(s_i),   E(ξ) = −ℓ/β + ½ ξᵀξ + β⁻¹ log N + ½ M²,   update(ξ) = X exp(s − ℓ)

        (the energy of a state and its update share the products Xᵀξ: a descent that records the
        energy after every step needs no products beyond those of the updates). Each state is
        updated from its own scores alone, so states of a batch never interact."""
        X, b = self._check(xi, beta)
        mask = self.mask
        fast = _fast.hopfield_step_and_lse(xi, X, b, mask, owner=self)
        if fast is not None:
            new, lse = fast
        else:
            s = self._logits(xi, b, X)
            ell = torch.logsumexp(s, dim=-1, keepdim=True)
            new, lse = self._read(torch.exp(s - ell), X), ell / b
        N = X.shape[-2] if mask is None else mask.sum(-1, keepdim=True).to(xi.dtype)
        log_n = math.log(N) if mask is None else torch.log(N)
        const = log_n / b + 0.5 * self._max_sq_norm(X, mask).unsqueeze(-1)
        return new, (-lse + 0.5 * (xi * xi).sum(-1, keepdim=True) + const).squeeze(-1)

    def grad(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∇E(ξ) = ξ − X softmax(β Xᵀξ), so one gradient step of size 1 is one CCCP update."""
        return xi - self.update(xi, beta)

    def jacobian(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Jacobian of the update, J = β X(diag p − ppᵀ)Xᵀ = β Var_p[x] ([R] Eq. 59), ``[..., d, d]``."""
        X, b = self._check(xi, beta)
        p = self._weights(xi, b, X)
        mean = self._read(p, X)
        second = _fast.second_moment_of(p, X, self.mask, owner=self)
        if second is None:
            second = (p.unsqueeze(-1) * X).transpose(-1, -2) @ X  # Σ_i p_i x_i x_iᵀ
        bb = b.unsqueeze(-1) if isinstance(b, torch.Tensor) else b
        return bb * (second - mean.unsqueeze(-1) * mean.unsqueeze(-2))

    def jacobian_vector(self, xi: torch.Tensor, v: torch.Tensor, beta: Beta,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
        """J(ξ) v = β (Σ_i p_i x_i x_iᵀv − m mᵀv), m = Σ_i p_i x_i, without forming J (``[..., d]``).
        J is symmetric, so this is also vᵀJ. ``weights``: p = softmax(β Xᵀξ), when already at hand."""
        X, b = self._check(xi, beta)
        p = self._weights(xi, b, X) if weights is None else weights
        xv = _products.scores(v, X)                       # x_iᵀv (unmasked: p is 0 at padding)
        return b * _products.read(p * (xv - (p * xv).sum(-1, keepdim=True)), X)

    def hessian(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∇²E(ξ) = I − J(ξ), ``[..., d, d]``."""
        J = self.jacobian(xi, beta)
        return torch.eye(self.dim, dtype=J.dtype, device=J.device) - J

    def sample(self, index) -> "HopfieldEnergy":
        """The energy of one sample's memory, ``patterns[index]`` (and its mask)."""
        if self.patterns.dim() == 2:
            raise ValueError("sample() needs a memory per sample (patterns [..., N, d])")
        return HopfieldEnergy(self.patterns[index], None if self.mask is None else self.mask[index])


class LowRankPriorEnergy(HopfieldEnergy):
    """Hopfield energy whose attractors are low-rank priors upscaled by a learned map ([AiT] §1.9–1.10).

        Y = f_LT(γ) = γ W_LT + b_LT,   γ ∈ R^{M×r} (the priors), W_LT: r → D,
        E(ξ) = −lse(β, Yᵀξ) + ½ ξᵀξ + β⁻¹ log M + ½ max_i ‖Y_i‖²

    ``radius=ρ`` puts the attractors on the sphere of radius ρ, Y_i = ρ f_LT(γ_i)/‖f_LT(γ_i)‖: the
    scores Yᵀξ are then ρ‖ξ‖ cos(ξ, Y_i), a cosine lookup whose sharpness β sets (the remedy for
    codebook collapse of vector quantisation: no attractor wins or loses by its norm alone).

    ``priors`` (γ) is a buffer by default, since AiT writes it with an EMA rather than by
    gradient; pass ``learn_priors=True`` to make it an ``nn.Parameter``. ``f_LT`` is an
    ``nn.Linear(rank, dim)`` and is trained through the Hopfield read. ``set_priors(γ)`` swaps in
    the memory of the current step (it keeps its autograd graph, if any).
    """

    def __init__(self, num_priors: int, rank: int, dim: int, *, learn_priors: bool = False,
                 priors: torch.Tensor | None = None, bias: bool = True, radius: float | None = None):
        nn.Module.__init__(self)
        for name, v in (("num_priors", num_priors), ("rank", rank), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float))
                                   or not math.isfinite(radius) or radius <= 0):
            raise ValueError(f"radius must be a positive finite number or None, got {radius!r}")
        self.radius = None if radius is None else float(radius)
        if priors is None:
            priors = torch.randn(num_priors, rank) / math.sqrt(rank)
        check_tensor("priors", priors, ndim=2)
        if tuple(priors.shape) != (num_priors, rank):
            raise ValueError(f"priors must have shape [{num_priors}, {rank}], got {tuple(priors.shape)}")
        if learn_priors:
            self.priors = nn.Parameter(priors.clone())
        else:
            self.register_buffer("priors", priors.clone())
        self.f_LT = nn.Linear(rank, dim, bias=bias)
        self.register_buffer("mask", None)

    @property
    def patterns(self) -> torch.Tensor:
        """Y = f_LT(γ), ``[M, D]``: rank ≤ r (+1 with the bias); rows scaled to norm ρ with ``radius``."""
        return self.attractors(self.priors)

    def attractors(self, priors: torch.Tensor) -> torch.Tensor:
        """The attractors ``[M, D]`` that priors γ ``[M, r]`` give (:attr:`patterns` for the held γ)."""
        Y = self.f_LT(priors)
        if self.radius is None:
            return Y
        return Y * (self.radius / torch.linalg.vector_norm(Y, dim=-1, keepdim=True).clamp_min(1e-12))

    @property
    def dim(self) -> int:
        return self.f_LT.out_features

    def set_priors(self, priors: torch.Tensor) -> None:
        """Replace γ (shape ``[M, r]``) by the memory of the current step."""
        check_tensor("priors", priors, ndim=2)
        if priors.shape != self.priors.shape:
            raise ValueError(f"priors must have shape {tuple(self.priors.shape)}, got {tuple(priors.shape)}")
        if isinstance(self.priors, nn.Parameter):
            with torch.no_grad():
                self.priors.copy_(priors)
        else:
            self.priors = priors
