"""Energy descent: ``descend(energy, xi, beta) -> Descent``.

Methods (``method=``):

- ``"update"``: iterate the energy's closed-form fixed-point map, ξ ← update(ξ) (CCCP for the
  Hopfield energy: E never increases, [R] Thm A1).
- ``"gd"``: ξ ← ξ − η d(ξ), with d the energy's ``descent_direction`` (∂E/∂ξ by torch.func
  autodiff; ∂E/∂g for Lagrangian energies). Monotone for η below 2/L (L = Lipschitz constant of
  the gradient; η ≤ 2 for the Hopfield energy, whose Hessian is ⪯ I).
- ``"armijo"``: gradient descent with per-state backtracking: a step is taken only if
  E(ξ − t d) ≤ E(ξ) − c t ⟨∇E, d⟩ + ε_E, so every accepted step lowers the energy (in exact
  arithmetic; ε_E = 64 ulps of |E| is the rounding floor below which no computed energy can
  tell a decrease, e.g. near convergence in float32); a state whose step shrinks below
  resolution stays where it is.
- ``"ode"``: continuous time τ dξ/dt = −d(ξ), integrated with an adaptive Dormand–Prince 5(4)
  solver written in torch (stays on the device, differentiable); a step that raises any energy is
  rejected and retried with half the step, so the recorded energies are non-increasing.
- ``"auto"``: ``"update"`` when the energy has a closed-form update, else ``"armijo"``.

A batch of states ``[..., *event]`` descends together; each state converges on its own (its
residual, ‖update(ξ) − ξ‖ or ‖d(ξ)‖, at most ``tol·max(1, ‖ξ‖)``) and is then frozen; the loop ends
early when all have converged. With ``record=False`` no energy is computed inside the loop for
``update``/``gd`` and the all-converged test (a host sync) runs only every ``check_every`` steps;
``tol=0`` removes it entirely. Gradients flow through the unrolled steps (use it inside models).

Speed: for a plain callable, whether its gradient must stay differentiable (ξ, β or a tensor it
closes over requires grad) is decided once per call from one evaluation on one state; if not, each
step takes one ``torch.autograd.grad`` call. On CPU states, freed buffers are kept in the process
for reuse (:mod:`hopfieldkit._malloc`; ``HOPFIELDKIT_MALLOPT=0`` opts out). Energies built on
:func:`~hopfieldkit.lse_similarity` get its fused forward and one-product backward.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch._C._functorch import is_functorch_wrapped_tensor

from . import _malloc
from ._checks import check_beta, check_choice, check_positive, check_tensor, checks_enabled, unchecked
from .energy import Beta, Energy, EnergyFn, _autodiff, event_dims_of, has_update, needs_graph_probe

METHODS = ("auto", "update", "gd", "armijo", "ode")
_DEFAULT_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


@dataclass
class Descent:
    """Result of :func:`descend` (in the style of scipy's ``OptimizeResult``).

    Attributes:
        xi: final states, same shape as the input.
        energies: ``[steps + 1, ...]`` energy of every state after each step (row 0: the start);
            ``None`` with ``record=False``.
        trajectory: ``[steps + 1, ..., *event]`` states after each step, with ``trajectory=True``.
        converged: ``[...]`` bool mask, residual ≤ tol.
        steps: number of steps taken (loop iterations).
        state_steps: ``[...]`` steps each state took before it converged (or ``steps``).
        residual: ``[...]`` final residual norm (‖update(ξ) − ξ‖, or ‖d(ξ)‖ for gradient methods).
        method: the method that ran.
        times: for ``"ode"``, the time after each accepted step, ``[steps + 1]``.
        message: why the loop stopped.
    """

    xi: torch.Tensor
    energies: torch.Tensor | None
    trajectory: torch.Tensor | None
    converged: torch.Tensor
    steps: int
    state_steps: torch.Tensor
    residual: torch.Tensor
    method: str
    times: torch.Tensor | None = None
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def energy(self) -> torch.Tensor | None:
        """Final energy of every state, ``[...]`` (``None`` with ``record=False``)."""
        return None if self.energies is None else self.energies[-1]

    @property
    def success(self) -> bool:
        return bool(self.converged.all())

    def monotone(self, rtol: float | None = None, atol: float | None = None) -> bool:
        """True when no recorded energy rose: E[t+1] ≤ E[t] + atol + rtol·|E[t]| for all t, states.

        Default rtol = atol = 1000·eps of the dtype (2e-13 in float64, 1e-4 in float32): energies
        are sums of terms larger than E itself, so rounding moves them by more than an ulp of E.
        """
        if self.energies is None:
            raise ValueError("monotone() needs the energies: run descend with record=True")
        e = self.energies.detach()
        eps = torch.finfo(e.dtype).eps
        rtol = 1e3 * eps if rtol is None else rtol
        atol = 1e3 * eps if atol is None else atol
        rise = e[1:] - e[:-1]
        return bool((rise <= atol + rtol * e[:-1].abs()).all())

    def plot(self, ax=None, max_curves: int = 64):
        """Energy against step (time for ``"ode"``), one curve per state (at most ``max_curves``)."""
        if self.energies is None:
            raise ValueError("plot() needs the energies: run descend with record=True")
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3.2))[1]
        e = self.energies.detach().reshape(self.energies.shape[0], -1)[:, :max_curves].cpu()
        x = self.times.cpu() if self.times is not None else torch.arange(e.shape[0])
        ax.plot(x.numpy(), e.numpy(), color="tab:blue", alpha=0.5, lw=1)
        ax.set_xlabel("time" if self.times is not None else "step")
        ax.set_ylabel("energy")
        ax.set_title(f"{self.method}: {self.steps} steps, monotone={self.monotone()}")
        return ax

    def __repr__(self) -> str:
        e = "-" if self.energies is None else f"{float(self.energies[-1].detach().mean()):.6g} (mean)"
        return (f"Descent(method={self.method!r}, steps={self.steps}, converged="
                f"{int(self.converged.sum())}/{self.converged.numel()}, final energy={e}, "
                f"message={self.message!r})")


def _norm(t: torch.Tensor, event_dims: int) -> torch.Tensor:
    return t.flatten(t.dim() - event_dims).norm(dim=-1) if event_dims > 1 else t.norm(dim=-1)


def _expand(mask: torch.Tensor, event_dims: int) -> torch.Tensor:
    return mask.reshape(mask.shape + (1,) * event_dims)


def _call_energy(energy: EnergyFn, xi: torch.Tensor, beta: Beta, batch_shape: torch.Size) -> torch.Tensor:
    """First, checked call: a failure inside the user's energy becomes a clear error."""
    try:
        e = energy(xi, beta)
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # torch errors from a user callable
        raise ValueError(
            f"energy(xi, beta) failed for xi of shape {tuple(xi.shape)}, dtype {xi.dtype}, "
            f"device {xi.device}: {exc}") from exc
    if not isinstance(e, torch.Tensor):
        raise TypeError(f"energy must return a torch.Tensor, got {type(e).__name__}")
    if e.shape != batch_shape:
        raise ValueError(
            f"energy returned shape {tuple(e.shape)} for xi of shape {tuple(xi.shape)}; expected one "
            f"energy per state, shape {tuple(batch_shape)} (set energy.event_dims if a state has "
            f"more than one axis)")
    if checks_enabled() and not bool(torch.isfinite(e).all()):
        raise ValueError("energy is not finite at the initial states xi (check xi, beta and the patterns)")
    return e


def _first_state(xi: torch.Tensor, beta: Beta, event_dims: int) -> tuple[torch.Tensor, Beta]:
    """The first state of the batch (batch axes kept, of size 1) and its β."""
    one = xi[(slice(0, 1),) * (xi.dim() - event_dims)]
    b1 = beta[(slice(0, 1),) * beta.dim()] if isinstance(beta, torch.Tensor) and beta.dim() else beta
    return one, b1


def _grad_fns(energy: EnergyFn, xi: torch.Tensor, beta: Beta, event_dims: int):
    """(∂E/∂ξ, descent direction); the second is None unless the energy overrides it.

    For a plain callable, whether its gradients must stay differentiable is decided once here,
    by one run on a single state (:func:`needs_graph_probe`), not on every step."""
    if isinstance(energy, Energy):
        g = energy.grad
    else:
        one, b1 = _first_state(xi, beta, event_dims)
        needs = is_functorch_wrapped_tensor(xi) or needs_graph_probe(energy, one, b1)
        g = lambda x, b: _autodiff(energy, x, b, needs)  # noqa: E731
    own = getattr(type(energy), "descent_direction", None)
    if own is not None and own is not Energy.descent_direction:
        return g, energy.descent_direction
    return g, None


def descend(
    energy: EnergyFn,
    xi: torch.Tensor,
    beta: Beta,
    *,
    method: str = "auto",
    steps: int = 100,
    step_size: float | None = None,
    tol: float | None = None,
    record: bool = True,
    trajectory: bool = False,
    tau: float = 1.0,
    check_every: int | None = None,
    progress: bool = False,
    options: dict[str, float] | None = None,
) -> Descent:
    """Descend ``energy`` from the states ``xi``; returns a :class:`Descent`.

    Args:
        energy: callable ``energy(xi, beta) -> [...]`` (see :mod:`hopfieldkit.energy`).
        xi: ``[..., *event]`` initial states (float32 or float64, any device).
        beta: inverse temperature β > 0 (float, or a tensor broadcasting over the batch); ``None``
            passes through to energies that have a default (e.g. the ET energy's 1/√Y).
        method: ``"auto" | "update" | "gd" | "armijo" | "ode"`` (module docstring).
        steps: maximum number of steps (accepted steps for ``"ode"``).
        step_size: η for ``"gd"`` (default 0.1); first and largest trial step for ``"armijo"``
            (default 1.0); initial dt for ``"ode"`` (default 0.1).
        tol: convergence tolerance on the residual, relative to max(1, ‖ξ‖); default 1e-5 in
            float32, 1e-10 in float64. ``0`` disables early stopping.
        record: keep the energy after every step (``energies``).
        trajectory: also keep every state (memory grows with steps × batch × state size).
        tau: time constant of ``"ode"`` (τ dξ/dt = −d).
        check_every: steps between all-converged tests (host syncs); default 1 with
            ``record=True``, 16 without.
        progress: show a tqdm progress bar.
        options: ``"armijo"``: ``c`` (1e-4), ``shrink`` (0.5), ``max_backtracks`` (40);
            ``"ode"``: ``rtol`` (1e-6), ``atol`` (1e-8), ``t_max`` (inf).
    """
    if not callable(energy):
        raise TypeError(f"energy must be callable as energy(xi, beta), got {type(energy).__name__}")
    event_dims = event_dims_of(energy)
    check_tensor("xi", xi, min_dim=event_dims)
    if beta is not None:  # None: the energy's own default (e.g. the ET energy's 1/√Y)
        beta = check_beta(beta, ref=xi)
    method = check_choice("method", method, METHODS)
    check_positive("steps", steps, allow_zero=True, integer=True)
    if step_size is not None:
        check_positive("step_size", step_size)
    if tol is not None:
        check_positive("tol", tol, allow_zero=True)
    check_positive("tau", tau)
    if check_every is not None:
        check_positive("check_every", check_every, integer=True)
    options = dict(options or {})
    if xi.device.type == "cpu":
        _malloc.retain_freed_memory()   # freed buffers stay for reuse: no page faults per step

    if method == "auto":
        method = "update" if has_update(energy) else "armijo"
    if method == "update" and not has_update(energy):
        raise ValueError(f"method='update' needs an energy with a closed-form update; "
                         f"{type(energy).__name__} has none (use 'armijo', 'gd' or 'ode')")
    batch_shape = xi.shape[: xi.dim() - event_dims]
    if record or method in ("armijo", "ode"):
        e0 = _call_energy(energy, xi, beta, batch_shape)
    elif method == "update":  # the energy is never evaluated: the first update's output is checked
        e0 = None
    else:  # validate the energy on one state only: record=False runs pay no extra evaluation
        one, b1 = _first_state(xi, beta, event_dims)
        _call_energy(energy, one, b1, one.shape[: one.dim() - event_dims])
        e0 = None
    if tol is None:
        tol = _DEFAULT_TOL.get(xi.dtype, 1e-3)
    if check_every is None:
        check_every = 1 if record else 16

    run = {"update": _run_update, "gd": _run_gd, "armijo": _run_armijo, "ode": _run_ode}[method]
    with unchecked():
        return run(energy, xi, beta, e0, steps=steps, step_size=step_size, tol=tol, record=record,
                   keep_traj=trajectory, tau=tau, check_every=check_every, progress=progress,
                   event_dims=event_dims, options=options)


# ----------------------------------------------------------------------------------------------
# Shared loop bookkeeping
# ----------------------------------------------------------------------------------------------
class _Log:
    def __init__(self, xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every):
        self.record, self.keep_traj, self.event_dims = record, keep_traj, event_dims
        self.energies = [e0] if record else None
        self.traj = [xi] if keep_traj else None
        self.tol, self.check_every = tol, check_every
        batch = xi.shape[: xi.dim() - event_dims]
        self.converged = torch.zeros(batch, dtype=torch.bool, device=xi.device)
        self.state_steps = torch.zeros(batch, dtype=torch.long, device=xi.device)
        self.residual = torch.full(batch, float("inf"), dtype=xi.dtype, device=xi.device)
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=steps, desc="descend", leave=False)

    def done(self, x: torch.Tensor, residual: torch.Tensor, step: int) -> bool:
        """Record the residual; returns True when every state has converged (tested every k steps)."""
        self.residual = torch.where(self.converged, self.residual, residual.detach())
        self.state_steps = torch.where(self.converged, self.state_steps, self.state_steps + 1)
        if self.tol > 0:
            scale = _norm(x.detach(), self.event_dims).clamp_min(1.0)
            self.converged = self.converged | (residual.detach() <= self.tol * scale)
        if self.bar is not None:
            self.bar.update(1)
        if self.tol > 0 and step % self.check_every == 0:
            return bool(self.converged.all())
        return False

    def push(self, x: torch.Tensor, e: torch.Tensor | None) -> None:
        if self.record:
            self.energies.append(e)
        if self.keep_traj:
            self.traj.append(x)

    def result(self, x, method, steps, message, times=None, info=None) -> Descent:
        if self.bar is not None:
            self.bar.close()
        return Descent(
            xi=x,
            energies=torch.stack(self.energies) if self.record else None,
            trajectory=torch.stack(self.traj) if self.keep_traj else None,
            converged=self.converged,
            steps=steps,
            state_steps=self.state_steps,
            residual=self.residual,
            method=method,
            times=times,
            message=message,
            info=info or {},
        )


