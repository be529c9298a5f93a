"""The loops behind :func:`hopfieldkit.descend`, one function per method, and their bookkeeping.

Per state, each loop keeps: converged (residual ≤ tol·max(1, ‖ξ‖)), diverged (state, residual or
energy not finite, or the energy at −∞), and for the line search and the ODE solver a step size
of its own. A converged or diverged state is frozen. Nothing here assumes the states of a batch
are independent: every energy call sees the whole batch.

Deciding whether an energy rose. Near convergence a step lowers the energy by less than the
rounding error of its evaluation, so comparing two computed energies decides nothing: a test with
a fixed floor (a few ulps of |E|) rejects good steps where E is a difference of large terms (the
Hopfield energy at small β: −lse + β⁻¹ log N, two terms of size β⁻¹ log N), and depends on any
constant added to E. :func:`energy_resolution` measures, per state, how far a computed energy
departs from its first-order prediction E(ξ) + ∇Eᵀδ over a few perturbations δ of about 1000
ulps (far too small for curvature to show): that is the evaluation's rounding noise. Where two
energies differ by less than it, the gradient decides instead: the line search takes the
approximate Wolfe condition of Hager and Zhang, ⟨∇E(ξ'), d⟩ ≥ −(1 − 2δ)⟨∇E(ξ), d⟩ (equivalently, the
trapezoid estimate of the change along the step is a decrease of at least δ times the linear
prediction), and the ODE solver the trapezoid estimate ½⟨∇E(ξ) + ∇E(ξ'), ξ' − ξ⟩ ≤ 0.
"""
from __future__ import annotations

import torch
from torch._C._functorch import is_functorch_wrapped_tensor
from torch.func import grad as func_grad

from . import _fast
from ._checks import checks_enabled
from .energy import Energy, _autodiff, _has_closed_grad

WOLFE_DELTA = 0.1


def _norm(t: torch.Tensor, event_dims: int) -> torch.Tensor:
    return t.flatten(t.dim() - event_dims).norm(dim=-1) if event_dims > 1 else t.norm(dim=-1)


def _dot(a: torch.Tensor, b: torch.Tensor, event_dims: int) -> torch.Tensor:
    return (a * b).flatten(a.dim() - event_dims).sum(-1)


def _finite(t: torch.Tensor, event_dims: int) -> torch.Tensor:
    """Per state: every entry finite. Read as the finiteness of Σ 2⁻⁶⁴·t: ±inf and NaN survive the
    scaling and the sum, while finite entries (scaled far below the overflow) cannot add up to inf
    for fewer than 2⁶⁴ entries; one fused pass, against three for ``isfinite(t).all(-1)``."""
    flat = t.flatten(t.dim() - event_dims) if event_dims > 1 else t
    return torch.isfinite((flat * 2.0 ** -64).sum(-1))


def _expand(mask: torch.Tensor, event_dims: int) -> torch.Tensor:
    return mask.reshape(mask.shape + (1,) * event_dims)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor, event_dims: int) -> torch.Tensor:
    return torch.where(_expand(mask, event_dims), a, b)


def check_energy_value(e: object, xi: torch.Tensor, batch_shape: torch.Size, where: str = "at the initial states xi") -> torch.Tensor:
    """An energy's output: a tensor, one value per state, finite."""
    if not isinstance(e, torch.Tensor):
        raise TypeError(f"energy must return a torch.Tensor, got {type(e).__name__}")
    if e.shape != batch_shape:
        raise ValueError(
            f"energy returned shape {tuple(e.shape)} for xi of shape {tuple(xi.shape)}; expected one "
            f"energy per state, shape {tuple(batch_shape)} (set energy.event_dims if a state has "
            f"more than one axis)")
    if not e.is_floating_point():
        raise TypeError(f"energy must return a floating tensor, got dtype {e.dtype}")
    if checks_enabled() and not is_functorch_wrapped_tensor(e) and not bool(torch.isfinite(e).all()):
        raise ValueError(f"energy is not finite {where} (check xi, beta and the patterns)")
    return e


def call_energy(energy, xi: torch.Tensor, beta, batch_shape: torch.Size,
                where: str = "at the initial states xi") -> torch.Tensor:
    """A checked call on the whole batch: a failure inside the user's energy becomes a clear error."""
    try:
        e = energy(xi, beta)
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # torch errors from a user callable
        raise ValueError(f"energy(xi, beta) failed for xi of shape {tuple(xi.shape)}, dtype {xi.dtype}, "
                         f"device {xi.device}: {exc}") from exc
    return check_energy_value(e, xi, batch_shape, where)


