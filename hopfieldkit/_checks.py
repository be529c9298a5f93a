"""Argument checks shared by every public function.

Each check raises a ``ValueError`` or ``TypeError`` whose message names the argument and says
what was expected, so that bad input never surfaces as a stack trace from deep inside torch.

Value checks (NaN/inf) need the data and would force a host sync on CUDA; they are skipped for
tensors inside a torch.func transform (vmap, grad), where data-dependent control flow is not
allowed, inside :func:`unchecked`, which ``descend`` uses for its inner loop after it has
checked its inputs once, and under torch.compile.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Sequence

import torch
from torch._C._functorch import is_functorch_wrapped_tensor

_state = threading.local()


def checks_enabled() -> bool:
    """False inside :func:`unchecked` (energies may then skip their argument checks entirely:
    descend validates its inputs once, and its steps keep shape, dtype and device) and while
    torch.compile traces (a value check would be a graph break and a host sync)."""
    if torch.compiler.is_compiling():  # first, so that no guard on the thread-local state is traced
        return False
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Skip value (NaN/inf) checks inside the block: for hot loops whose inputs were checked.
    Each block is one session (:func:`check_session`): kept values are re-verified once in it.
    While torch.compile traces, checks are off anyway and the block touches no state: a session
    counter read during tracing would become a guard, and every call would recompile."""
    if torch.compiler.is_compiling():
        yield
        return
    old = getattr(_state, "enabled", True)  # the stored flag (checks_enabled() is False while compiling)
    old_session = getattr(_state, "session", None)
    _state.enabled = False
    _state.counter = getattr(_state, "counter", 0) + 1
    _state.session = _state.counter
    try:
        yield
    finally:
        _state.enabled = old
        _state.session = old_session


def check_session() -> int | None:
    """The id of the innermost :func:`unchecked` block running now, or None outside one."""
    if getattr(_state, "enabled", True):
        return None
    return getattr(_state, "session", None)


def _plain(t: torch.Tensor) -> bool:
    return not is_functorch_wrapped_tensor(t)


def check_tensor(
    name: str,
    x: object,
    *,
    min_dim: int | None = None,
    ndim: int | None = None,
    floating: bool = True,
    finite: bool = True,
) -> torch.Tensor:
    """Return ``x`` if it is a tensor of the expected rank and dtype with finite values."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if min_dim is not None and x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}"
        )
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype (float32/float64/...), got {x.dtype}")
    if finite:
        check_finite(name, x)
    return x


def all_finite(x: torch.Tensor) -> bool:
    """No NaN or ±inf in ``x``. One min/max reduction (NaN propagates through both), with no
    temporaries (``isfinite(x).all()`` builds three x-sized ones)."""
    if x.is_floating_point():
        lo, hi = torch.aminmax(x)
        return bool(torch.isfinite(lo) & torch.isfinite(hi))
    return bool(torch.isfinite(x).all())


def check_finite(name: str, x: torch.Tensor) -> None:
    """No NaN or inf in ``x`` (skipped inside torch.func transforms, :func:`unchecked`, meta tensors)."""
    if (checks_enabled() and _plain(x) and x.numel() and x.device.type != "meta"
            and not all_finite(x)):
        bad = "NaN" if bool(torch.isnan(x).any()) else "inf"
        raise ValueError(f"{name} contains {bad} values; expected finite numbers")


def check_like(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``x`` must share dtype and device with ``ref``."""
    if x.dtype != ref.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but {ref_name} has dtype {ref.dtype}; "
            f"convert one of them (e.g. {name}.to({ref_name}.dtype))"
        )
    if x.device != ref.device:
        raise ValueError(
            f"{name} is on device {x.device} but {ref_name} is on {ref.device}; move one of them"
        )


def check_last_dim(name: str, x: torch.Tensor, d: int, what: str = "the pattern dimension") -> None:
    if x.dim() < 1 or x.shape[-1] != d:
        raise ValueError(
            f"{name} must have shape [..., {d}] ({what} is {d}), got shape {tuple(x.shape)}"
        )


def check_beta(beta: object, *, ref: torch.Tensor | None = None, name: str = "beta") -> float | torch.Tensor:
    """β must be a positive finite number, or a tensor of them (broadcast over the batch)."""
    if isinstance(beta, bool):
        raise TypeError(f"{name} must be a positive number, got bool")
    if isinstance(beta, (int, float)):
        b = float(beta)
        if not (b > 0.0 and b < float("inf")):
            raise ValueError(f"{name} must be a positive finite number, got {beta}")
        return b
    if isinstance(beta, torch.Tensor):
        if not beta.is_floating_point():
            beta = beta.to(ref.dtype if ref is not None else torch.get_default_dtype())
        if ref is not None and beta.device != ref.device:
            raise ValueError(f"{name} is on device {beta.device} but the state is on {ref.device}")
        if checks_enabled() and _plain(beta) and beta.numel() and not bool(
            (torch.isfinite(beta) & (beta > 0)).all()
        ):
            raise ValueError(f"{name} must be positive and finite everywhere, got {beta}")
        return beta
    raise TypeError(f"{name} must be a positive float or a tensor, got {type(beta).__name__}")


def check_beta_shape(beta: float | torch.Tensor, batch_shape: torch.Size, name: str = "beta") -> None:
    """A tensor β must broadcast against the states' batch shape without enlarging it."""
    if isinstance(beta, torch.Tensor) and beta.dim():
        try:
            ok = torch.broadcast_shapes(beta.shape, batch_shape) == batch_shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"{name} has shape {tuple(beta.shape)}; a tensor {name} must broadcast against "
                             f"the batch shape {tuple(batch_shape)} of the states (one value per state, or a scalar)")


def beta_for(beta: float | torch.Tensor, batch_ndim: int) -> float | torch.Tensor:
    """Reshape a tensor β of batch shape so it broadcasts against ``[..., k]`` scores."""
    if isinstance(beta, torch.Tensor) and beta.dim() > 0:
        if beta.dim() > batch_ndim:
            raise ValueError(
                f"beta has shape {tuple(beta.shape)}, more dimensions than the batch ({batch_ndim})"
            )
        return beta.unsqueeze(-1)
    return beta


def check_positive(name: str, value: object, *, allow_zero: bool = False, integer: bool = False) -> None:
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value != value or value == float("inf") or (value < 0 if allow_zero else value <= 0):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {rel}, got {value}")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[return-value]
