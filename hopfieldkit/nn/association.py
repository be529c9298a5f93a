"""The association of a Hopfield layer: state patterns query stored patterns by update steps.

Per head, with states (queries) Q ``[S, d]``, keys K ``[N, d]`` (the stored patterns in the key
space), values V ``[N, d_v]``, inverse temperature β and s steps:

    ξ_0 = Q,     ξ_{t+1} = softmax(β ξ_t Kᵀ) K        for t < s − 1  (the CCCP update of E)
    output = dropout(softmax(β ξ_{s−1} Kᵀ)) V            (the s-th step reads the values)

    E(ξ) = −β⁻¹ log Σ_i exp(β k_iᵀξ) + ½ ξᵀξ + β⁻¹ log N + ½ max_i ‖k_i‖²   (per state and head)

so one step is attention softmax(β QKᵀ)V, and with V = K every step is an update that never
raises E. Padded members (mask False) get no weight anywhere. The key-space updates run through
:func:`hopfieldkit.descend` on a :class:`~hopfieldkit.HopfieldEnergy` whose memory is shared by
the states of each head; with ``steps=None`` they run until the residual ‖ξ_{t+1} − ξ_t‖ is at
most tol·max(1, ‖ξ_t‖) (at most ``max_steps`` updates), and a state that does not get there is
reported (:class:`ConvergenceWarning`), never counted as converged.

``implicit=True`` differentiates through the fixed point ξ* instead of through the steps
(:mod:`.implicit`): memory stays constant in the number of steps.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _fast
from ..descend import descend
from ..hopfield import HopfieldEnergy
from .implicit import attach_fixed_point


class ConvergenceWarning(UserWarning):
    """An association meant to reach a fixed point stopped at ``max_steps`` first."""


@dataclass
class Association:
    """What one association computed (``return_association=True`` of the layers).

    Attributes:
        output: the layer's output ``[B, S, out_dim]`` (from :func:`associate`: ``head_output``).
        head_output: the read per head, ``[B, H, S, d_v]``.
        state: ξ_{s−1}, the state the values were read with, ``[B, H, S, d]`` (key space).
        weights: softmax(β ξ_{s−1} Kᵀ) of the read, ``[B, H, S, N]`` (before dropout).
        energies: ``[steps + 1, B, H, S]``: E(ξ_t) for t = 0 … s, where ξ_s = softmax(β ξ_{s−1}Kᵀ)K
            is the key-space state the read points at (detached; for diagnostics).
        steps: the number of steps s (key-space updates + the read).
        state_steps: ``[B, H, S]`` steps each state took (fewer than ``steps`` where it converged
            early under a tolerance).
        converged: ``[B, H, S]`` bool with a tolerance (``steps=None`` or ``implicit``); None for a
            fixed number of steps, where nothing is judged.
        residual: ``[B, H, S]`` ‖ξ_s − ξ_{s−1}‖: how far the read's state is from a fixed point.
    """

    output: torch.Tensor
    head_output: torch.Tensor
    state: torch.Tensor
    weights: torch.Tensor
    energies: torch.Tensor
    steps: int
    state_steps: torch.Tensor
    converged: torch.Tensor | None
    residual: torch.Tensor


def head_beta(beta: float | torch.Tensor, heads: int) -> float | torch.Tensor:
    """β as a float or as ``[1, H, 1]`` against the states' batch shape ``[B, H, S]``."""
    if isinstance(beta, torch.Tensor):
        return beta.reshape(1, heads, 1) if beta.numel() == heads else beta.reshape(1, 1, 1)
    return float(beta)


