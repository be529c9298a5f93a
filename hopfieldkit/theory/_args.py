"""Argument checks shared by the theory functions: each names the argument and what it needs."""
from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_beta, check_tensor


def _patterns(patterns: torch.Tensor, min_n: int = 1) -> torch.Tensor:
    X = check_tensor("patterns", patterns, ndim=2)
    if X.shape[0] < min_n or X.shape[1] < 1:
        need = f"at least {min_n} patterns" if min_n > 1 else "N, d >= 1"
        raise ValueError(f"patterns must be [N, d] with {need}, got shape {tuple(X.shape)}")
    return X


def _beta(beta: float) -> float:
    b = check_beta(beta)
    if isinstance(b, torch.Tensor):
        if b.numel() != 1:
            raise ValueError(f"beta must be one positive number here, got a tensor of shape {tuple(b.shape)}")
        b = float(b)
    return b


def _int(name: str, v: object, least: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")
    return int(v)


def _positive(name: str, v: object) -> float:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (0 < float(v) < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def _index(i: object, N: int, name: str = "i") -> int:
    if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point():
        i = int(i)
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not (-N <= int(i) < N):
        raise ValueError(f"{name} must be a pattern index in [0, {N}) (N = {N} patterns), got {i!r}")
    return int(i) % N


def _states(name: str, xi: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    check_tensor(name, xi, min_dim=1)
    if xi.shape[-1] != X.shape[1]:
        raise ValueError(f"{name} must have shape [..., {X.shape[1]}] (the pattern dimension d = {X.shape[1]}), "
                         f"got {tuple(xi.shape)}")
    if xi.dtype != X.dtype or xi.device != X.device:
        raise TypeError(f"{name} has dtype {xi.dtype} on {xi.device} but patterns have {X.dtype} on {X.device}")
    return xi


def _capacity_args(beta, K, d, p) -> tuple[float, float, int, float]:
    """β > 0, K > 0, d ≥ 2 (the bounds divide by d − 1), 0 < p ≤ 1."""
    b = _beta(beta)
    K = _positive("K", K)
    d = _int("d", d, 2)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 < p <= 1):
        raise ValueError(f"p must be a probability in (0, 1], got {p!r}")
    return b, K, d, float(p)


