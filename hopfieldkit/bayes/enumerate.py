"""Brute force: enumerate every admissible adjacency structure and compute the exact posterior.

For small m, n this is the ground truth the factorised :class:`~hopfieldkit.bayes.Posterior` is
checked against: p(E | q, k) ∝ Π_ij (π_ij ψ_ij)^{E_ij} over structures E with one choice per unit
(n^m structures for the row constraint, m^n for the column constraint).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from .._checks import check_choice
from .posterior import Potential, potential_scores

MAX_STRUCTURES = 200_000


def structures(m: int, n: int, constraint: str = "row", *, dtype=torch.float64) -> torch.Tensor:
    """All admissible structures, ``[S, m, n]`` one-hot (row: each query one key; column: each key one query)."""
    check_choice("constraint", constraint, ("row", "column"))
    units, choices = (m, n) if constraint == "row" else (n, m)
    if choices ** units > MAX_STRUCTURES:
        raise ValueError(f"{choices}^{units} structures is too many to enumerate (limit {MAX_STRUCTURES})")
    out = []
    for pick in itertools.product(range(choices), repeat=units):
        E = torch.zeros(m, n, dtype=dtype)
        for u, c in enumerate(pick):
            if constraint == "row":
                E[u, c] = 1.0
            else:
                E[c, u] = 1.0
        out.append(E)
    return torch.stack(out)


@dataclass
class BruteForce:
    structures: torch.Tensor   # [S, m, n]
    probs: torch.Tensor        # [S] exact posterior p(E | q, k)
    marginals: torch.Tensor    # [m, n] Σ_E p(E) E
    log_evidence: torch.Tensor  # log Σ_E Π (π ψ)^E
    entropy: torch.Tensor      # −Σ_E p log p

    def expectation(self, value_fn) -> torch.Tensor:
        """E_p[value_fn(E)] by summing over every structure."""
        return sum(p * value_fn(E) for p, E in zip(self.probs, self.structures))


def brute_force(q: torch.Tensor, k: torch.Tensor, *, constraint: str = "row", log_prior: torch.Tensor | None = None,
                potential: Potential = "dot", scale: float | None = None, sigma: float = 1.0,
                w: torch.Tensor | None = None) -> BruteForce:
    """Exact posterior over structures for one instance (q ``[m, d]``, k ``[n, d]``), by enumeration."""
    if q.dim() != 2 or k.dim() != 2:
        raise ValueError("brute_force takes a single instance: q [m, d], k [n, d]")
    m, n = q.shape[0], k.shape[0]
    s = potential_scores(q, k, potential, scale=scale, sigma=sigma, w=w)
    Es = structures(m, n, constraint, dtype=q.dtype)
    lp = torch.zeros(m, n, dtype=q.dtype) if log_prior is None else torch.broadcast_to(log_prior.to(q.dtype), (m, n))
    # the prior over structures is Π_units Cat(π_unit): normalise each unit's π by explicit sums
    prior = torch.exp(lp)
    prior = prior / (prior.sum(-1, keepdim=True) if constraint == "row" else prior.sum(0, keepdim=True))
    with torch.no_grad():
        log_prior_n = torch.log(prior)
    terms = torch.where(Es > 0, (s + log_prior_n).expand_as(Es), torch.zeros_like(Es))
    log_joint = terms.sum((-1, -2))                                  # [S]
    log_z = torch.logsumexp(log_joint, 0)
    probs = torch.exp(log_joint - log_z)
    marg = (probs[:, None, None] * Es).sum(0)
    ent = -(torch.where(probs > 0, probs * torch.log(probs), torch.zeros_like(probs))).sum()
    return BruteForce(Es, probs, marg, log_z, ent)
