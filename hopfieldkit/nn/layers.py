"""Trainable Hopfield layers: association, a learned memory (lookup) and pooling of a set.

All three project into H heads of a key space, run :func:`~.association.associate` there and
project the heads' reads back:

    Q = R W_Q,   K = Y W_K,   V = Y' W_V      (per head; Y' = Y unless values are given)
    Z_h = association of Q_h with K_h, V_h      (steps updates; one step = softmax(β Q_h K_hᵀ) V_h)
    output = [Z_1 … Z_H] W_O

With ``project=False`` (one head) there are no projections: the states query the stored patterns
themselves, so ``steps=s`` returns s plain updates ξ ← softmax(β ξYᵀ)Y when no values are given.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_finite, checks_enabled, check_positive
from ..hopfield import HopfieldEnergy
from .association import Association, associate


class HeadEnergy(NamedTuple):
    """One head's energy and β, ready for :func:`hopfieldkit.fixed_points` and :func:`classify`."""

    energy: HopfieldEnergy
    beta: float


def _positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


class Hopfield(nn.Module):
    """Association of state patterns with stored patterns (a set per sample), multi-head.

    Args:
        dim: size of the state patterns R ``[B, S, dim]``.
        heads: number of heads H.
        head_dim: key-space size per head (default ``dim // heads``, which must divide).
        stored_dim: size of the stored patterns Y (default ``dim``).
        value_dim: size of separately given values (default ``stored_dim``).
        out_dim: size of the output (default ``dim``).
        beta: inverse temperature β > 0 (default 1/√head_dim).
        learn_beta: β is learned, one per head (as exp of a parameter, so it stays positive).
        steps: number of steps s ≥ 1 (s − 1 key-space updates, then the read), or None: update
            until convergence (``tol``, at most ``max_steps``), the count reported.
        tol: residual tolerance of the updates (default with ``steps=None``: 1e-5 in float32,
            1e-10 in float64); with an int ``steps`` it stops the updates early.
        max_steps: the most updates with ``steps=None``.
        project: False: no projections, one head, ``stored_dim = dim``; values default to the
            stored patterns themselves and the output has their size.
        implicit: differentiate through the fixed point, not the steps (needs ``steps=None``):
            memory constant in the number of steps; the state projection then gets no gradient.
        dropout: dropout on the read's weights (training only).
        bias: biases in the projections.

    ``forward(state, stored, values=None, mask=None, return_association=False)``: ``state``
    ``[B, S, dim]``, ``stored`` ``[B, N, stored_dim]`` (B may be 1 in either: broadcast),
    ``values`` ``[B, N, value_dim]``, ``mask`` ``[B, N]`` bool (True = a real member; padded ones
    get no weight). Returns ``[B, S, out_dim]``, or an :class:`Association` with the weights, the
    energy trace per state and head and the step count.
    """

    def __init__(self, dim: int, *, heads: int = 1, head_dim: int | None = None, stored_dim: int | None = None,
                 value_dim: int | None = None, out_dim: int | None = None, beta: float | None = None,
                 learn_beta: bool = False, steps: int | None = 1, tol: float | None = None,
                 max_steps: int = 100, project: bool = True, implicit: bool = False,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.dim = _positive_int("dim", dim)
        self.heads = _positive_int("heads", heads)
        self.stored_dim = dim if stored_dim is None else _positive_int("stored_dim", stored_dim)
        self.value_dim = self.stored_dim if value_dim is None else _positive_int("value_dim", value_dim)
        for name, v in (("learn_beta", learn_beta), ("project", project), ("implicit", implicit), ("bias", bias)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be True or False, got {v!r}")
        self.project = project
        if project:
            if head_dim is None:
                if dim % heads:
                    raise ValueError(f"dim={dim} is not divisible by heads={heads}; pass head_dim")
                head_dim = dim // heads
            self.head_dim = _positive_int("head_dim", head_dim)
            self.out_dim = dim if out_dim is None else _positive_int("out_dim", out_dim)
            inner = self.heads * self.head_dim
            self.q_proj = nn.Linear(dim, inner, bias=bias)
            self.k_proj = nn.Linear(self.stored_dim, inner, bias=bias)
            self.v_proj = nn.Linear(self.value_dim, inner, bias=bias)
            self.out_proj = nn.Linear(inner, self.out_dim, bias=bias)
        else:
            if heads != 1:
                raise ValueError(f"project=False has one head (the raw patterns); got heads={heads}")
            if self.stored_dim != dim:
                raise ValueError(f"project=False queries the stored patterns themselves: stored_dim must equal "
                                 f"dim={dim}, got {self.stored_dim}")
            if head_dim not in (None, dim):
                raise ValueError(f"project=False has head_dim = dim = {dim}, got head_dim={head_dim}")
            if out_dim not in (None, self.value_dim):
                raise ValueError(f"project=False returns the values' size {self.value_dim}, got out_dim={out_dim}")
            self.head_dim, self.out_dim = dim, self.value_dim
        if steps is not None:
            _positive_int("steps", steps)
        self.steps = steps
        if tol is not None:
            check_positive("tol", tol)
        self.tol = tol
        self.max_steps = _positive_int("max_steps", max_steps)
        if implicit and steps is not None:
            raise ValueError("implicit=True differentiates at the fixed point: set steps=None (update until "
                             "convergence, tol and max_steps bound it)")
        self.implicit = implicit
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        beta = 1.0 / math.sqrt(self.head_dim) if beta is None else beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (0 < beta < math.inf):
            raise ValueError(f"beta must be a positive finite number (or None for 1/sqrt(head_dim)), got {beta!r}")
        if learn_beta:
            self.log_beta = nn.Parameter(torch.full((self.heads,), math.log(beta)))
        else:
            self.register_parameter("log_beta", None)
            self._beta = float(beta)

    # -- settings ---------------------------------------------------------------------------------
    @property
    def beta(self) -> float | torch.Tensor:
        """β: a float, or ``[heads]`` when learned."""
        return self._beta if self.log_beta is None else self.log_beta.exp()

    def extra_repr(self) -> str:
        b = "learned" if self.log_beta is not None else f"{self._beta:.4g}"
        return (f"dim={self.dim}, heads={self.heads}, head_dim={self.head_dim}, stored_dim={self.stored_dim}, "
                f"out_dim={self.out_dim}, beta={b}, steps={self.steps}, project={self.project}, "
                f"implicit={self.implicit}")

    # -- the pipeline ------------------------------------------------------------------------------
    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, H·d]`` → ``[B, H, L, d]``."""
        B, L, _ = x.shape
        return x.view(B, L, self.heads, -1).transpose(1, 2)

    def project_state(self, state: torch.Tensor) -> torch.Tensor:
        """The states in key space, ``[B, H, S, head_dim]`` (starts for the attractor tools)."""
        self._check("state", state, self.dim)
        return self._queries(state)

    def _queries(self, state: torch.Tensor) -> torch.Tensor:
        return self._split(self.q_proj(state)) if self.project else state.unsqueeze(1)

    def project_stored(self, stored: torch.Tensor) -> torch.Tensor:
        """The stored patterns in key space, ``[B, H, N, head_dim]``."""
        return self._split(self.k_proj(stored)) if self.project else stored.unsqueeze(1)

    def energy(self, stored: torch.Tensor, mask: torch.Tensor | None = None, head: int = 0) -> HeadEnergy:
        """One head's energy E(ξ) with its β: ``stored`` ``[B, N, stored_dim]`` gives a memory per
        sample ``[B, N, head_dim]`` (``[N, head_dim]`` for B = 1), for ``fixed_points``."""
        self._check("stored", stored, self.stored_dim)
        if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < self.heads:
            raise ValueError(f"head must be an int in [0, {self.heads}), got {head!r}")
        self._check_mask(mask, stored.shape[0], stored.shape[1])
        with torch.no_grad():
            K = self.project_stored(stored)[:, head]
            b = self.beta
            b = float(b[head]) if isinstance(b, torch.Tensor) else b
        if K.shape[0] == 1:
            return HeadEnergy(HopfieldEnergy(K[0], None if mask is None else mask[0]), b)
        return HeadEnergy(HopfieldEnergy(K, mask), b)

    def forward(self, state: torch.Tensor, stored: torch.Tensor, values: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, return_association: bool = False) -> torch.Tensor | Association:
        B = self._check_inputs(state, stored, values, mask)
        if not isinstance(return_association, bool):
            raise TypeError(f"return_association must be True or False, got {return_association!r}")
        q = self._queries(state)
        k = self.project_stored(stored)
        if self.project:
            v = self._split(self.v_proj(stored if values is None else values))
        else:
            v = (stored if values is None else values).unsqueeze(1)
        if q.shape[0] != B:
            q = q.expand(B, *q.shape[1:])
        out = associate(q, k, v, self.beta, mask=mask, steps=self.steps, tol=self.tol, max_steps=self.max_steps,
                        implicit=self.implicit, dropout=self.dropout if self.training else 0.0,
                        record=return_association)
        heads = out.head_output if return_association else out
        merged = heads.transpose(1, 2).reshape(B, heads.shape[2], -1)
        result = self.out_proj(merged) if self.project else merged
        if return_association:
            out.output = result
            return out
        return result

    # -- checks -------------------------------------------------------------------------------------
    def _check(self, name: str, x: object, size: int) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor [B, L, {size}], got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != size:
            raise ValueError(f"{name} must have shape [B, L, {size}] (batch, members, features), got {tuple(x.shape)}")
        if x.shape[1] < 1:
            raise ValueError(f"{name} must hold at least one pattern per sample, got shape {tuple(x.shape)}")
        ref = next(self.parameters(), None)
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
        if ref is not None and x.dtype != ref.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the layer's parameters are {ref.dtype}; convert one "
                            f"(e.g. layer.to({x.dtype}) or {name}.to({ref.dtype}))")
        if ref is not None and x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but the layer is on {ref.device}")
        if checks_enabled():
            check_finite(name, x)

    def _check_mask(self, mask: object, B: int, N: int) -> None:
        if mask is None:
            return
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a bool tensor [B, N] (True = a real member), got {got}")
        if tuple(mask.shape) != (B, N):
            raise ValueError(f"mask must have shape [{B}, {N}] (one flag per stored pattern), got {tuple(mask.shape)}")

    def _check_inputs(self, state, stored, values, mask) -> int:
        self._check("state", state, self.dim)
        self._check("stored", stored, self.stored_dim)
        if state.dtype != stored.dtype:
            raise TypeError(f"state has dtype {state.dtype} but stored has {stored.dtype}")
        Bs, Bm = state.shape[0], stored.shape[0]
        if Bs != Bm and 1 not in (Bs, Bm):
            raise ValueError(f"state has batch {Bs} but stored has batch {Bm}; they must match (or one be 1)")
        if values is not None:
            self._check("values", values, self.value_dim)
            if values.shape[:2] != stored.shape[:2]:
                raise ValueError(f"values must have shape [{Bm}, {stored.shape[1]}, {self.value_dim}] (one per stored "
                                 f"pattern), got {tuple(values.shape)}")
        B = max(Bs, Bm)
        if mask is not None:
            self._check_mask(mask, B, stored.shape[1])
            if not bool(mask.any(-1).all()):
                raise ValueError("mask leaves a sample without any real member; every set needs one")
        return B


class HopfieldLayer(nn.Module):
    """A learned memory: ``patterns`` stored patterns and their values are parameters, shared by
    all samples; ``forward(state [B, S, dim])`` → ``[B, S, out_dim]`` (or an :class:`Association`).

    The other keyword arguments are those of :class:`Hopfield`. Stored patterns and values start
    as N(0, 1/dim) entries."""

    def __init__(self, dim: int, patterns: int, **kw):
        super().__init__()
        _positive_int("patterns", patterns)
        if "stored_dim" in kw or "value_dim" in kw:
            raise TypeError("HopfieldLayer stores patterns of size dim; stored_dim and value_dim do not apply")
        self.hopfield = Hopfield(dim, **kw)
        self.patterns = nn.Parameter(torch.randn(patterns, dim) / math.sqrt(dim))
        self.values = nn.Parameter(torch.randn(patterns, dim) / math.sqrt(dim))

    def forward(self, state: torch.Tensor, return_association: bool = False) -> torch.Tensor | Association:
        return self.hopfield(state, self.patterns.unsqueeze(0), self.values.unsqueeze(0),
                             return_association=return_association)

    def energy(self, head: int = 0) -> HeadEnergy:
        """One head's energy over the learned memory, ``[patterns, head_dim]``, with its β."""
        return self.hopfield.energy(self.patterns.unsqueeze(0), head=head)


class HopfieldPooling(nn.Module):
    """Pooling of a set: ``queries`` learned state patterns query the set ``stored`` ``[B, N, dim]``;
    ``forward(stored, mask=None, values=None)`` → ``[B, queries, out_dim]``. Permutation invariant
    in the members, and masked members change nothing. Other keyword arguments: :class:`Hopfield`."""

    def __init__(self, dim: int, queries: int = 1, **kw):
        super().__init__()
        _positive_int("queries", queries)
        if "stored_dim" in kw:
            raise TypeError("HopfieldPooling pools members of size dim; stored_dim does not apply")
        self.hopfield = Hopfield(dim, **kw)
        self.queries = nn.Parameter(torch.randn(queries, dim) / math.sqrt(dim))

    def forward(self, stored: torch.Tensor, mask: torch.Tensor | None = None, values: torch.Tensor | None = None,
                return_association: bool = False) -> torch.Tensor | Association:
        return self.hopfield(self.queries.unsqueeze(0), stored, values, mask, return_association=return_association)

    def energy(self, stored: torch.Tensor, mask: torch.Tensor | None = None, head: int = 0) -> HeadEnergy:
        """One head's energy over each set's members, with its β."""
        return self.hopfield.energy(stored, mask, head)