def autocast_to_state(out: object, x: torch.Tensor) -> object:
    """Under ``torch.autocast`` an energy's products come back in the autocast dtype (bfloat16, say);
    the iterate keeps ξ's dtype, as mixed precision keeps its master values, so the cast is undone
    here. Any other dtype change is left for :func:`check_like_state` to refuse."""
    if (isinstance(out, torch.Tensor) and out.dtype != x.dtype and torch.is_autocast_enabled(x.device.type)
            and out.dtype == torch.get_autocast_dtype(x.device.type)):
        return out.to(x.dtype)
    return out


def check_like_state(energy, name: str, out: object, x: torch.Tensor) -> None:
    """``energy.<name>(xi, beta)`` (an update, gradient or direction) returned a tensor like xi."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype:
        got = f"shape {tuple(out.shape)}, dtype {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{type(energy).__name__}.{name}(xi, beta) must return a tensor like xi "
                         f"(shape {tuple(x.shape)}, dtype {x.dtype}); got {got}")


def rounding_floor(e: torch.Tensor, resolution: torch.Tensor | None = None) -> torch.Tensor:
    """The least a computed energy can be trusted to: 64 ulps of |E|, or the measured resolution."""
    floor = 64 * torch.finfo(e.dtype).eps * e.detach().abs()
    return floor if resolution is None else torch.maximum(resolution, floor)


# ----------------------------------------------------------------------------------------------
# Gradients: the first call validates and decides once whether a graph must be kept
# ----------------------------------------------------------------------------------------------
def _not_differentiable(energy) -> ValueError:
    return ValueError(
        f"energy(xi, beta) ({type(energy).__name__}) is not differentiable with respect to xi: its value "
        f"has no autograd graph back to xi (an integer cast, .detach(), .item() or a NumPy round trip "
        f"inside the energy cuts it). The gradient methods need ∂E/∂ξ; method='update' needs none.")


class Gradients:
    """∂E/∂ξ (``g``) and the descent direction (``d``) of an energy, as descend's loops use them.

    For energies differentiated by autodiff (plain callables, and :class:`Energy` modules without
    a closed-form gradient), the first call evaluates the energy on the whole batch with a graph:
    it checks the value's shape, that the value depends on ξ, and whether the graph reaches another
    tensor that requires grad (then later gradients keep a graph, by torch.func; else each is one
    graph-free ``torch.autograd.grad`` call). Closed-form gradients and directions have their
    first output's shape checked."""

    def __init__(self, energy, xi: torch.Tensor, event_dims: int):
        self.energy, self.event_dims = energy, event_dims
        self.batch_shape = xi.shape[: xi.dim() - event_dims]
        self.closed = isinstance(energy, Energy) and _has_closed_grad(energy)
        own = getattr(type(energy), "descent_direction", None)
        self.own_direction = own is not None and own is not Energy.descent_direction
        self.needs: bool | None = None
        self._checked = {"g": False, "d": False}

    def g(self, x: torch.Tensor, beta) -> torch.Tensor:
        if self.closed:
            return self._check("g", self.energy.grad(x, beta), x, "grad")
        if self.needs is None:
            return self._first(x, beta)
        return _autodiff(self.energy, x, beta, self.needs)

    def d(self, x: torch.Tensor, beta, g: torch.Tensor | None = None) -> torch.Tensor:
        """The descent direction; ``g`` (∂E/∂ξ at x) is returned when the two are the same."""
        if not self.own_direction:
            return self.g(x, beta) if g is None else g
        return self._check("d", self.energy.descent_direction(x, beta), x, "descent_direction")

    @property
    def same(self) -> bool:
        """The descent direction is ∂E/∂ξ."""
        return not self.own_direction

    def _check(self, which: str, out, x: torch.Tensor, name: str) -> torch.Tensor:
        out = autocast_to_state(out, x)
        if not self._checked[which]:
            self._checked[which] = True
            check_like_state(self.energy, name, out, x)
        return out

    def _first(self, x: torch.Tensor, beta) -> torch.Tensor:
        energy = self.energy
        if _fast.policy.first_gradient_needs_graph(x, beta):           # ξ or β carries a graph: torch.func, the value checked on the way
            def f(y):
                out = energy(y, beta)
                return out.sum(), out
            g, out = func_grad(f, has_aux=True)(x)
            check_energy_value(out, x, self.batch_shape, "at the states")
            self.needs = True
            return g
        with torch.enable_grad():
            y = x.detach().requires_grad_(True)
            out = call_energy(energy, y, beta, self.batch_shape, "at the states")
            if out.grad_fn is None:
                raise _not_differentiable(energy)
            hits_x, other = _fast.policy.graph_reach(out, y)
            if not hits_x:
                raise _not_differentiable(energy)
            self.needs = other and torch.is_grad_enabled()
            (g,) = torch.autograd.grad(out.sum(), y, create_graph=self.needs)
        return g


