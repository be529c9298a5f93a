"""Numbers over seeds: a summary (mean ± sd, n) and whether two sets of runs differ beyond seed noise.

    summarise([96.1, 97.0, 95.2])        -> SeedSummary(mean, sd, n), str: "96.10 ± 0.90 (n=3)"
    welch(a, b)                          -> Welch's t-test (unequal variances, two-sided):
        t = (ā − b̄) / √(s_a²/n_a + s_b²/n_b),
        ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))   (Welch–Satterthwaite)
        p from Student's t with ν degrees of freedom; ``differs`` = p < alpha.

sd is the sample standard deviation (n − 1). With fewer than two values per side no test is made
(``differs`` is None): one seed says nothing about seed noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["SeedSummary", "Welch", "summarise", "welch"]


@dataclass(frozen=True)
class SeedSummary:
    mean: float
    sd: float          # sample standard deviation; nan for n = 1
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f} (n={self.n})" if self.n > 1 else f"{self.mean:.2f} (n=1)"


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p: float
    differs: bool | None   # None: too few values to test
    alpha: float


def _values(name: str, v: Sequence[float]) -> list[float]:
    out = [float(x) for x in v]
    if not out:
        raise ValueError(f"{name}: expected at least one value, got none")
    if not all(math.isfinite(x) for x in out):
        raise ValueError(f"{name}: expected finite values, got {out}")
    return out


def summarise(values: Sequence[float]) -> SeedSummary:
    """Mean, sample standard deviation and count of per-seed values."""
    v = _values("values", values)
    n = len(v)
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    return SeedSummary(mean, sd, n)


def welch(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> Welch:
    """Welch's two-sided t-test of mean(a) ≠ mean(b) (the module docstring)."""
    from scipy import stats

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    a, b = _values("a", a), _values("b", b)
    if len(a) < 2 or len(b) < 2:
        return Welch(float("nan"), float("nan"), float("nan"), None, alpha)
    sa, sb = summarise(a), summarise(b)
    va, vb = sa.sd ** 2 / sa.n, sb.sd ** 2 / sb.n
    if va + vb == 0:
        same = sa.mean == sb.mean
        return Welch(0.0 if same else math.copysign(math.inf, sa.mean - sb.mean), float(sa.n + sb.n - 2),
                     1.0 if same else 0.0, not same, alpha)
    t = (sa.mean - sb.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    p = float(2 * stats.t.sf(abs(t), df))
    return Welch(t, df, p, p < alpha, alpha)
