"""The posterior over the latent adjacency structure E, and the inference modes on it [SB].

Queries ("children") q_i, keys ("parents") k_j. Each unit of the constraint chooses exactly one
partner: a query chooses its parent (``"row"``: Σ_j E_ij = 1) or a key chooses its slot
(``"column"``: Σ_i E_ij = 1). With prior π and potential ψ_ij = exp(s(q_i, k_j)) the posterior
factorises over units:

    p(E_ij = 1 | q, k) = softmax over the unit's choices of (s_ij + log π_ij)
    log p(q | k) = Σ_units log Σ_choices π ψ            (log-evidence)
    F(q_dist) = Σ_units [ −Σ q_dist·(s + log π) − H(q_dist) ] ≥ −log-evidence, = at the posterior

Potentials: ``"dot"`` s = q·k·scale (scale = 1/√d by default), ``"gaussian"`` s = −‖q − k‖²/(2σ²),
``"additive"`` s = wᵀ tanh(q + k) (Bahdanau; q and k already projected), or any callable
``(q, k) -> [..., m, n]``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Union

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_tensor

Potential = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
CONSTRAINTS = ("row", "column")


# ----------------------------------------------------------------------------------------------
# Potentials
# ----------------------------------------------------------------------------------------------
def potential_scores(q: torch.Tensor, k: torch.Tensor, potential: Potential = "dot", *,
                     scale: float | None = None, sigma: float = 1.0,
                     w: torch.Tensor | None = None) -> torch.Tensor:
    """log ψ(q_i, k_j), shape ``[..., m, n]``."""
    if callable(potential):
        s = potential(q, k)
        if not isinstance(s, torch.Tensor) or s.shape[-2:] != (q.shape[-2], k.shape[-2]):
            raise ValueError(f"a potential callable must return [..., m={q.shape[-2]}, n={k.shape[-2]}]")
        return s
    check_choice("potential", potential, ("dot", "gaussian", "additive"))
    if potential == "dot":
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        return (q @ k.transpose(-1, -2)) * scale
    if potential == "gaussian":
        if not (isinstance(sigma, (int, float, torch.Tensor)) and float(sigma) > 0):
            raise ValueError(f"sigma must be positive for the gaussian potential, got {sigma}")
        sq = (q * q).sum(-1, keepdim=True) - 2 * q @ k.transpose(-1, -2) + (k * k).sum(-1).unsqueeze(-2)
        return -sq / (2.0 * float(sigma) ** 2)
    if w is None:
        raise ValueError("potential='additive' needs w, a [d] weight vector (s_ij = wᵀ tanh(q_i + k_j))")
    check_tensor("w", w, ndim=1)
    if w.shape[0] != q.shape[-1]:
        raise ValueError(f"w must have shape [{q.shape[-1]}], got {tuple(w.shape)}")
    return torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3)) @ w


# ----------------------------------------------------------------------------------------------
# The posterior
# ----------------------------------------------------------------------------------------------
@dataclass
class Posterior:
    """Posterior over structures; factorises over the units of the constraint.

    Attributes:
        logits: ``[..., m, n]`` s_ij + log π_ij (prior normalised per unit; −inf = forbidden edge).
        constraint: ``"row"`` (units are queries, axis −1) or ``"column"`` (units are keys, axis −2).
    """

    logits: torch.Tensor
    constraint: str

    @property
    def axis(self) -> int:
        return -1 if self.constraint == "row" else -2

    @property
    def marginals(self) -> torch.Tensor:
        """p(E_ij = 1 | q, k), ``[..., m, n]``; sums to 1 over the constraint axis."""
        return torch.softmax(self.logits, dim=self.axis)

    @property
    def log_marginals(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=self.axis)

    def unit_log_evidence(self) -> torch.Tensor:
        """log Σ_choices π ψ for each unit: ``[..., m]`` (row) or ``[..., n]`` (column)."""
        return torch.logsumexp(self.logits, dim=self.axis)

    @property
    def log_evidence(self) -> torch.Tensor:
        """log p(q | k) = Σ_units log Σ π ψ, ``[...]``."""
        return self.unit_log_evidence().sum(-1)

    @property
    def entropy(self) -> torch.Tensor:
        """H of the posterior over structures = Σ_units H(unit's choice), ``[...]``."""
        p, lp = self.marginals, self.log_marginals
        return -(torch.where(p > 0, p * lp, torch.zeros_like(p))).sum((-1, -2))

    def free_energy(self, q_dist: torch.Tensor | None = None) -> torch.Tensor:
        """F(q) = Σ_units [−Σ_c q_c (s_c + log π_c) + Σ_c q_c log q_c], ``[...]``.

        Minimised by the posterior marginals, where F = −log-evidence (Lemma A19 of [R]: lse is
        the max over the simplex of ⟨q, s⟩ + H(q)). ``q_dist`` must sum to 1 over the constraint axis.
        """
        qd = self.marginals if q_dist is None else q_dist
        if qd.shape[-2:] != self.logits.shape[-2:]:
            raise ValueError(f"q_dist must have shape [..., {self.logits.shape[-2]}, {self.logits.shape[-1]}]")
        safe_logits = torch.where(qd > 0, self.logits, torch.zeros_like(self.logits))
        neg_log = torch.where(qd > 0, qd * torch.log(qd.clamp_min(1e-300)), torch.zeros_like(qd))
        return (-(qd * safe_logits) + neg_log).sum((-1, -2))

    def map(self) -> torch.Tensor:
        """The most probable structure (one-hot along the constraint axis), ``[..., m, n]``."""
        idx = self.logits.argmax(dim=self.axis, keepdim=True)
        return torch.zeros_like(self.logits).scatter_(self.axis, idx, 1.0)

    def sample(self, num: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` exact structure samples (one-hot), ``[num, ..., m, n]``."""
        p = self.marginals.movedim(self.axis, -1)
        flat = p.reshape(-1, p.shape[-1])
        idx = torch.multinomial(flat, num, replacement=True, generator=generator)  # [units, num]
        onehot = F.one_hot(idx.T, p.shape[-1]).to(p.dtype)                      # [num, units, c]
        onehot = onehot.reshape(num, *p.shape)
        return onehot.movedim(-1, self.axis)

    def log_prob(self, E: torch.Tensor) -> torch.Tensor:
        """log p(E | q, k) of admissible structures E (one-hot along the constraint axis), ``[..., ]``."""
        return (E * torch.where(E > 0, self.log_marginals, torch.zeros_like(self.logits))).sum((-1, -2))


def _normalise_prior(log_prior: torch.Tensor, axis: int) -> torch.Tensor:
    """log π normalised over each unit's choices (π may be given up to a constant per unit)."""
    return torch.log_softmax(log_prior, dim=axis)


def posterior(q: torch.Tensor, k: torch.Tensor, *, constraint: str = "row",
              log_prior: torch.Tensor | None = None, potential: Potential = "dot",
              scale: float | None = None, sigma: float = 1.0, w: torch.Tensor | None = None) -> Posterior:
    """The posterior over adjacency structures for queries ``q`` ``[..., m, d]`` and keys ``k`` ``[..., n, d]``.

    ``log_prior`` (log π, broadcastable to ``[..., m, n]``; see :mod:`hopfieldkit.bayes.priors`) is
    normalised along the constraint axis; a unit whose every choice is forbidden is an error.
    """
    check_tensor("q", q, min_dim=2)
    check_tensor("k", k, min_dim=2)
    check_choice("constraint", constraint, CONSTRAINTS)
    if q.shape[-1] != k.shape[-1] and not callable(potential):
        raise ValueError(f"q and k must share their last dimension, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if q.dtype != k.dtype:
        raise TypeError(f"q has dtype {q.dtype} but k has dtype {k.dtype}")
    s = potential_scores(q, k, potential, scale=scale, sigma=sigma, w=w)
    axis = -1 if constraint == "row" else -2
    if log_prior is not None:
        if not isinstance(log_prior, torch.Tensor):
            raise TypeError(f"log_prior must be a tensor (see hopfieldkit.bayes.priors), got {type(log_prior).__name__}")
        try:
            lp = torch.broadcast_to(log_prior.to(s.dtype), s.shape)
        except RuntimeError as exc:
            raise ValueError(f"log_prior of shape {tuple(log_prior.shape)} does not broadcast to the scores "
                             f"[..., m, n] = {tuple(s.shape)}") from exc
        if torch.isnan(lp).any():
            raise ValueError("log_prior contains NaN")
        forbidden = torch.isneginf(lp).all(dim=axis)
        if bool(forbidden.any()):
            unit = "query" if constraint == "row" else "key"
            idx = torch.nonzero(forbidden)[0].tolist()
            raise ValueError(f"log_prior forbids every {'parent' if constraint == 'row' else 'slot'} of "
                             f"{unit} {idx[-1]} (batch index {tuple(idx[:-1])}): no admissible structure")
        s = s + _normalise_prior(lp, axis)
    else:  # the uniform prior π = 1/(choices per unit): a proper prior, so log_evidence is one too
        s = s - math.log(s.shape[axis])
    return Posterior(s, constraint)


# ----------------------------------------------------------------------------------------------
# Inference modes: turn the posterior into the weights the value function uses
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Marginal:
    """Posterior marginals (softmax attention)."""

    def weights(self, post: Posterior) -> torch.Tensor:
        return post.marginals


@dataclass(frozen=True)
class MAP:
    """The MAP structure (hard attention); gradients pass straight through the marginals."""

    def weights(self, post: Posterior) -> torch.Tensor:
        p = post.marginals
        return post.map() + p - p.detach()


@dataclass(frozen=True)
class TopK:
    """The posterior truncated to each unit's k most probable choices (the AiT bottleneck).

    ``renormalize=True``: the posterior conditioned on the choice being among the top k
    (softmax over the kept logits); ``False``: the marginals with the others zeroed.
    """

    k: int
    renormalize: bool = True

    def weights(self, post: Posterior) -> torch.Tensor:
        self._check(post)
        idx = post.logits.topk(self.k, dim=post.axis).indices
        keep = torch.zeros_like(post.logits, dtype=torch.bool).scatter_(post.axis, idx, True)
        if self.renormalize:
            return torch.softmax(post.logits.masked_fill(~keep, float("-inf")), dim=post.axis)
        return post.marginals * keep

    def select(self, post: Posterior) -> tuple[torch.Tensor, torch.Tensor]:
        """The same weights in sparse form: ``(w, index)``, each ``[..., k]`` along the posterior's
        axis, with ``weights(post) = zeros.scatter(axis, index, w)``. Costs O(k) per unit after the
        top-k instead of O(n): the AiT write reads only the k chosen patches."""
        self._check(post)
        top = post.logits.topk(self.k, dim=post.axis)
        if self.renormalize:
            return torch.softmax(top.values, dim=post.axis), top.indices
        return post.marginals.gather(post.axis, top.indices), top.indices

    def _check(self, post: Posterior) -> None:
        size = post.logits.shape[post.axis]
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"topk k must be a positive int, got {self.k!r}")
        if self.k > size:
            what = "keys" if post.constraint == "row" else "queries"
            raise ValueError(f"topk k={self.k} is larger than the number of {what} ({size})")


@dataclass(frozen=True)
class Sample:
    """A relaxed structure sample (Gumbel-softmax at temperature ``tau``); ``hard=True`` gives a
    one-hot sample with straight-through gradients."""

    tau: float = 1.0
    hard: bool = False
    generator: torch.Generator | None = None

    def weights(self, post: Posterior) -> torch.Tensor:
        if not self.tau > 0:
            raise ValueError(f"sample temperature tau must be positive, got {self.tau}")
        u = torch.rand(post.logits.shape, generator=self.generator, dtype=post.logits.dtype).to(post.logits.device)
        g = -torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-12)))
        y = torch.softmax((post.logits + g) / self.tau, dim=post.axis)
        if not self.hard:
            return y
        idx = y.argmax(dim=post.axis, keepdim=True)
        return torch.zeros_like(y).scatter_(post.axis, idx, 1.0) + y - y.detach()


Inference = Union[str, Marginal, MAP, TopK, Sample]


def parse_inference(inference: Inference):
    """``"marginal"``, ``"map"``, ``"topk(k)"``, ``"topk(k, renormalize=False)"``, ``"sample"``,
    ``"sample(tau)"``, or an instance of :class:`Marginal`/:class:`MAP`/:class:`TopK`/:class:`Sample`."""
    if isinstance(inference, (Marginal, MAP, TopK, Sample)):
        return inference
    if not isinstance(inference, str):
        raise TypeError(f"inference must be a string or an inference-mode object, got {type(inference).__name__}")
    s = inference.replace(" ", "")
    if s == "marginal":
        return Marginal()
    if s == "map":
        return MAP()
    m = re.fullmatch(r"topk\((\d+)(?:,renormalize=(True|False))?\)", s)
    if m:
        return TopK(int(m.group(1)), m.group(2) != "False")
    m = re.fullmatch(r"sample(?:\(([0-9.eE+-]+)\))?", s)
    if m:
        return Sample(float(m.group(1)) if m.group(1) else 1.0)
    raise ValueError(f"inference must be 'marginal', 'map', 'topk(k[, renormalize=False])' or 'sample[(tau)]', "
                     f"got {inference!r}")


# ----------------------------------------------------------------------------------------------
# Value functions: the expectation of v_i(x, E) under the weights
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Linear:
    """v_i(x, E) = Σ_j E_ij v_j: output = W v."""

    def __call__(self, W: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return W @ v


@dataclass(frozen=True)
class Multihop:
    """Paths of length 0..K: output = Σ_h w_h W^h v, w uniform by default (K = 2: (I + W + W²)v/3).

    Each hop is a fresh parent choice from the same posterior (hop h's structure is an independent
    draw), so the expectation of the path-h value E[E¹⋯E^h] v equals W^h v. Needs m = n.
    """

    K: int = 2
    weights: tuple[float, ...] | None = None

    def __call__(self, W: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        m, n = W.shape[-2:]
        if m != n:
            raise ValueError(f"multihop needs as many queries as keys (self-attention), got m={m}, n={n}")
        if self.K < 0:
            raise ValueError(f"multihop K must be >= 0, got {self.K}")
        w = self.weights or tuple([1.0 / (self.K + 1)] * (self.K + 1))
        if len(w) != self.K + 1:
            raise ValueError(f"multihop weights must have K + 1 = {self.K + 1} entries, got {len(w)}")
        out, hop = w[0] * v, v
        for h in range(1, self.K + 1):
            hop = W @ hop
            out = out + w[h] * hop
        return out


def parse_value_fn(value_fn):
    if isinstance(value_fn, (Linear, Multihop)) or (callable(value_fn) and not isinstance(value_fn, str)):
        return value_fn
    if value_fn == "linear":
        return Linear()
    m = re.fullmatch(r"multihop(?:\((\d+)\))?", str(value_fn).replace(" ", ""))
    if m:
        return Multihop(int(m.group(1)) if m.group(1) else 2)
    raise ValueError(f"value_fn must be 'linear', 'multihop(K)' or a callable (W, v) -> output, got {value_fn!r}")
