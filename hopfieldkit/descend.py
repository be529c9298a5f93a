"""Energy descent: ``descend(energy, xi, beta) -> Descent``, the one entry point.

Methods (``method=``):

- ``"update"``: iterate the energy's closed-form fixed-point map, ξ ← update(ξ) (CCCP for the
  Hopfield energy: E never increases, [R] Thm A1).
- ``"gd"``: ξ ← ξ − η d(ξ), with d the energy's ``descent_direction`` (∂E/∂ξ by torch.func
  autodiff; ∂E/∂g for Lagrangian energies). Monotone for η ≤ 2/L (L bounds the Hessian's largest
  eigenvalue); an energy that knows its L (``gd_step_limit()``: 2 for the Hopfield energy, whose
  Hessian is ⪯ I) makes a larger η warn.
- ``"armijo"``: gradient descent with a per-state backtracking line search (:mod:`._methods`): a
  step is taken only if it lowers the energy by the Armijo condition, or, where the two energies
  differ by less than the energy's rounding resolution, if the gradient at the new state shows a
  decrease (the approximate Wolfe condition of Hager and Zhang). The resolution is measured at the
  start, so a constant added to an energy changes neither the steps taken nor the end points.
- ``"ode"``: continuous time τ dξ/dt = −d(ξ), integrated with an adaptive Dormand–Prince 5(4)
  solver written in torch (stays on the device, differentiable). Each state has its own step size
  and time: a step that fails the error test or raises that state's energy (tested as above) is
  retried with a smaller step for that state alone.
- ``"async"``, ``"sync"``, ``"glauber"``: binary dynamics on ±1 states (:mod:`._binary`) for
  :class:`~hopfieldkit.PairwiseEnergy` and the binary :class:`~hopfieldkit.DenseAMEnergy`: one
  step is one sweep over all neurons; asynchronous sweeps (sequential or random order) never raise
  E; synchronous ones end in a fixed point or a reported 2-cycle; Glauber sweeps sample at a
  temperature (``options={"temperature": T}``).
- ``"auto"``: ``"update"`` when the energy has a closed-form update, else ``"armijo"``.

A batch of states ``[..., *event]`` descends together; each state converges on its own (its
residual, ‖update(ξ) − ξ‖ or ‖d(ξ)‖, at most ``tol·max(1, ‖ξ‖)``) and is then frozen; the loop
ends early when every state has converged or diverged. A state *diverges* when its state, residual
or energy stops being finite, or its energy falls to −∞ (unbounded below): it is frozen at its last
finite value, flagged in ``Descent.diverged`` and never counted as converged.

States need not be independent: an energy may close over one memory per sample (``[B, N, d]``).
descend validates the energy on the whole batch, with no extra evaluation where it can: with
``record=False``, ``update`` and ``gd`` check the first output of the update or gradient instead.
Gradients flow through the unrolled steps (use it inside models).

Speed: for a plain callable, whether its gradient must stay differentiable (ξ, β or a tensor it
closes over requires grad) is decided once per call, on the first step (:mod:`hopfieldkit._fast`);
if not, each step takes one graph-free ``torch.autograd.grad`` call. Energies built on
:func:`~hopfieldkit.lse_similarity` get its fused forward and one-product backward.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from . import _binary
from ._checks import check_beta, check_choice, check_positive, check_tensor, unchecked
from .energy import EnergyFn, event_dims_of, has_update

METHODS = ("auto", "update", "gd", "armijo", "ode", "async", "sync", "glauber")
DEFAULT_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}

# options= keys each method takes, with their defaults
OPTIONS = {
    "update": {},
    "gd": {},
    "armijo": {"c": 1e-4, "shrink": 0.5, "max_backtracks": 40},
    "ode": {"rtol": None, "atol": None, "t_max": float("inf"), "max_rejects": 50},
    "async": {"order": "sequential", "generator": None},
    "sync": {},
    "glauber": {"temperature": None, "order": "random", "generator": None},
}


class StepSizeWarning(UserWarning):
    """``gd`` was asked for a step size above the limit the energy guarantees descent for."""


@dataclass
class Descent:
    """Result of :func:`descend` (in the style of scipy's ``OptimizeResult``).

    Attributes:
        xi: final states, same shape as the input.
        energies: ``[steps + 1, ...]`` energy of every state after each step (row 0: the start);
            ``None`` with ``record=False``.
        trajectory: ``[steps + 1, ..., *event]`` states after each step, with ``trajectory=True``.
        converged: ``[...]`` bool, residual ≤ tol·max(1, ‖ξ‖) (never for a diverged state).
        diverged: ``[...]`` bool, the state, its residual or its energy stopped being finite, or
            the energy fell to −∞; such a state is frozen at its last finite value.
        steps: number of steps taken (loop iterations).
        state_steps: ``[...]`` steps each state took before it converged, diverged or stopped.
        residual: ``[...]`` final residual norm (‖update(ξ) − ξ‖, or ‖d(ξ)‖ for gradient methods).
        method: the method that ran.
        times: for ``"ode"``, each state's time after each step, ``[steps + 1, ...]``.
        message: why the loop stopped.
        info: per method: ``"armijo"``: ``step_size``, ``stalled``, ``energy_evaluations``,
            ``energy_resolution`` (zeros where it was never needed), ``nonfinite_trials``;
            ``"ode"``: ``step_size``, ``underflow``, ``rejected``, ``energy_resolution``,
            ``rtol``, ``atol``.
    """

    xi: torch.Tensor
    energies: torch.Tensor | None
    trajectory: torch.Tensor | None
    converged: torch.Tensor
    diverged: torch.Tensor
    steps: int
    state_steps: torch.Tensor
    residual: torch.Tensor
    method: str
    times: torch.Tensor | None = None
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    # A lean run (``update``, ``tol=0``, nothing recorded) judges its states only when asked: these
    # attributes are computed by one call of ``judge`` when any of them is first read.
    _DEFERRED = ("converged", "diverged", "state_steps", "residual", "message")

    @classmethod
    def deferred(cls, judge, **now) -> "Descent":
        """A Descent whose :data:`_DEFERRED` attributes ``judge()`` (a dict of them) computes on first read."""
        obj = cls.__new__(cls)
        obj.__dict__.update(times=None, info={}, **now, _judge=judge)
        return obj

    def __getattr__(self, name: str):
        # reached only for an attribute not set: a deferred one of a lean run's result
        judge = self.__dict__.get("_judge")
        if judge is None or name not in Descent._DEFERRED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__.update(judge())
        del self.__dict__["_judge"]
        return self.__dict__[name]

    def __getstate__(self) -> dict:
        if "_judge" in self.__dict__:     # a pickle or copy holds the judged values, not the closure
            self.residual
        return self.__dict__

    @property
    def energy(self) -> torch.Tensor | None:
        """Final energy of every state, ``[...]`` (``None`` with ``record=False``)."""
        return None if self.energies is None else self.energies[-1]

    @property
    def success(self) -> bool:
        """Every state converged."""
        return bool(self.converged.all())

    def monotone(self, rtol: float | None = None, atol: float | None = None) -> bool:
        """True when no recorded energy rose: E[t+1] ≤ E[t] + atol + rtol·|E[t]| (+ the energy's
        measured rounding resolution, where the method measured it) for all t and states.

        Default rtol = atol = 1000·eps of the dtype (2e-13 in float64, 1e-4 in float32): energies
        are sums of terms larger than E itself, so rounding moves them by more than an ulp of E.
        """
        if self.energies is None:
            raise ValueError("monotone() needs the energies: run descend with record=True")
        e = self.energies.detach()
        eps = torch.finfo(e.dtype).eps
        rtol = 1e3 * eps if rtol is None else rtol
        atol = 1e3 * eps if atol is None else atol
        slack = atol + rtol * e[:-1].abs()
        res = self.info.get("energy_resolution")
        if res is not None:
            slack = slack + res.detach()
        return bool((e[1:] - e[:-1] <= slack).all())

    def plot(self, ax=None, max_curves: int = 64):
        """Energy against step (time for ``"ode"``), one curve per state (at most ``max_curves``)."""
        if self.energies is None:
            raise ValueError("plot() needs the energies: run descend with record=True")
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3.2))[1]
        rows = self.energies.shape[0]
        e = self.energies.detach().reshape(rows, -1)[:, :max_curves].cpu()
        if self.times is not None:
            x = self.times.detach().reshape(rows, -1)[:, :max_curves].cpu()
        else:
            x = torch.arange(rows).unsqueeze(-1).expand_as(e)
        ax.plot(x.numpy(), e.numpy(), color="tab:blue", alpha=0.5, lw=1)
        ax.set_xlabel("time" if self.times is not None else "step")
        ax.set_ylabel("energy")
        ax.set_title(f"{self.method}: {self.steps} steps, monotone={self.monotone()}")
        return ax

    def __repr__(self) -> str:
        e = "-" if self.energies is None else f"{float(self.energies[-1].detach().mean()):.6g} (mean)"
        div = int(self.diverged.sum())
        return (f"Descent(method={self.method!r}, steps={self.steps}, converged="
                f"{int(self.converged.sum())}/{self.converged.numel()}"
                + (f", diverged={div}" if div else "")
                + f", final energy={e}, message={self.message!r})")


def descend(
    energy: EnergyFn,
    xi: torch.Tensor,
    beta,
    *,
    method: str = "auto",
    steps: int = 100,
    step_size: float | None = None,
    tol: float | None = None,
    record: bool = True,
    trajectory: bool = False,
    tau: float | None = None,
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
        steps: maximum number of steps.
        step_size: ``"gd"``: η (default 0.1); ``"armijo"``: first and largest trial step
            (default 1.0); ``"ode"``: initial dt (default 0.1). Not for ``"update"``.
        tol: convergence tolerance on the residual, relative to max(1, ‖ξ‖); default 1e-5 in
            float32, 1e-10 in float64. ``0`` disables early stopping.
        record: keep the energy after every step (``energies``).
        trajectory: also keep every state (memory grows with steps × batch × state size).
        tau: time constant of ``"ode"`` (τ dξ/dt = −d; default 1). Only for ``"ode"``.
        check_every: steps between all-converged tests (host syncs); default 1 with
            ``record=True``, 16 without.
        progress: show a tqdm progress bar.
        options: ``"async"``: ``order`` (``"sequential"`` or ``"random"``), ``generator`` (a
            ``torch.Generator`` for the random orders); ``"glauber"``: ``temperature`` (required),
            ``order`` (default ``"random"``), ``generator``;
            ``"armijo"``: ``c`` (1e-4), ``shrink`` (0.5), ``max_backtracks`` (40);
            ``"ode"``: ``rtol`` (default 10·tol) and ``atol`` (default tol/10), so the solver's
            error control lets the residual reach tol; ``t_max`` (inf), ``max_rejects`` (50
            rejected tries in a row before a state's step counts as underflowed).

    An option that the chosen method does not take is an error, for every method.
    """
    if not callable(energy):
        raise TypeError(f"energy must be callable as energy(xi, beta), got {type(energy).__name__}")
    event_dims = event_dims_of(energy)
    check_tensor("xi", xi, min_dim=event_dims)
    if beta is not None:  # None: the energy's own default (e.g. the ET energy's 1/√Y)
        beta = check_beta(beta, ref=xi)
    check_choice("method", method, METHODS)
    check_positive("steps", steps, allow_zero=True, integer=True)
    for name, v in (("step_size", step_size), ("tau", tau)):
        if v is not None:
            check_positive(name, v)
    if tol is not None:
        check_positive("tol", tol, allow_zero=True)
    if check_every is not None:
        check_positive("check_every", check_every, integer=True)
    for name, v in (("record", record), ("trajectory", trajectory), ("progress", progress)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} must be True or False, got {v!r}")

    chosen = method
    if method == "auto":
        method = "update" if has_update(energy) else "armijo"
    if method == "update" and not has_update(energy):
        raise ValueError(f"method='update' needs an energy with a closed-form update; "
                         f"{type(energy).__name__} has none (use 'armijo', 'gd' or 'ode')")
    opts = _method_options(method, chosen, options, step_size, tau)
    if tol is None:
        tol = DEFAULT_TOL.get(xi.dtype, 1e-3)
    if check_every is None:
        check_every = 1 if record else 16
    if method == "gd":
        _warn_unstable_step(energy, 0.1 if step_size is None else step_size)

    from . import _methods

    batch_shape = xi.shape[: xi.dim() - event_dims]
    if method in _binary.BINARY_METHODS:
        _binary.check_binary_energy(energy, method, xi)
        e0 = _methods.call_energy(energy, xi, beta, batch_shape) if record else None
        with unchecked():
            return _binary.run_binary(energy, xi, beta, e0, method=method, steps=steps, record=record,
                                      keep_traj=trajectory, progress=progress, options=opts)
    e0 = None
    if record or method in ("armijo", "ode"):
        e0 = _methods.call_energy(energy, xi, beta, batch_shape)
    run = {"update": _methods.run_update, "gd": _methods.run_gd,
           "armijo": _methods.run_armijo, "ode": _methods.run_ode}[method]
    with unchecked():
        return run(energy, xi, beta, e0, steps=steps, step_size=step_size, tol=tol, record=record,
                   keep_traj=trajectory, tau=1.0 if tau is None else float(tau), check_every=check_every,
                   progress=progress, event_dims=event_dims, options=opts)


def _method_options(method: str, chosen: str, options, step_size, tau) -> dict:
    """The options of ``method`` with defaults filled in; anything it does not take is an error."""
    via = f"method={method!r}" + (f" (chosen by method={chosen!r})" if chosen != method else "")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    given = dict(options or {})
    unknown = sorted(set(given) - set(OPTIONS[method]))
    if unknown:
        takes = sorted(OPTIONS[method]) or "none"
        raise ValueError(f"options {unknown} do not apply to {via}; it takes {takes}")
    if step_size is not None and method in ("update",) + _binary.BINARY_METHODS:
        raise ValueError(f"step_size does not apply to {via} (a closed-form update or a sweep has no step)")
    if tau is not None and method != "ode":
        raise ValueError(f"tau does not apply to {via}; it is the time constant of method='ode'")
    out = {**OPTIONS[method], **given}
    for k, v in given.items():
        if k == "order":
            check_choice(f"options['{k}']", v, ("sequential", "random"))
        elif k == "generator":
            if v is not None and not isinstance(v, torch.Generator):
                raise TypeError(f"options['generator'] must be a torch.Generator or None, got {type(v).__name__}")
        elif k == "max_rejects":
            check_positive(f"options['{k}']", v, integer=True)
        elif k == "t_max":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"options['t_max'] must be a positive number, got {v!r}")
        else:
            check_positive(f"options['{k}']", v)
    if method == "armijo" and not (0 < out["c"] < 0.5 and 0 < out["shrink"] < 1 and out["max_backtracks"] >= 1):
        raise ValueError("armijo options need 0 < c < 0.5, 0 < shrink < 1, max_backtracks >= 1; got "
                         f"c={out['c']}, shrink={out['shrink']}, max_backtracks={out['max_backtracks']}")
    if method == "armijo":
        out["max_backtracks"] = int(out["max_backtracks"])
    if method == "glauber" and out["temperature"] is None:
        raise ValueError("method='glauber' needs options={'temperature': T} (T > 0)")
    return out


def _warn_unstable_step(energy, eta: float) -> None:
    limit = getattr(energy, "gd_step_limit", None)
    limit = limit() if callable(limit) else None
    if limit is not None and eta > limit:
        warnings.warn(f"gd step_size={eta} is above {limit:g}, the largest step for which "
                      f"{type(energy).__name__} guarantees that the energy does not rise; the "
                      f"descent may oscillate or diverge (use step_size <= {limit:g} or method='armijo')",
                      StepSizeWarning, stacklevel=3)
