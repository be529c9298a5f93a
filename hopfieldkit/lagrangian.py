"""Energies written as sums of parts: neurons defined by Lagrangians, plus interaction terms [KH21].

A neuron layer has state x and a Lagrangian L(x); its activation is g = ∂L/∂x (computed here by
autodiff, so a new Lagrangian is one line) and its energy is the Legendre term x·g − L(x).
Interactions ("synapses") are energies of the activations. The total

    E = Σ_layers (x_l·g_l − L_l(x_l)) + Σ_synapses E_s(g_a, g_b, ...)             ([KH21] Eq. 2)

decreases along τ_l dx_l/dt = −∂E/∂g_l = −(x_l + ∂E_int/∂g_l), because
dE/dt = −Σ_l τ_l (∂E/∂g_l)ᵀ ∇²L_l (∂E/∂g_l) ≤ 0 whenever every Lagrangian Hessian is PSD
([KH21] App. A). :meth:`LagrangianEnergy.descent_direction` returns exactly ∂E/∂g_l / τ_l, so
``descend(energy, x, beta, method="gd" | "ode")`` runs these dynamics.

The state of a multi-layer model is the concatenation of its layers' states along the last axis
(``energy.join`` / ``energy.split``), so descend and the analysis tools see one tensor. A layer may
have a tensor shape (``Neurons((C, H, W), L)``, a feature map): its state is flattened into the
concatenation, ``split`` gives it back as ``[..., C, H, W]``, its synapses see activations of that
shape, and its Lagrangian acts on the layer's flattened entries (a softmax Lagrangian normalises
over all of them). ``energy.terms(x, beta)`` breaks E into its parts: one value per neuron layer
and per synapse, which sum to E.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F_
from torch import nn
from torch.func import grad as func_grad
from torch.func import hessian as func_hessian
from torch.func import vmap

from ._checks import check_choice, check_last_dim, check_positive, check_tensor
from .energy import Beta, Energy


# ----------------------------------------------------------------------------------------------
# Lagrangians: L(x) over the last axis, activation g = ∂L/∂x by autodiff
# ----------------------------------------------------------------------------------------------
class Lagrangian(nn.Module):
    """A neuron Lagrangian L: ``[..., d] -> [...]``. Subclasses define :meth:`forward` only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """g = ∂L/∂x, by torch.func.grad of Σ L (each state's L depends on its own x only)."""
        return func_grad(lambda y: self(y).sum())(x)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """∇²L(x), ``[..., d, d]``; PSD for every Lagrangian here (the Lyapunov condition)."""
        flat = x.reshape(-1, x.shape[-1])
        H = vmap(func_hessian(lambda y: self(y)))(flat)
        return H.reshape(*x.shape, x.shape[-1])


class IdentityLagrangian(Lagrangian):
    """L = ½‖x‖², g = x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x * x).sum(-1)


class _BetaLagrangian(Lagrangian):
    """A Lagrangian with one sharpness β > 0."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        check_positive("beta", beta)
        self.beta = float(beta)