def _freeze(x_new: torch.Tensor, x: torch.Tensor, frozen: torch.Tensor, event_dims: int) -> torch.Tensor:
    return torch.where(_expand(frozen, event_dims), x, x_new)


# ----------------------------------------------------------------------------------------------
# update / gd
# ----------------------------------------------------------------------------------------------
def _run_fixed_map(step_fn, energy, xi, beta, e0, *, method, steps, tol, record, keep_traj,
                   check_every, progress, event_dims) -> Descent:
    log = _Log(xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every)
    x, taken, message = xi, 0, f"reached steps={steps}"
    if tol == 0 and not record and not keep_traj and log.bar is None:
        # lean path (no convergence test, nothing recorded): the bare map, residual at the end
        for _ in range(steps - 1):
            x = step_fn(x, False)[0]
        if steps:
            x, log.residual = step_fn(x, True)
            log.state_steps += steps
        return log.result(x, method, steps, message)
    for t in range(1, steps + 1):
        x_new, residual = step_fn(x, True)
        x = _freeze(x_new, x, log.converged, event_dims)
        taken = t
        log.push(x, energy(x, beta) if record else None)
        if log.done(x, residual, t):
            message = "all states converged"
            break
    return log.result(x, method, taken, message)


def _run_update(energy, xi, beta, e0, *, step_size, tau, options, **kw) -> Descent:
    ed = kw["event_dims"]
    first = [True]

    def step(x, residual):
        new = energy.update(x, beta)
        if first[0]:
            first[0] = False
            if not isinstance(new, torch.Tensor) or new.shape != x.shape or new.dtype != x.dtype:
                got = (f"shape {tuple(new.shape)}, dtype {new.dtype}" if isinstance(new, torch.Tensor)
                       else type(new).__name__)
                raise ValueError(f"{type(energy).__name__}.update(xi, beta) must return a tensor like xi "
                                 f"(shape {tuple(x.shape)}, dtype {x.dtype}); got {got}")
        return new, (_norm(new - x, ed).detach() if residual else None)

    return _run_fixed_map(step, energy, xi, beta, e0, method="update", **kw)


