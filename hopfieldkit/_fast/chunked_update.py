"""The ``update`` descent of a Hopfield energy, run in chunks of steps (energy recorded or not).

The plain loop (:func:`hopfieldkit._methods._run_fixed_map`) spends, per step, one update, one more
energy evaluation (the products Xᵀξ again) and a dozen small bookkeeping ops: judging each state,
freezing the converged ones, a host sync to test whether all have. On small problems (a theory
user's N = 20–1000 patterns) those fixed costs are most of the time. Here:

- each step is one evaluation of the scores s = β Xᵀξ, giving both update(ξ) and E(ξ)
  (:meth:`HopfieldEnergy.update_and_energy`): the energy after step t comes with step t + 1;
- the states run free for a chunk of steps (chunks of 4, 8, 16, … steps), written into one buffer;
- then one vectorised pass decides, for every state, the iteration at which the plain loop would
  have frozen it (its residual not finite, or within tolerance, or its new energy not finite),
  and the run stops once every state is frozen, at the step the plain loop would have stopped.

The result is the plain loop's: frozen states are read back at the iteration they froze, their
energies held from there on. Its numbers agree to rounding (β folded into the patterns, the exp
taken by hand round differently), so a state whose residual lands within rounding of the
tolerance may stop one step apart. Without ``record`` the states are judged by their residual
alone, as in the plain loop; the bare map (``tol=0``, nothing recorded) keeps the plain loop.
This relies on the update acting on each state alone (a state's path does not depend on the others, as for every Hopfield memory layout), which is why only the
Hopfield energy's own update takes this route. The steps a state runs past its freeze are wasted
work (at most one chunk) and never seen.
"""
from __future__ import annotations

import math

import torch

from . import onednn

FIRST_CHUNK = 4
MAX_CHUNK = 64
# without energies a chunk grows no longer than the plain loop's own test interval when nothing is
# recorded (descend's check_every default, 16): a run then computes as few wasted steps as it does
MAX_CHUNK_UNRECORDED = 16
# the route is taken for score matrices (B·N) up to this size; with trajectory=True, for at most
# this many kept state entries ((steps + 1)·B·d), as the free run keeps them before they are read back
MAX_SCORES = 1 << 20
MAX_TRAJECTORY = 1 << 24
# the specialised step's oneDNN route is worth its fixed cost from this many scores (B·N) on
ONEDNN_SCORES = 1 << 18
# memories of fewer patterns take exp and sum by hand: the softmax kernel's fixed cost per row is
# then most of its time (on longer rows its exp stays fast where torch.exp underflows slowly)
SHORT_ROWS = 128
# short rows skip the max shift below these reaches (SharedMemoryStep): e^40 of e^88 (float32) and
# e^600 of e^709 (float64) leave room for rounding and for the entries of the patterns in the product
UNSHIFTED_BOUND = {torch.float32: 40.0, torch.float64: 600.0}


