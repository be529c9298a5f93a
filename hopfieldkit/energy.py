"""The energy protocol and its base class.

An *energy* is any callable ``energy(xi, beta) -> Tensor`` that maps states ``xi`` of shape
``[..., *event]`` to one energy per state, shape ``[...]``, and is differentiable with torch.func.
``event`` is the shape of one state: ``[d]`` for vector states (``event_dims = 1``, the default),
``[T, D]`` for token states (``event_dims = 2``). Plain functions and lambdas qualify.

:class:`Energy` adds what the analysis tools use when present:

- ``update(xi, beta)``: a closed-form fixed-point map that never raises the energy (e.g. CCCP);
- ``grad(xi, beta)``: ∂E/∂ξ (autodiff by default; subclasses give closed forms);
- ``descent_direction(xi, beta)``: the direction the model's own dynamics follow,
  τ dξ/dt = −descent_direction(ξ); ∂E/∂ξ by default, ∂E/∂g for Lagrangian energies.

Energies add: ``E1 + E2`` is the energy whose value is the sum (parts that share a state).
"""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn
from torch.func import grad as func_grad

from . import _fast

Beta = Union[float, torch.Tensor]
EnergyFn = Callable[[torch.Tensor, Beta], torch.Tensor]


def event_dims_of(energy: object) -> int:
    """Number of trailing dimensions that form one state (1 unless the energy says otherwise)."""
    n = getattr(energy, "event_dims", 1)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"energy.event_dims must be a positive int, got {n!r}")
    return n


def autodiff_grad(energy: EnergyFn, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
    """∂E/∂ξ for every state at once, by autodiff of the summed energy.

    States are independent (each energy depends on its own state only), so the gradient of the
    sum is the stack of the per-state gradients; this costs one backward pass instead of a vmap.
    The result stays differentiable w.r.t. ξ and the tensors the energy closes over (patterns,
    weights): torch.func.grad. When nothing needs that (under ``torch.no_grad()``, or an
    :class:`Energy` module none of whose tensors requires grad), one plain ``torch.autograd.grad``
    call does the same work with less overhead, and
    ops with their own backward (:func:`~hopfieldkit.lse_similarity`) run their fast kernels.
    """
    return _autodiff(energy, xi, beta, _fast.policy.needs_graph(energy, xi, beta))


def _autodiff(energy: EnergyFn, xi: torch.Tensor, beta: Beta, needs_graph: bool) -> torch.Tensor:
    """∂E/∂ξ by torch.func.grad where a graph is needed (or inside a transform), else graph-free."""
    if _fast.policy.graph_free_autodiff(xi, needs_graph):
        return graph_free_grad(energy, xi, beta)
    return func_grad(lambda x: energy(x, beta).sum())(xi)


def graph_free_grad(energy: EnergyFn, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
    """∂E/∂ξ by one ``torch.autograd.grad`` call on a detached copy of ξ: no graph is kept, so the
    caller must know that nothing (ξ, β, the energy's tensors) requires grad."""
    with torch.enable_grad():
        x = xi.detach().requires_grad_(True)
        out = energy(x, beta)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise ValueError(f"energy(xi, beta) ({type(energy).__name__}) is not differentiable with respect "
                             f"to xi: its value has no autograd graph back to xi (an integer cast, .detach(), "
                             f".item() or a NumPy round trip inside the energy cuts it)")
        (g,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if g is None:
        raise ValueError(f"energy(xi, beta) ({type(energy).__name__}) does not depend on xi through "
                         f"differentiable ops; its gradient is undefined")
    return g


def has_update(energy: object) -> bool:
    """True when the energy offers a closed-form ``update(xi, beta)``."""
    flag = getattr(energy, "has_update", None)
    if isinstance(flag, bool):
        return flag
    upd = getattr(energy, "update", None)
    if upd is None or not callable(upd):
        return False
    return not getattr(upd, "_not_implemented", False)


def _not_implemented(fn):
    fn._not_implemented = True
    return fn


class Energy(nn.Module):
    """Base class: ``forward(xi, beta)`` returns one energy per state, shape ``xi.shape[:-event_dims]``."""

    event_dims: int = 1

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @_not_implemented
    def update(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Closed-form fixed-point map (absent on this energy)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form update; use method='armijo'")

    def grad(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """∂E/∂ξ, by autodiff unless a subclass has a closed form."""
        return autodiff_grad(self, xi, beta)

    def descent_direction(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Direction of the energy's dynamics τ dξ/dt = −(this); ∂E/∂ξ unless overridden."""
        return self.grad(xi, beta)

    def __add__(self, other: "Energy") -> "SumEnergy":
        if not callable(other):
            return NotImplemented
        return SumEnergy(self, other)

    def __radd__(self, other) -> "SumEnergy":
        """``f + E`` for a plain callable f."""
        if not callable(other):
            return NotImplemented
        return SumEnergy(other, self)


class SumEnergy(Energy):
    """E(ξ) = Σ_k E_k(ξ): parts acting on the same state (e.g. a quadratic term plus an interaction)."""

    def __init__(self, *parts: EnergyFn):
        super().__init__()
        if len(parts) < 1:
            raise ValueError("SumEnergy needs at least one part")
        dims = {event_dims_of(p) for p in parts}
        if len(dims) != 1:
            raise ValueError(f"parts of a SumEnergy must share event_dims, got {sorted(dims)}")
        self.event_dims = dims.pop()
        flat = []
        for p in parts:
            flat.extend(p._fns if isinstance(p, SumEnergy) else [p])   # every part, modules or not
        self.parts = nn.ModuleList([p for p in flat if isinstance(p, nn.Module)])
        self._fns = flat

    def forward(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        return sum(p(xi, beta) for p in self._fns)

    def grad(self, xi: torch.Tensor, beta: Beta) -> torch.Tensor:
        """Σ_k ∂E_k/∂ξ: parts with a closed-form gradient (e.g. the Hopfield energy's ξ − X softmax)
        use it; the others are differentiated together in one autodiff pass."""
        closed = [p for p in self._fns if _has_closed_grad(p)]
        if not closed:
            return autodiff_grad(self, xi, beta)
        rest = [p for p in self._fns if not _has_closed_grad(p)]
        g = sum(p.grad(xi, beta) for p in closed)
        if rest:
            g = g + _autodiff(lambda x, b: sum(p(x, b) for p in rest), xi, beta,
                              any(_fast.policy.needs_graph(p, xi, beta) for p in rest))
        return g


def _has_closed_grad(part: object) -> bool:
    """An :class:`Energy` whose class overrides ``grad`` (a closed form instead of autodiff)."""
    return isinstance(part, Energy) and type(part).grad is not Energy.grad