def _run_gd(energy, xi, beta, e0, *, step_size, tau, options, **kw) -> Descent:
    ed = kw["event_dims"]
    eta = 0.1 if step_size is None else step_size
    g_fn, d_fn = _grad_fns(energy, xi, beta, ed)
    d_fn = d_fn or g_fn

    def step(x, residual):
        d = d_fn(x, beta)
        return torch.add(x, d, alpha=-eta), (_norm(d, ed).detach() if residual else None)  # no η·d temporary

    return _run_fixed_map(step, energy, xi, beta, e0, method="gd", **kw)


# ----------------------------------------------------------------------------------------------
# armijo
# ----------------------------------------------------------------------------------------------
def _run_armijo(energy, xi, beta, e0, *, steps, step_size, tol, record, keep_traj, tau,
                check_every, progress, event_dims, options) -> Descent:
    c = float(options.pop("c", 1e-4))
    shrink = float(options.pop("shrink", 0.5))
    max_bt = int(options.pop("max_backtracks", 40))
    if options:
        raise ValueError(f"unknown options for method='armijo': {sorted(options)}")
    if not (0 < c < 1 and 0 < shrink < 1 and max_bt >= 1):
        raise ValueError("armijo options need 0 < c < 1, 0 < shrink < 1, max_backtracks >= 1")
    t_max = 1.0 if step_size is None else float(step_size)
    g_fn, d_fn = _grad_fns(energy, xi, beta, event_dims)

    log = _Log(xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every)
    x, e = xi, e0
    ulp = 64 * torch.finfo(xi.dtype).eps
    t_state = torch.full(e0.shape, t_max, dtype=xi.dtype, device=xi.device)
    stalled = torch.zeros_like(log.converged)
    taken, message, backtracks = 0, f"reached steps={steps}", 0
    for it in range(1, steps + 1):
        g = g_fn(x, beta)
        if d_fn is None:
            d = g
            slope = (g * g).flatten(g.dim() - event_dims).sum(-1)
            residual = slope.sqrt()
        else:
            d = d_fn(x, beta)
            slope = (g * d).flatten(g.dim() - event_dims).sum(-1)
            residual = _norm(d, event_dims)
        active = ~(log.converged | stalled)
        floor = ulp * e.detach().abs()
        t_try = torch.clamp(t_state * 2.0, max=t_max)
        accepted = torch.zeros_like(active)
        x_next, e_next = x, e
        for _ in range(max_bt):
            cand = x - _expand(t_try, event_dims) * d
            e_c = energy(cand, beta)
            ok = active & ~accepted & torch.isfinite(e_c) & (e_c <= e - c * t_try * slope + floor)
            x_next = torch.where(_expand(ok, event_dims), cand, x_next)
            e_next = torch.where(ok, e_c, e_next)
            t_state = torch.where(ok, t_try, t_state)
            accepted = accepted | ok
            pending = active & ~accepted
            backtracks += 1
            if not bool(pending.any()):
                break
            t_try = torch.where(pending, t_try * shrink, t_try)
        stalled = stalled | (active & ~accepted)
        x, e = x_next, e_next
        taken = it
        log.push(x, e if record else None)
        finished = log.done(x, residual, it)
        if finished:
            message = "all states converged"
            break
        if bool((log.converged | stalled).all()):
            message = "no further decrease possible (step below resolution) for the remaining states"
            break
    return log.result(x, "armijo", taken, message,
                      info={"step_size": t_state, "stalled": stalled, "energy_evaluations": backtracks})