# ----------------------------------------------------------------------------------------------
# Shared loop bookkeeping
# ----------------------------------------------------------------------------------------------
def stop_message(converged: torch.Tensor, diverged: torch.Tensor, stop: str | None) -> str:
    """Why a run stopped, from its per-state flags (``stop``: the loop's own reason, if any)."""
    if torch.compiler.is_compiling():         # no host sync in a compiled graph: the flags say it
        return stop or ""
    n = converged.numel()
    c, d = int(converged.sum()), int(diverged.sum())
    if d:
        return "; ".join([f"{d} of {n} states diverged (state, residual or energy not finite, or the "
                          f"energy fell to -inf: unbounded below or overflowing)"]
                         + ([f"{c} converged"] if c else []) + ([stop] if stop else []))
    if c == n and n:
        return "all states converged"
    return stop or "every state converged or diverged"


class Log:
    """Per-state flags, residuals and the recorded history of one run."""

    def __init__(self, xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every):
        self.record, self.keep_traj, self.event_dims = record, keep_traj, event_dims
        self.energies = [e0] if record else None
        self.traj = [xi] if keep_traj else None
        self.tol, self.check_every = tol, check_every
        batch = xi.shape[: xi.dim() - event_dims]
        self.converged = torch.zeros(batch, dtype=torch.bool, device=xi.device)
        self.diverged = torch.zeros_like(self.converged)
        self.state_steps = torch.zeros(batch, dtype=torch.long, device=xi.device)
        self.residual = torch.full(batch, float("inf"), dtype=xi.dtype, device=xi.device)
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=steps, desc="descend", leave=False)

    @property
    def frozen(self) -> torch.Tensor:
        return self.converged | self.diverged

    def judge(self, x: torch.Tensor, residual: torch.Tensor, e: torch.Tensor | None = None) -> None:
        """Judge every state not yet frozen at ``x`` with its residual (and energy): diverged when
        they are not finite, converged when the residual is within tolerance. The state itself is
        not scanned: a non-finite state makes its residual non-finite (the update's ‖f(ξ) − ξ‖,
        or ‖d(ξ)‖), and :meth:`result` checks the final states once."""
        residual = residual.detach()
        open_ = ~self.frozen
        self.residual = torch.where(open_, residual, self.residual)
        bad = ~torch.isfinite(residual)
        if e is not None:
            bad = bad | ~torch.isfinite(e.detach())
        self.diverged = self.diverged | (open_ & bad)
        if self.tol > 0:
            scale = _norm(x.detach(), self.event_dims).clamp_min(1.0)
            self.converged = self.converged | (open_ & ~bad & (residual <= self.tol * scale))

    def diverge(self, mask: torch.Tensor) -> None:
        self.diverged = self.diverged | (mask & ~self.converged)

    def moved(self, mask: torch.Tensor) -> None:
        self.state_steps = self.state_steps + mask.long()
        if self.bar is not None:
            self.bar.update(1)

    def push(self, x: torch.Tensor, e: torch.Tensor | None) -> None:
        if self.record:
            self.energies.append(e)
        if self.keep_traj:
            self.traj.append(x)

    def all_frozen(self) -> bool:
        return bool(self.frozen.all())

    def message(self, stop: str) -> str:
        return stop_message(self.converged, self.diverged, stop)

    def result(self, x, method, steps, stop, times=None, info=None):
        """The :class:`Descent`; the final states are scanned once for non-finite entries."""
        from .descend import Descent

        if self.bar is not None:
            self.bar.close()
        self.diverged = self.diverged | (~self.converged & ~_finite(x.detach(), self.event_dims))
        return Descent(
            xi=x,
            energies=torch.stack(self.energies) if self.record else None,
            trajectory=torch.stack(self.traj) if self.keep_traj else None,
            converged=self.converged,
            diverged=self.diverged,
            steps=steps,
            state_steps=self.state_steps,
            residual=self.residual,
            method=method,
            times=times,
            message=self.message(stop),
            info=info or {},
        )