def memory_energy(keys: torch.Tensor, mask: torch.Tensor | None) -> HopfieldEnergy:
    """E(ξ) of every head: keys ``[B, H, N, d]`` (B may be 1) as a memory ``[B, H, 1, N, d]``
    shared by the states ``[B, H, S, d]`` of each head; ``mask`` ``[B, N]``."""
    B, H, N = keys.shape[0], keys.shape[1], keys.shape[2]
    if mask is not None:
        mask = mask[:, None, None, :].expand(mask.shape[0], H, 1, N)
        if B != mask.shape[0]:
            keys = keys.expand(mask.shape[0], *keys.shape[1:])
    return HopfieldEnergy(keys.unsqueeze(-3), mask)


def associate(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    beta: float | torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    steps: int | None = 1,
    tol: float | None = None,
    max_steps: int = 100,
    implicit: bool = False,
    dropout: float = 0.0,
    record: bool = False,
) -> torch.Tensor | Association:
    """The association of per-head tensors (module docstring); the layers validate its inputs.

    Args:
        queries: ``[B, H, S, d]`` the states ξ_0.
        keys: ``[B, H, N, d]`` (B may be 1: one memory for all) the stored patterns in key space.
        values: ``[B, H, N, d_v]`` (same B as keys).
        beta: a positive float, or a tensor with one value per head (or one in all).
        mask: ``[B, N]`` bool, True = a real member.
        steps: s ≥ 1 steps, or None: updates until convergence (``tol``), then the read.
        tol: residual tolerance (``hopfieldkit.descend``'s); with an int ``steps`` it stops the
            updates early. Default with ``steps=None``: descend's (1e-5 in float32).
        max_steps: the most key-space updates with ``steps=None``.
        implicit: gradient through the fixed point (needs ``steps=None``).
        dropout: dropout probability on the read's weights (pass 0 in evaluation).
        record: return an :class:`Association` (weights and the energy trace); else the
            ``[B, H, S, d_v]`` read.
    """
    H = queries.shape[1]
    b = head_beta(beta, H)
    to_convergence = steps is None
    updates = max_steps if to_convergence else steps - 1
    drop = float(dropout)
    if updates == 0 and not record:          # attention: no energy needed
        fused = _fast.value_read(queries, keys, values, b, mask, drop, need_weights=False)
        if fused is not None:
            return fused
    energy = memory_energy(keys, mask)
    run_tol = tol if (to_convergence or tol is not None) else 0.0
    xi, run = queries, None
    if updates > 0:
        if implicit:
            with torch.no_grad():
                run = descend(energy, queries, b, method="update", steps=updates, tol=run_tol, record=record)
            xi = attach_fixed_point(energy, run.xi, b)
        else:
            run = descend(energy, queries, b, method="update", steps=updates, tol=run_tol, record=record)
            xi = run.xi
    converged = None
    if to_convergence:
        converged = run.converged
        if not bool(converged.all()):
            n = int((~converged).sum())
            warnings.warn(f"{n} of {converged.numel()} states (per head) did not converge within "
                          f"max_steps={max_steps} updates (tol={'default' if tol is None else tol}); the "
                          f"read is not at a fixed point (raise max_steps or tol)",
                          ConvergenceWarning, stacklevel=3)
    fused = None if record else _fast.value_read(xi, keys, values, b, mask, drop, need_weights=False)
    if fused is not None:
        return fused
    weights = energy.weights(xi, b)
    out = (F.dropout(weights, drop) if drop > 0 else weights) @ values
    if not record:
        return out
    with torch.no_grad():
        last = energy.update(xi, b)                         # ξ_s, where the read points
        trace = [energy(queries, b)[None]] if run is None else [run.energies]
        trace.append(energy(last, b)[None])
        energies = torch.cat(trace).detach()
        residual = torch.linalg.vector_norm(last - xi.detach(), dim=-1)
    state_steps = (torch.ones(queries.shape[:-1], dtype=torch.long, device=queries.device) if run is None
                   else run.state_steps + 1)
    taken = int(state_steps.max())
    return Association(output=out, head_output=out, state=xi, weights=weights, energies=energies,
                       steps=taken, state_steps=state_steps, converged=converged, residual=residual)
