"""What the benchmark scripts share: the hand-written Hopfield step and the alternating timer."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

import hopfieldkit as hk


def allocator_flag(ap) -> None:
    """``--glibc-defaults``: leave the C allocator as it is (the benchmarks keep freed buffers by default)."""
    ap.add_argument("--glibc-defaults", action="store_true",
                    help="do not call hk.retain_freed_memory() (a process-wide opt-in the benchmarks make)")


def apply_allocator(args) -> str:
    """Opt in to :func:`hopfieldkit.retain_freed_memory` unless ``--glibc-defaults``; a line saying which."""
    if getattr(args, "glibc_defaults", False):
        return "allocator: glibc defaults (--glibc-defaults)"
    on = hk.retain_freed_memory()
    return "allocator: freed CPU buffers retained (hk.retain_freed_memory)" if on else "allocator: not glibc, left alone"


def hand_loop(X: torch.Tensor, xi: torch.Tensor, beta: float, steps: int) -> torch.Tensor:
    """``steps`` updates ξ ← softmax(β ξ Xᵀ) X in plain eager torch: the baseline."""
    XT = X.T
    for _ in range(steps):
        xi = torch.softmax(beta * (xi @ XT), dim=-1) @ X
    return xi


def alternate(runs: dict[str, Callable[[], object]], repeats: int, *, sync: Callable[[], None] = lambda: None,
              settle: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each of ``runs`` (:func:`alternate_samples`)."""
    return {k: statistics.median(v) for k, v in alternate_samples(runs, repeats, sync=sync, settle=settle).items()}


def paired_ratio(samples: dict[str, list[float]], name: str, base: str) -> float:
    """Median over the repeats of time(name) / time(base) measured in the same repeat: a slow or
    fast phase of the machine that spans a repeat cancels (a ratio of medians keeps it)."""
    return statistics.median(a / b for a, b in zip(samples[name], samples[base]))


def alternate_samples(runs: dict[str, Callable[[], object]], repeats: int, *,
                      sync: Callable[[], None] = lambda: None, settle: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each of ``runs``, one sample per repeat, the methods alternating inside
    each repeat (these machines are noisy: a ratio within one repeat is fairer than separate blocks).

    Each run is called once first (warm-up, compilation of jitted peers). With ``settle`` > 0 each
    timed call is preceded by a pause of that many seconds, so that the previous method's spinning
    threads have gone idle, and by one untimed call, since the first milliseconds after a pause run
    slower."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            sync()
            if settle > 0:
                time.sleep(settle)
                fn()
                sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times