# ----------------------------------------------------------------------------------------------
# update / gd
# ----------------------------------------------------------------------------------------------
def _run_fixed_map(step_fn, energy, xi, beta, e0, *, method, steps, tol, record, keep_traj,
                   check_every, progress, event_dims) -> "Descent":
    stop = f"reached steps={steps}"
    if tol == 0 and not record and not keep_traj and not progress:
        # lean path (no convergence test, nothing recorded): the bare map; divergence is judged at
        # the end only, and a diverged state is left as computed
        x = xi
        for _ in range(steps - 1):
            x = step_fn(x, False)[0]
        if steps and method == "update":
            # the update's residual is ‖x − x_prev‖ of the final x itself: judged when first read,
            # so no Log is built for it
            x_prev, x = x, step_fn(x, False)[0]
            return lazy_update_result(x, x_prev, steps, stop, event_dims)
        log = Log(xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every)
        if steps:
            x, residual = step_fn(x, True)      # gd's residual ‖d‖ at x_prev comes with its step
            log.residual = residual
            log.diverged = ~torch.isfinite(residual)
            log.state_steps += steps
        return log.result(x, method, steps, stop)
    log = Log(xi, e0, record, keep_traj, event_dims, tol, steps, progress, check_every)
    x, e, taken = xi, e0, 0
    for t in range(1, steps + 1):
        x_new, residual = step_fn(x, True)
        log.judge(x, residual)                  # at x: a converged state stays where it is
        keep = log.frozen
        if record:
            e_new = energy(x_new, beta)
            bad = ~keep & ~torch.isfinite(e_new)
            log.diverge(bad)
            keep = keep | bad
            e = torch.where(keep, e, e_new)
        x = _where(keep, x, x_new, event_dims)
        log.moved(~keep)
        taken = t
        log.push(x, e)
        if t % check_every == 0 and log.all_frozen():
            stop = None
            break
    return log.result(x, method, taken, stop)


def lazy_update_result(x: torch.Tensor, x_prev: torch.Tensor, steps: int, stop: str, event_dims: int) -> "Descent":
    """The lean ``update`` run's :class:`Descent`, whose residual ‖x − x_prev‖ and flags are computed
    when one of them is first read (a model that takes only ``.xi`` never pays for them). The
    states must not change in place before then: that is refused, never judged on other numbers."""
    from .descend import Descent

    versions = (x._version, x_prev._version)

    def judge() -> dict:
        if (x._version, x_prev._version) != versions:
            raise RuntimeError("the states of this descend result were modified in place before its residual, "
                               "converged, diverged, state_steps or message was read; read them first, or "
                               "modify a clone of .xi")
        with torch.no_grad():
            residual = _norm(x.detach() - x_prev.detach(), event_dims)
        converged = torch.zeros(residual.shape, dtype=torch.bool, device=x.device)   # tol = 0
        diverged = ~torch.isfinite(residual)
        return dict(converged=converged, diverged=diverged, residual=residual,
                    state_steps=torch.full(residual.shape, steps, dtype=torch.long, device=x.device),
                    message=stop_message(converged, diverged, stop))

    return Descent.deferred(judge, xi=x, energies=None, trajectory=None, steps=steps, method="update")


def run_update(energy, xi, beta, e0, *, step_size, tau, options, **kw):
    ed = kw["event_dims"]
    lean = kw["tol"] == 0 and not (kw["record"] or kw["keep_traj"] or kw["progress"])   # the bare map below
    if not lean and _fast.policy.chunked_update(energy, xi, beta, kw["steps"], kw["keep_traj"]):
        return _fast.chunked_update.run(energy, xi, beta, e0, steps=kw["steps"], tol=kw["tol"],
                                        keep_traj=kw["keep_traj"], check_every=kw["check_every"],
                                        progress=kw["progress"], event_dims=ed, record=kw["record"])
    first = [True]

    def step(x, residual):
        new = autocast_to_state(energy.update(x, beta), x)
        if first[0]:
            first[0] = False
            check_like_state(energy, "update", new, x)
        if not residual:
            return new, None
        with torch.no_grad():
            return new, _norm(new - x, ed)

    return _run_fixed_map(step, energy, xi, beta, e0, method="update", **kw)