class LogSumExpLagrangian(_BetaLagrangian):
    """L = β⁻¹ log Σ_i exp(β x_i), g = softmax(β x) (Lemma A18 of [R])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.beta * x, dim=-1) / self.beta


class LayerNormLagrangian(Lagrangian):
    """L = D γ sqrt(Var(x) + ε) + Σ_i δ_i x_i, g = γ (x − x̄)/sqrt(Var(x) + ε) + δ = LayerNorm(x) [ET].

    γ is a scalar (learnable), δ a learnable ``[D]`` bias; Var is the biased variance over the
    last axis. The Hessian is (γ/σ)(I − 11ᵀ/D − ĝĝᵀ/D)-shaped and PSD for γ ≥ 0.
    """

    def __init__(self, dim: int, eps: float = 1e-5, gamma: float = 1.0):
        super().__init__()
        check_positive("dim", dim, integer=True)
        check_positive("eps", eps)
        self.dim, self.eps = dim, float(eps)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        self.delta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_last_dim("x", x, self.dim, "the layer width")
        var = x.var(dim=-1, unbiased=False)
        return self.dim * self.gamma * torch.sqrt(var + self.eps) + (x * self.delta).sum(-1)


class ReLULagrangian(Lagrangian):
    """L = ½ Σ_i ReLU(x_i)², g = ReLU(x) (Hessian diag(1[x > 0]) ⪰ 0; flat where x < 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (torch.relu(x) ** 2).sum(-1)


class TanhLagrangian(Lagrangian):
    """L = Σ_i ln cosh x_i, g = tanh x ([KH21] model A; bounded activations)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.abs()
        return (a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)).sum(-1)


class SphericalLagrangian(Lagrangian):
    """L = ‖x‖, g = x/‖x‖ ([KH21] model C, divisive normalisation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=-1)


class SoftmaxLagrangian(LogSumExpLagrangian):
    """L = T log Σ_i exp(x_i / T), g = softmax(x / T): the log-sum-exp Lagrangian with β = 1/T."""

    def __init__(self, temperature: float = 1.0):
        check_positive("temperature", temperature)
        super().__init__(1.0 / float(temperature))
        self.temperature = float(temperature)


class RectifiedPowerLagrangian(Lagrangian):
    """L = (1/n) Σ_i ReLU(x_i)ⁿ, g = ReLU(x)ⁿ⁻¹ (n > 1; Hessian diag((n − 1) ReLU(x)ⁿ⁻²) ⪰ 0).
    n = 2 is :class:`ReLULagrangian`; larger n are the rectified polynomials of dense memories [KH16]."""

    def __init__(self, n: float = 3.0):
        super().__init__()
        check_positive("n", n)
        if not n > 1:
            raise ValueError(f"n must be > 1 (a convex Lagrangian with a continuous activation), got {n}")
        self.n = float(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.relu(x) ** self.n).sum(-1) / self.n


class ExponentialLagrangian(_BetaLagrangian):
    """L = β⁻¹ Σ_i exp(β x_i), g = exp(β x) (Hessian diag(β exp(β x)) ≻ 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.beta * x).sum(-1) / self.beta


class SigmoidLagrangian(_BetaLagrangian):
    """L = β⁻¹ Σ_i log(1 + exp(β x_i)) (softplus), g = sigmoid(β x) (Hessian diag(β σ(1 − σ)) ≻ 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_.softplus(self.beta * x).sum(-1) / self.beta


# ----------------------------------------------------------------------------------------------
# Neuron layers and synapses
# ----------------------------------------------------------------------------------------------
class Neurons(nn.Module):
    """A layer of neurons of shape ``shape`` (an int d, or a tuple such as ``(C, H, W)``) with a
    Lagrangian and a time constant τ.

    ``energy(x) = Σ x·g − L(x)`` (the Legendre term), ``activation(x) = g = ∂L/∂x``, for states
    ``x`` of shape ``[..., *shape]``; the Lagrangian sees the layer's ``dim = prod(shape)`` entries
    flattened.
    """

    def __init__(self, shape: int | Sequence[int], lagrangian: Lagrangian, tau: float = 1.0):
        super().__init__()
        dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else tuple(shape) \
            if isinstance(shape, (tuple, list, torch.Size)) else None
        if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
            raise ValueError(f"shape must be a positive int or a tuple of them, e.g. 64 or (8, 14, 14); got {shape!r}")
        check_positive("tau", tau)
        if not isinstance(lagrangian, Lagrangian):
            raise TypeError(f"lagrangian must be a Lagrangian, got {type(lagrangian).__name__}")
        self.shape, self.dim, self.lagrangian, self.tau = dims, math.prod(dims), lagrangian, float(tau)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[x.dim() - len(self.shape):]) != self.shape:
            raise ValueError(f"a state of this layer must have shape [..., {', '.join(map(str, self.shape))}], "
                             f"got {tuple(x.shape)}")
        return x if len(self.shape) == 1 else x.reshape(*x.shape[:x.dim() - len(self.shape)], self.dim)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.lagrangian.activation(self._flat(x)).reshape(x.shape)

    def energy(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        g = self.activation(x) if g is None else g
        flat = self._flat(x)
        return (flat * self._flat(g)).sum(-1) - self.lagrangian(flat)


class Synapse(nn.Module):
    """An interaction energy of activations; ``forward(*gs, beta) -> [...]``."""

    def forward(self, *gs: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class DenseSynapse(Synapse):
    """E = −g_aᵀ W g_b between two layers (W: ``[d_a, d_b]``), or −½ gᵀ W g on one layer (W symmetric)."""

    def __init__(self, W: torch.Tensor):
        super().__init__()
        check_tensor("W", W, ndim=2)
        if isinstance(W, nn.Parameter):
            self.W = W
        else:
            self.register_buffer("W", W)

    def forward(self, *gs: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        if len(gs) == 1:
            g = gs[0]
            return -0.5 * ((g @ self.W) * g).sum(-1)
        if len(gs) != 2:
            raise ValueError(f"DenseSynapse connects one or two layers, got {len(gs)}")
        return -((gs[0] @ self.W) * gs[1]).sum(-1)


class ConvSynapse(Synapse):
    """E = −Σ g_post ⊙ conv2d(g_pre, W) between feature maps ``[..., C_in, H, W]`` (pre) and
    ``[..., C_out, H', W']`` (post); W: ``[C_out, C_in, k_h, k_w]``. Its gradient with respect to
    g_pre is the transposed convolution of g_post (by autodiff), the one with respect to g_post the
    convolution of g_pre."""

    def __init__(self, weight: torch.Tensor, stride: int = 1, padding: int = 0):
        super().__init__()
        check_tensor("weight", weight, ndim=4)
        check_positive("stride", stride, integer=True)
        check_positive("padding", padding, allow_zero=True, integer=True)
        self.stride, self.padding = stride, padding
        if isinstance(weight, nn.Parameter):
            self.weight = weight
        else:
            self.register_buffer("weight", weight)

    def forward(self, *gs: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        if len(gs) != 2:
            raise ValueError(f"ConvSynapse connects two layers (pre, post), got {len(gs)}")
        pre, post = gs
        if pre.dim() < 3 or pre.shape[-3] != self.weight.shape[1]:
            raise ValueError(f"ConvSynapse: the pre layer must be [..., {self.weight.shape[1]}, H, W] (C_in of the "
                             f"weight), got {tuple(pre.shape)}")
        batch = pre.shape[:-3]
        y = F_.conv2d(pre.reshape(-1, *pre.shape[-3:]), self.weight, stride=self.stride, padding=self.padding)
        y = y.reshape(*batch, *y.shape[1:])
        if post.shape[-3:] != y.shape[-3:]:
            raise ValueError(f"ConvSynapse: the post layer must be [..., {', '.join(map(str, y.shape[-3:]))}] (the "
                             f"convolution of the pre layer), got {tuple(post.shape)}")
        return -(y * post).flatten(-3).sum(-1)


class HopfieldSynapse(Synapse):
    """E = −Σ_μ F(ξ_μᵀ g) with memories ξ (``[K, d]``) — the Hopfield term of [ET].

    F = ``"relu2"``: ½ ReLU(z)²;  ``"lse"``: the whole sum becomes −β⁻¹ log Σ_μ exp(β ξ_μᵀg);
    or any callable F applied elementwise.
    """

    def __init__(self, memories: torch.Tensor, F: str | Callable[[torch.Tensor], torch.Tensor] = "relu2"):
        super().__init__()
        check_tensor("memories", memories, ndim=2)
        if isinstance(F, str):
            check_choice("F", F, ("relu2", "lse"))
        elif not callable(F):
            raise TypeError("F must be 'relu2', 'lse' or a callable")
        self.F = F
        if isinstance(memories, nn.Parameter):
            self.memories = memories
        else:
            self.register_buffer("memories", memories)

    def forward(self, *gs: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        (g,) = gs
        z = g @ self.memories.T
        if self.F == "relu2":
            return -0.5 * (torch.relu(z) ** 2).sum(-1)
        if self.F == "lse":
            return -torch.logsumexp(beta * z, dim=-1) / beta
        return -self.F(z).sum(-1)


class BiasSynapse(Synapse):
    """E = −Iᵀg: an external input current I on one layer."""

    def __init__(self, current: torch.Tensor):
        super().__init__()
        check_tensor("current", current, ndim=1)
        self.register_buffer("current", current)

    def forward(self, *gs: torch.Tensor, beta: Beta = 1.0) -> torch.Tensor:
        (g,) = gs
        return -(g * self.current).sum(-1)


# ----------------------------------------------------------------------------------------------
# The composed energy
# ----------------------------------------------------------------------------------------------
class LagrangianEnergy(Energy):
    """Energy of a network of neuron layers and synapses ([KH21] Eq. 2); see the module docstring.

    Args:
        layers: ordered mapping name → :class:`Neurons`; the state is their concatenation.
        synapses: sequence of ``(synapse, (layer names...))``; each synapse receives the
            activations of the named layers in that order.

    Example (model B of [KH21], which reduces to the modern Hopfield energy)::

        E = LagrangianEnergy(
            {"v": Neurons(d, IdentityLagrangian()), "h": Neurons(N, LogSumExpLagrangian(beta))},
            [(DenseSynapse(X), ("h", "v"))])          # −fᵀ X g with f = softmax(βh), g = v
    """

    def __init__(self, layers: Mapping[str, Neurons], synapses: Sequence[tuple[Synapse, Sequence[str]]] = ()):
        super().__init__()
        if not layers:
            raise ValueError("layers must name at least one Neurons layer")
        for k, v in layers.items():
            if not isinstance(v, Neurons):
                raise TypeError(f"layers[{k!r}] must be Neurons, got {type(v).__name__}")
        self.layers = nn.ModuleDict(dict(layers))
        self.names = list(layers.keys())
        self.synapses = nn.ModuleList()
        self.wiring: list[tuple[str, ...]] = []
        for i, item in enumerate(synapses):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"synapses[{i}] must be a (Synapse, (layer names...)) pair")
            syn, names = item
            names = (names,) if isinstance(names, str) else tuple(names)
            for n in names:
                if n not in self.layers:
                    raise ValueError(f"synapses[{i}] names layer {n!r}; layers are {self.names}")
            self.synapses.append(syn)
            self.wiring.append(names)
        self.sizes = [self.layers[n].dim for n in self.names]

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    def split(self, xi: torch.Tensor) -> dict[str, torch.Tensor]:
        """The layers' states ``[..., *shape_l]`` from the concatenated state ``[..., Σ d_l]``."""
        check_last_dim("xi", xi, self.dim, "the sum of the layer sizes")
        parts = torch.split(xi, self.sizes, dim=-1)
        return {n: p if len(self.layers[n].shape) == 1 else p.reshape(*p.shape[:-1], *self.layers[n].shape)
                for n, p in zip(self.names, parts)}

    def join(self, states: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate per-layer states ``[..., *shape_l]`` into one state tensor (layer order of the constructor)."""
        missing = [n for n in self.names if n not in states]
        if missing:
            raise ValueError(f"states is missing layers {missing}")
        return torch.cat([self.layers[n]._flat(states[n]) for n in self.names], dim=-1)

    def activations(self, xi: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: self.layers[n].activation(x) for n, x in self.split(xi).items()}

    def interaction(self, gs: Mapping[str, torch.Tensor], beta: Beta) -> torch.Tensor:
        """E_int(g) = Σ_s E_s(g_a, g_b, ...): the synapses only."""
        total = None
        for syn, names in zip(self.synapses, self.wiring):
            e = syn(*[gs[n] for n in names], beta=beta)
            total = e if total is None else total + e
        if total is None:
            any_g = next(iter(gs.values()))
            total = any_g.new_zeros(any_g.shape[:-1])
        return total

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        check_tensor("xi", xi, min_dim=1)
        xs = self.split(xi)
        gs = {n: self.layers[n].activation(x) for n, x in xs.items()}
        neuron = sum(self.layers[n].energy(xs[n], gs[n]) for n in self.names)
        return neuron + self.interaction(gs, beta)

    def synapse_names(self) -> list[str]:
        """One label per synapse: ``"Kind(layer, ...)"``, numbered where two would read the same."""
        labels = [f"{type(s).__name__}({', '.join(w)})" for s, w in zip(self.synapses, self.wiring)]
        return [f"{lab} #{labels[:i].count(lab) + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]

    def terms(self, xi: torch.Tensor, beta: Beta) -> dict[str, torch.Tensor]:
        """E broken into its parts, each ``[...]``: per neuron layer its Legendre term
        (key: the layer's name) and per synapse its energy (key: :meth:`synapse_names`); they sum
        to ``energy(xi, beta)``. For a descent's trajectory ``[T, ..., D]`` each is ``[T, ...]``."""
        check_tensor("xi", xi, min_dim=1)
        xs = self.split(xi)
        gs = {n: self.layers[n].activation(x) for n, x in xs.items()}
        out = {n: self.layers[n].energy(xs[n], gs[n]) for n in self.names}
        for label, syn, names in zip(self.synapse_names(), self.synapses, self.wiring):
            out[label] = syn(*[gs[n] for n in names], beta=beta)
        return out

    def grad_g(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∂E/∂g_l = x_l + ∂E_int/∂g_l for every layer, concatenated like the state."""
        xs = self.split(xi)
        gs = {n: self.layers[n].activation(x) for n, x in xs.items()}
        gint = func_grad(lambda g: self.interaction(g, beta).sum())(gs)
        return torch.cat([self.layers[n]._flat(xs[n] + gint[n]) for n in self.names], dim=-1)

    def descent_direction(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """(∂E/∂g_l)/τ_l: the right-hand side of τ_l dx_l/dt = −∂E/∂g_l, with its sign flipped."""
        parts = torch.split(self.grad_g(xi, beta), self.sizes, dim=-1)
        return torch.cat([p / self.layers[n].tau for p, n in zip(parts, self.names)], dim=-1)