# ----------------------------------------------------------------------------------------------
# ode: adaptive Dormand–Prince 5(4)
# ----------------------------------------------------------------------------------------------
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


def _run_ode(energy, xi, beta, e0, *, steps, step_size, tol, record, keep_traj, tau,
             check_every, progress, event_dims, options) -> Descent:
    rtol = float(options.pop("rtol", 1e-6))
    atol = float(options.pop("atol", 1e-8))
    t_end = float(options.pop("t_max", float("inf")))
    max_rejects = int(options.pop("max_rejects", 50))
    if options:
        raise ValueError(f"unknown options for method='ode': {sorted(options)}")
    g_fn, d_fn = _grad_fns(energy, xi, beta, event_dims)
    d_fn = d_fn or g_fn

    def rhs(x):
        return -d_fn(x, beta) / tau

    log = _Log(xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every)
    x, e = xi, e0
    h = 0.1 if step_size is None else float(step_size)
    t_now, times = 0.0, [0.0]
    k1 = rhs(x)
    eps = torch.finfo(xi.dtype).eps
    taken, rejects, message = 0, 0, f"reached steps={steps}"
    while taken < steps and t_now < t_end:
        h = min(h, t_end - t_now)
        frozen = _expand(log.converged, event_dims)
        ks = [k1]
        for row in _DP_A[1:]:
            xs = x + h * sum(a * k for a, k in zip(row, ks) if a != 0.0)
            ks.append(rhs(xs))
        x5 = x + h * sum(b * k for b, k in zip(_DP_B5, ks) if b != 0.0)
        err = h * sum((b5 - b4) * k for b5, b4, k in zip(_DP_B5, _DP_B4, ks) if b5 != b4)
        scale = atol + rtol * torch.maximum(x.abs(), x5.abs())
        ratio = (err / scale).detach().masked_fill(frozen, 0.0)
        err_norm = float(ratio.pow(2).flatten(x.dim() - event_dims).mean(-1).sqrt().max()) if ratio.numel() else 0.0
        x5 = torch.where(frozen, x, x5)
        e5 = energy(x5, beta)
        rose = bool((e5 > e + 8 * eps * e.abs().clamp_min(1.0)).any()) or not bool(torch.isfinite(e5).all())
        if err_norm > 1.0 or rose:
            rejects += 1
            if rejects > max_rejects:
                message = "step size underflow: too many rejected steps in a row"
                break
            h *= 0.5 if rose else max(0.2, 0.9 * err_norm ** -0.2)
            continue
        rejects = 0
        t_now += h
        taken += 1
        x, e, k1 = x5, e5, ks[-1]
        times.append(t_now)
        log.push(x, e if record else None)
        if log.done(x, _norm(k1 * tau, event_dims), taken):
            message = "all states converged"
            break
        h *= min(5.0, max(0.2, 0.9 * (err_norm if err_norm > 0 else 1e-10) ** -0.2))
    if t_now >= t_end and message.startswith("reached"):
        message = f"reached t_max={t_end}"
    return log.result(x, "ode", taken, message,
                      times=torch.tensor(times, dtype=xi.dtype, device=xi.device))