def run_gd(energy, xi, beta, e0, *, step_size, tau, options, **kw):
    ed = kw["event_dims"]
    eta = 0.1 if step_size is None else step_size
    grads = Gradients(energy, xi, ed)

    def step(x, residual):
        d = grads.d(x, beta)
        return torch.add(x, d, alpha=-eta), (_norm(d, ed).detach() if residual else None)  # no η·d temporary

    return _run_fixed_map(step, energy, xi, beta, e0, method="gd", **kw)


# ----------------------------------------------------------------------------------------------
# The energy's rounding resolution
# ----------------------------------------------------------------------------------------------
def energy_resolution(energy, x: torch.Tensor, beta, e: torch.Tensor, g: torch.Tensor, event_dims: int,
                      samples: int = 3) -> torch.Tensor:
    """Per state, a bound on the rounding error of a computed energy near ``x`` (module docstring):
    4 × max over ``samples`` perturbations δ (‖δ‖ = 1000 ulps of max(1, ‖ξ‖)) of
    |E(ξ + δ) − E(ξ) − ∇E(ξ)ᵀδ|, and at least 64 ulps of |E(ξ)|."""
    eps = torch.finfo(x.dtype).eps
    e = e.detach()
    floor = rounding_floor(e)
    gen = torch.Generator(device=x.device).manual_seed(0)
    size = 1e3 * eps * _norm(x.detach(), event_dims).clamp_min(1.0)
    worst = torch.zeros_like(floor)
    for _ in range(samples):
        u = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        delta = u * _expand(size / _norm(u, event_dims).clamp_min(1e-30), event_dims)
        off = energy(x.detach() + delta, beta).detach() - e - _dot(g.detach(), delta, event_dims)
        worst = torch.maximum(worst, off.abs().nan_to_num(nan=0.0, posinf=0.0))
    return torch.maximum(floor, 4 * worst)