class EnergyStep:
    """One step of any Hopfield memory layout through ``energy.update_and_energy``: aux = E(ξ)."""

    def __init__(self, energy, beta):
        self.energy, self.beta = energy, beta

    def step(self, x: torch.Tensor, out: torch.Tensor, lse: bool = True) -> torch.Tensor | None:
        if not lse:
            out.copy_(self.energy.update(x, self.beta))
            return None
        new, e = self.energy.update_and_energy(x, self.beta)
        out.copy_(new)
        return e

    def energies(self, states: torch.Tensor, aux: list[torch.Tensor], norms: torch.Tensor) -> torch.Tensor:
        return torch.stack(aux).reshape(len(aux), -1)

    def slots(self, ys: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows of the state buffer ``ys`` as :meth:`step` takes them (views, made once)."""
        return ys.unbind(0)


class SharedMemoryStep:
    """One step for one shared ``[N, d]`` memory without a mask and one β: the scores through the
    softmax kernel (ℓ from it, :func:`.onednn.softmax_lse`) or, for short rows, ℓ = m + log Σ e^{s−m}
    by hand, β folded into the patterns once; the
    energies of a whole chunk from the kept ℓ at once, E = −ℓ/β + ½‖ξ‖² + β⁻¹ log N + ½ M².

    Short rows skip the shift m where no score can leave exp's range: an update is a convex
    combination of the patterns, so after the first step ‖ξ‖ ≤ M = max_i ‖x_i‖, and every score
    obeys |s| ≤ B = |β| M max(M, ‖ξ₀‖) (Cauchy–Schwarz). Where B + |log M| + log N stays below
    :data:`UNSHIFTED_BOUND` for the dtype, e^s and the weighted sum Σ e^{s_i} x_i neither overflow
    nor leave the normal range, so the step is that sum over Σ e^s alone (four ops fewer a step), and
    ℓ = log Σ e^s is taken once per chunk."""

    def __init__(self, X: torch.Tensor, beta: float, xi: torch.Tensor, owner):
        from . import lse_op

        packable, X = X, X.detach()              # (the packed copy is kept per pattern tensor)
        self.X, self.beta = X, beta
        self.d = X.shape[1]
        self.XbT = (beta * X).T.contiguous()
        big = float(torch.linalg.vector_norm(X, dim=-1).max())
        self.const = math.log(X.shape[0]) / beta + 0.5 * big * big
        rows = xi.numel() // self.d
        self.unshifted = False
        if X.shape[0] < SHORT_ROWS and X.dtype in UNSHIFTED_BOUND and big > 0:
            start = float(torch.linalg.vector_norm(xi.detach().reshape(-1, self.d), dim=-1).max()) if rows else 0.0
            reach = abs(beta) * big * max(big, start) + abs(math.log(big)) + math.log(X.shape[0])
            self.unshifted = reach <= UNSHIFTED_BOUND[X.dtype]            # (NaN compares False)
        self.packed = None
        if onednn.applies(X, xi) and rows * X.shape[0] >= ONEDNN_SCORES:
            self.packed = lse_op.packed_patterns(owner, packable, xi)

    def step(self, x: torch.Tensor, out: torch.Tensor, lse: bool = True) -> torch.Tensor | None:
        """update(x) into ``out`` (both ``[states, d]``, rows of :meth:`slots`); returns ℓ = log Σ exp(s)
        per state, Σ exp(s) on the unshifted route (:meth:`energies` takes its log; None unless ``lse``)."""
        if self.packed is not None:
            total, kept = self.packed.lse(x * self.beta, keep=True)
            out.copy_(self.packed.weighted_sum(kept, total))
            self.packed.release(kept)
            return total
        s = torch.mm(x, self.XbT)
        # unshifted: Σ e^s, its log taken per chunk in energies(); unrecorded only in float64, where
        # it beats the softmax kernel
        if self.unshifted and (lse or s.dtype == torch.float64):
            z = s.exp_().sum(1, keepdim=True)
            torch.mm(s, self.X, out=out).div_(z)
            return z if lse else None
        if not lse:                                  # the weights alone: the softmax kernel, any row length
            torch.mm(torch.softmax(s, 1), self.X, out=out)
            return None
        if self.X.shape[0] >= SHORT_ROWS:
            p, ell = onednn.softmax_lse(s)
            torch.mm(p, self.X, out=out)
            return ell
        m = s.amax(1, keepdim=True)                  # short rows: exp and sum by hand beat the kernel
        z = s.sub_(m).exp_().sum(1, keepdim=True)
        torch.mm(s, self.X, out=out).div_(z)
        return z.log_().add_(m)

    def slots(self, ys: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows of the state buffer ``ys`` as ``[states, d]`` views, made once per descent."""
        return ys.view(ys.shape[0], -1, self.d).unbind(0)

    def energies(self, states: torch.Tensor, aux: list[torch.Tensor], norms: torch.Tensor) -> torch.Tensor:
        """E of ``states`` [n, ...] from their ℓ (``aux``) and norms ``[n, rows]``."""
        ell = torch.stack(aux).reshape(len(aux), -1)
        if self.unshifted:
            ell = ell.log_()
        return norms.square().mul_(0.5).add_(ell, alpha=-1.0 / self.beta).add_(self.const)


def chunk_end(m: int, size: int, check_every: int) -> int:
    """Where a chunk of about ``size`` steps from step m ends. The plain loop stops only at
    multiples of ``check_every``: chunks shorter than it end no later than the next multiple (all
    states may freeze early, and the steps after a freeze need not be computed), longer ones end on
    a multiple (steps computed past the stop would be wasted)."""
    nxt = (m // check_every + 1) * check_every
    if size < check_every:
        return min(m + size, nxt)
    end = (m + size) // check_every * check_every
    return end if end > m else nxt


def stepper(energy, xi: torch.Tensor, beta):
    """The step for this energy and these states: :class:`SharedMemoryStep` where it applies, else
    :class:`EnergyStep`."""
    X = energy.patterns
    b = beta
    if isinstance(b, torch.Tensor) and b.dim() == 0:
        b = float(b)
    if (X.dim() == 2 and energy.mask is None and isinstance(b, (int, float)) and not isinstance(b, bool)
            and xi.device.type == "cpu" and X.device.type == "cpu"):
        return SharedMemoryStep(X, float(b), xi, energy)
    return EnergyStep(energy, beta)


class _Freeze:
    """Per state: the iteration at which the plain loop freezes it (0: not yet), why, its residual
    and the state it is frozen at."""

    def __init__(self, xi: torch.Tensor, rows: int, tol: float):
        dev = xi.device
        self.tol = tol
        self.at = torch.zeros(rows, dtype=torch.long, device=dev)
        self.converged = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.diverged = torch.zeros_like(self.converged)
        self.residual = torch.full((rows,), float("inf"), dtype=xi.dtype, device=dev)
        self.final = xi.detach().reshape(rows, -1).clone()
        self.rows = torch.arange(rows, device=dev)

    def decide(self, first: int, before: torch.Tensor, after: torch.Tensor, norms: torch.Tensor,
               e_after: torch.Tensor, diff: torch.Tensor, skip_first: bool = False) -> None:
        """Judge iterations first … first + n − 1: iteration t went from ``before[t − first]`` (of
        norm ``norms[t − first]``) to ``after[t − first]``, whose energy is ``e_after[t − first]``
        (``[n, rows]``); ``diff``: a buffer ``[n, rows, event size]``."""
        n = before.shape[0]
        rows = self.at.shape[0]
        b = before.reshape(n, rows, -1)
        res = torch.linalg.vector_norm(torch.sub(after.reshape(n, rows, -1), b, out=diff), dim=-1)   # [n, rows]
        bad = ~torch.isfinite(res)
        if self.tol > 0:
            conv = ~bad & (res <= self.tol * norms.clamp_min(1.0))
        else:
            conv = torch.zeros_like(bad)
        bad = bad | (~conv & ~torch.isfinite(e_after))
        stop = bad | conv
        if skip_first:
            stop[0] = False
        open_ = self.at == 0
        hit = stop & open_
        newly = hit.any(0)
        j = hit.to(torch.uint8).argmax(0)                        # the first iteration that froze it
        self.at = torch.where(newly, first + j, self.at)
        self.converged = self.converged | (newly & conv[j, self.rows])
        self.diverged = self.diverged | (newly & bad[j, self.rows])
        last = res[-1] if not (skip_first and n == 1) else self.residual
        self.residual = torch.where(newly, res[j, self.rows], torch.where(open_, last, self.residual))
        self.final = torch.where(newly.unsqueeze(-1), b[j, self.rows], self.final)

    def all_frozen(self) -> bool:
        return bool((self.at > 0).all())


def run(energy, xi: torch.Tensor, beta, e0: torch.Tensor | None, *, steps: int, tol: float, keep_traj: bool,
        check_every: int, progress: bool, event_dims: int, record: bool = True):
    """``descend(energy, xi, beta, method="update", ...)`` (module docstring). Without ``record``
    the plain loop judges states by their residual alone: the energies are then neither kept nor
    tested (they stand in as zeros, always finite)."""
    from .._methods import stop_message, _finite
    from ..descend import Descent

    step = stepper(energy, xi, beta)
    shape = xi.shape
    batch = shape[: xi.dim() - event_dims]
    rows = batch.numel()
    max_chunk = MAX_CHUNK if record else MAX_CHUNK_UNRECORDED
    # E(Y_t) of the free run; unrecorded, a chunk's worth of zeros stands in (always finite)
    energies = torch.empty((steps + 1, rows), dtype=xi.dtype, device=xi.device) if record else None
    finite = None if record else torch.zeros((min(max_chunk, steps) + 1, rows), dtype=xi.dtype, device=xi.device)
    traj = torch.empty((steps + 1,) + tuple(shape), dtype=xi.dtype, device=xi.device) if keep_traj else None
    if keep_traj:
        traj[0] = xi
    freeze = _Freeze(xi, rows, tol)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="descend", leave=False)
    x = xi.detach()
    rows_max = min(max_chunk, steps) + 2
    ys = torch.empty((rows_max,) + tuple(shape), dtype=xi.dtype, device=xi.device)   # Y_{m-1} … Y_{m+c}
    diff = torch.empty((rows_max - 2, rows, shape.numel() // max(rows, 1)), dtype=xi.dtype, device=xi.device)
    ys[0], ys[1] = x, x                           # (Y_{-1} stands in for the missing iteration 0)
    slots = step.slots(ys)                        # per-row views, not two indexing ops a step
    m, size, taken, stop = 0, FIRST_CHUNK, steps, f"reached steps={steps}"
    with torch.no_grad():
        while m < steps:
            c = min(chunk_end(m, size, check_every), steps) - m
            size = min(2 * size, max_chunk)
            aux = [step.step(slots[j + 1], slots[j + 2], record) for j in range(c)]
            norms = torch.linalg.vector_norm(ys[:c + 1].reshape(c + 1, rows, -1), dim=-1)   # ‖Y_{m-1}‖ … ‖Y_{m+c-1}‖
            if record:
                energies[m:m + c] = step.energies(ys[1:c + 1], aux, norms[1:])           # E_m … E_{m+c-1}
                if m == 0:
                    energies[0] = e0.reshape(-1)
            e_chunk = energies[m:m + c] if record else finite[:c]
            if keep_traj:
                traj[m + 1:m + c + 1] = ys[2:c + 2]
            freeze.decide(m, ys[:c], ys[1:c + 1], norms[:c], e_chunk, diff[:c], skip_first=m == 0)
            m += c
            if bar is not None:
                bar.update(c)
            if freeze.all_frozen():
                done = int(freeze.at.max())
                at = -(-done // check_every) * check_every
                if at <= steps:
                    taken, stop = at, None
                break
            ys[:2] = ys[c:c + 2].clone()
        else:                                      # iteration `steps` waits for E(Y_steps)
            x = ys[1]
            scratch = torch.empty_like(slots[1])
            norms = torch.linalg.vector_norm(ys[:2].reshape(2, rows, -1), dim=-1)
            if record:
                energies[steps] = step.energies(x.unsqueeze(0), [step.step(slots[1], scratch)], norms[1:])
            freeze.decide(steps, ys[:1], ys[1:2], norms[:1], energies[steps:steps + 1] if record else finite[:1],
                          diff[:1])
        x = ys[1]
    if bar is not None:
        bar.close()
    frozen = freeze.at > 0
    t = torch.arange(taken + 1, device=xi.device).unsqueeze(-1)                    # [taken + 1, 1]
    held = torch.where(frozen, freeze.at - 1, torch.full_like(freeze.at, steps + 1))
    idx = torch.minimum(t, held)                                                   # the row each state shows
    final = torch.where(frozen.unsqueeze(-1), freeze.final, x.reshape(rows, -1)).reshape(shape)
    diverged = freeze.diverged | (~freeze.converged & ~_finite(final, event_dims).reshape(rows))
    trajectory = None
    if keep_traj:
        flat = traj.reshape(steps + 1, rows, -1)
        trajectory = flat.gather(0, idx.unsqueeze(-1).expand(-1, -1, flat.shape[-1])).reshape((taken + 1,) + tuple(shape))
    state_steps = torch.where(frozen, freeze.at - 1, torch.full_like(freeze.at, taken))
    return Descent(
        xi=final,
        energies=energies.gather(0, idx).reshape((taken + 1,) + tuple(batch)) if record else None,
        trajectory=trajectory,
        converged=freeze.converged.reshape(batch),
        diverged=diverged.reshape(batch),
        steps=taken,
        state_steps=state_steps.reshape(batch),
        residual=freeze.residual.reshape(batch),
        method="update",
        message=stop_message(freeze.converged, diverged, stop),
    )