# ----------------------------------------------------------------------------------------------
# armijo
# ----------------------------------------------------------------------------------------------
def run_armijo(energy, xi, beta, e0, *, steps, step_size, tol, record, keep_traj, tau,
               check_every, progress, event_dims, options):
    c, shrink, max_bt = options["c"], options["shrink"], options["max_backtracks"]
    t_max = 1.0 if step_size is None else float(step_size)
    ed = event_dims
    grads = Gradients(energy, xi, ed)
    log = Log(xi, e0, record, keep_traj, ed, tol, steps, progress, check_every)
    x, e = xi, e0
    eps = torch.finfo(xi.dtype).eps
    g = g0 = grads.g(x, beta)
    res0 = None                 # measured at the first failed Armijo test (short runs rarely need it)
    t_state = torch.full(e0.shape, t_max, dtype=xi.dtype, device=xi.device)
    stalled = torch.zeros_like(log.converged)
    taken, stop, evaluations = 0, f"reached steps={steps}", 0
    nonfinite = torch.zeros(e0.shape, dtype=torch.long, device=xi.device)   # trial energies not finite
    for it in range(1, steps + 2):
        if g is None:               # tol = 0: the final state is not judged (no gradient spent on it)
            break
        d = grads.d(x, beta, g)
        slope = _dot(g, d, ed)
        residual = slope.sqrt() if grads.same else _norm(d, ed)
        log.judge(x, residual, e)
        active = ~(log.frozen | stalled)
        if it > steps or not bool(active.any()):
            if not bool(active.any()):
                stop = ("no further decrease possible for the remaining states (line search failed at "
                        "the energy's resolution)" if bool(stalled.any()) else None)
            break
        floor = rounding_floor(e, res0)
        t_try = torch.clamp(t_state * 2.0, max=t_max)
        need = -c * slope                                # Armijo: change ≤ −c t ⟨∇E, d⟩
        accepted = torch.zeros_like(active)
        unbounded = torch.zeros_like(active)
        x_next, e_next = x, e
        g_next, have_g = g, ~active          # ∇E at each state's next point, where already known
        for _ in range(max_bt):
            pending = active & ~accepted
            cand = x - _expand(t_try, ed) * d
            e_c = energy(cand, beta)
            evaluations += 1
            fin = torch.isfinite(e_c)
            change = e_c - e
            ok = pending & fin & (change <= need * t_try)
            fail = pending & ~ok
            g_c = None
            if bool(fail.any()):                         # (a step every state takes skips all of this)
                unbounded = unbounded | (fail & torch.isneginf(e_c))
                nonfinite = nonfinite + (fail & ~fin).long()
                if res0 is None:
                    res0 = energy_resolution(energy, xi, beta, e0, g0, ed)
                    floor = torch.maximum(res0, floor)
                # below resolution: the energies differ by less than their rounding, and the linear
                # prediction of the decrease is too small for the energy to show it
                close = fail & fin & (change <= floor) & (t_try * slope <= 100 * floor)
                if bool(close.any()):
                    g_c = grads.g(cand, beta)
                    wolfe = _dot(g_c, d, ed) >= -(1 - 2 * WOLFE_DELTA) * slope      # approximate Wolfe
                    # a direction at its own rounding level (only with tol = 0) decides nothing either
                    noise = residual <= 64 * eps * _norm(x.detach(), ed).clamp_min(1.0)
                    ok = ok | (close & (wolfe | noise))
            x_next = _where(ok, cand, x_next, ed)
            e_next = torch.where(ok, e_c, e_next)
            t_state = torch.where(ok, t_try, t_state)
            accepted = accepted | ok
            if g_c is not None:                          # ∇E of a state depends on that state only
                g_next = _where(ok, g_c, g_next, ed)
                have_g = have_g | ok
            pending = active & ~accepted & ~unbounded
            if not bool(pending.any()):
                break
            t_try = torch.where(pending, t_try * shrink, t_try)
        failed = active & ~accepted & ~unbounded
        log.diverge((unbounded & ~accepted) | (failed & ~fin))  # the energy is not finite arbitrarily close
        stalled = stalled | (failed & fin)
        x, e = x_next, e_next
        if it < steps or tol > 0:
            have_g = have_g | (active & ~accepted)     # states that did not move keep theirs
            g = g_next if bool(have_g.all()) else grads.g(x, beta)
        else:
            g = None
        taken = it
        log.moved(accepted)
        log.push(x, e if record else None)
    met = ~log.frozen & (nonfinite > 0)
    if bool(met.any()) and stop:
        stop += (f"; the line search met non-finite trial energies for {int(met.sum())} unconverged states "
                 f"(info['nonfinite_trials'])")
    return log.result(x, "armijo", taken, stop,
                      info={"step_size": t_state, "stalled": stalled, "energy_evaluations": evaluations,
                            "energy_resolution": res0 if res0 is not None else torch.zeros_like(e0.detach()),
                            "nonfinite_trials": nonfinite})


# ----------------------------------------------------------------------------------------------
# ode: adaptive Dormand–Prince 5(4), a step size per state
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


def ode_tolerances(tol: float, dtype: torch.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    """The solver's error tolerances, by default rtol = 10·tol and atol = tol/10 (``tol = 0``: the
    dtype's default tol). Near a fixed point the local error is proportional to the distance from
    it, so the absolute part decides how close the solver can come: below the residual asked for.
    A loose rtol (1e-6 with tol = 1e-10) lets the step size sit at the stability limit, where steps
    that raise the energy are rejected over and over; a tight one (1e-11) costs small steps far
    from the fixed point (``benchmarks/results/tuning.md``)."""
    from .descend import DEFAULT_TOL

    base = tol if tol > 0 else DEFAULT_TOL.get(dtype, 1e-3)
    return (10 * base if rtol is None else float(rtol)), (base / 10 if atol is None else float(atol))


def run_ode(energy, xi, beta, e0, *, steps, step_size, tol, record, keep_traj, tau,
            check_every, progress, event_dims, options):
    ed = event_dims
    rtol, atol = ode_tolerances(tol, xi.dtype, options["rtol"], options["atol"])
    t_end = float(options["t_max"])
    max_rejects = int(options["max_rejects"])
    grads = Gradients(energy, xi, ed)
    eps = torch.finfo(xi.dtype).eps

    def rhs(x):
        return -grads.d(x, beta) / tau

    log = Log(xi, e0, record, keep_traj, ed, tol, steps, progress, check_every)
    x, e = xi, e0
    batch = e0.shape
    h = torch.full(batch, 0.1 if step_size is None else float(step_size), dtype=xi.dtype, device=xi.device)
    t = torch.zeros(batch, dtype=xi.dtype, device=xi.device)
    times = [t]
    k1 = rhs(x)
    g_x = None if not grads.same else -tau * k1
    res0 = energy_resolution(energy, x, beta, e, g_x if g_x is not None else grads.g(x, beta), ed)
    underflow = torch.zeros_like(log.converged)
    rejected = torch.zeros(batch, dtype=torch.long, device=xi.device)
    taken, stop = 0, f"reached steps={steps}"
    for it in range(1, steps + 2):
        log.judge(x, _norm(k1 * tau, ed), e)
        active = ~(log.frozen | underflow) & (t < t_end)
        if it > steps or not bool(active.any()):
            if not bool(active.any()):
                stop = None
                if bool(underflow.any()):
                    stop = (f"step size underflow for {int(underflow.sum())} states (a step was rejected "
                            f"{max_rejects + 1} times in a row, or fell below the resolution of t)")
                elif bool((t >= t_end).any()):
                    stop = f"reached t_max={t_end}"
            break
        floor = rounding_floor(e, res0)
        pending = active.clone()
        x_next, e_next, k_next, t_next = x, e, k1, t
        for _ in range(max_rejects + 1):
            hh = torch.minimum(h, t_end - t)
            he = _expand(hh, ed)
            ks = [k1]
            for row in _DP_A[1:]:
                xs = x + he * sum(a * k for a, k in zip(row, ks) if a != 0.0)
                ks.append(rhs(xs))
            x5 = x + he * sum(b * k for b, k in zip(_DP_B5, ks) if b != 0.0)
            err = he * sum((b5 - b4) * k for b5, b4, k in zip(_DP_B5, _DP_B4, ks) if b5 != b4)
            scale = atol + rtol * torch.maximum(x.abs(), x5.abs())
            err_norm = (err / scale).detach().pow(2).flatten(x.dim() - ed).mean(-1).sqrt()
            e5 = energy(x5, beta)
            change = e5 - e
            fin = torch.isfinite(e5) & torch.isfinite(err_norm)
            unbounded = pending & torch.isneginf(e5)
            good = pending & fin & (err_norm <= 1.0)
            ok = good & (change <= 0)
            close = good & ~ok & (change <= floor)
            if bool(close.any()):
                if g_x is None:
                    g_x = grads.g(x, beta)
                g5 = -tau * ks[-1] if grads.same else grads.g(x5, beta)
                ok = ok | (close & (0.5 * _dot(g_x + g5, x5 - x, ed) <= 0))
            x_next = _where(ok, x5, x_next, ed)
            e_next = torch.where(ok, e5, e_next)
            k_next = _where(ok, ks[-1], k_next, ed)
            t_next = torch.where(ok, t + hh, t_next)
            grow = (0.9 * err_norm.clamp_min(1e-10) ** -0.2).clamp(0.2, 5.0)
            rose = good & ~ok
            shrink_by = torch.where(rose, torch.full_like(hh, 0.5),
                                    torch.where(fin, grow.clamp(max=0.9), torch.full_like(hh, 0.25)))
            h = torch.where(ok, hh * grow, torch.where(pending & ~ok, hh * shrink_by, h))
            rejected = rejected + (pending & ~ok).long()
            log.diverge(unbounded)
            pending = pending & ~ok & ~unbounded
            tiny = pending & (h <= 16 * eps * t.abs().clamp_min(1.0))
            log.diverge(tiny & ~fin)
            underflow = underflow | (tiny & fin)
            pending = pending & ~tiny
            if not bool(pending.any()):
                break
        log.diverge(pending & ~fin)          # rejected down to the last try because E was not finite
        underflow = underflow | (pending & fin)
        moved = ~torch.eq(t_next, t)
        x, e, k1, t = x_next, e_next, k_next, t_next
        g_x = -tau * k1 if grads.same else None
        times.append(t)
        taken = it
        log.moved(moved)
        log.push(x, e if record else None)
    return log.result(x, "ode", taken, stop, times=torch.stack(times),
                      info={"step_size": h, "underflow": underflow, "rejected": rejected,
                            "energy_resolution": res0, "rtol": rtol, "atol": atol})
