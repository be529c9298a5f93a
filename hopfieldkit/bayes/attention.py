"""Attention as posterior inference: the functional form, EM, the module, and the named special cases.

Every mechanism is a choice of (constraint, prior, potential, inference mode, value function,
iterations + M-step):

    out = value_fn(weights(posterior(q, k)), v)                    (one E-step)
    q ← m_step(weights(posterior(q, k)), v, q), ``iters`` times   (EM; returns the final q)

| mechanism                         | constraint | prior   | potential         | inference | value / M-step |
|-----------------------------------|------------|---------|-------------------|-----------|----------------|
| self / cross attention (SDPA)     | row        | mask    | dot, 1/√d         | marginal  | linear         |
| hard / top-k attention            | row        |         | dot               | map/topk  | linear         |
| modern Hopfield update [R]        | row        | uniform | dot, scale β      | marginal  | mean, T iters  |
| slot attention w/o GRU (GMM EM)   | column     | uniform | gaussian or dot   | marginal  | mean, T iters  |
| workspace write / broadcast [GWS] | row        |         | dot               | topk / m. | linear         |
| Multihop                          | row        | causal… | dot               | marginal  | multihop(K)    |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .._checks import check_positive, check_tensor
from . import priors as P
from .posterior import (Inference, Posterior, Potential, parse_inference, parse_value_fn, posterior)

MStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def mean_m_step(W: torch.Tensor, v: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
    """M-step of a mixture with fixed variance: each query becomes the W-weighted mean of the
    values, q_i = Σ_j W_ij v_j / Σ_j W_ij (mean-shift for row weights; GMM means for column)."""
    return (W @ v) / W.sum(-1, keepdim=True).clamp_min(torch.finfo(W.dtype).tiny)


def _parse_m_step(m_step):
    if m_step is None or callable(m_step):
        return m_step
    if m_step == "mean":
        return mean_m_step
    raise ValueError(f"m_step must be None, 'mean' or a callable (weights, v, q) -> q, got {m_step!r}")


def _check_qkv(q, k, v):
    check_tensor("q", q, min_dim=2)
    check_tensor("k", k, min_dim=2)
    check_tensor("v", v, min_dim=2)
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys n, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if v.dtype != q.dtype:
        raise TypeError(f"v has dtype {v.dtype} but q has dtype {q.dtype}")


@dataclass
class EMTrace:
    """What :func:`em` returns: the final queries and, per iteration, queries and log-evidence."""

    q: torch.Tensor
    queries: list[torch.Tensor]
    log_evidence: torch.Tensor       # [iters, ...]: log p under the posterior of each E-step
    posterior: Posterior             # the last E-step's posterior
    weights: torch.Tensor            # the last E-step's weights


def em(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, iters: int = 3, m_step: str | MStep = "mean",
       constraint: str = "row", log_prior: torch.Tensor | None = None, potential: Potential = "dot",
       scale: float | None = None, sigma: float = 1.0, w: torch.Tensor | None = None,
       inference: Inference = "marginal") -> EMTrace:
    """Alternate the E-step (posterior over structures) and the M-step (queries ← m_step) ``iters`` times.

    With ``constraint="column"``, the gaussian potential and ``m_step="mean"`` this is EM for an
    isotropic Gaussian mixture with means q (slot attention without its GRU): the log-evidence
    (the mixture log-likelihood up to a constant) never decreases. With ``constraint="row"``,
    ``potential="dot"``, ``scale=β`` and k = v = X it is the modern Hopfield update.
    """
    _check_qkv(q, k, v)
    check_positive("iters", iters, integer=True)
    step = _parse_m_step(m_step)
    if step is None:
        raise ValueError("em needs an m_step")
    if step is mean_m_step and iters > 1 and v.shape[-1] != q.shape[-1] and not callable(potential):
        raise ValueError(f"m_step='mean' replaces the queries by weighted means of v, so v must have the queries' "
                         f"width {q.shape[-1]}, got v {tuple(v.shape)}")
    mode = parse_inference(inference)
    queries, evid = [q], []
    for _ in range(iters):
        post = posterior(q, k, constraint=constraint, log_prior=log_prior, potential=potential,
                         scale=scale, sigma=sigma, w=w)
        W = mode.weights(post)
        evid.append(post.log_evidence)
        q = step(W, v, q)
        queries.append(q)
    return EMTrace(q, queries, torch.stack(evid), post, W)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, constraint: str = "row",
              log_prior: torch.Tensor | None = None, potential: Potential = "dot", scale: float | None = None,
              sigma: float = 1.0, w: torch.Tensor | None = None, inference: Inference = "marginal",
              value_fn="linear", iters: int = 1, m_step: str | MStep | None = None) -> torch.Tensor:
    """Attention as the posterior expectation of the value function, ``[..., m, d_v]``.

    Args:
        q, k, v: ``[..., m, d]``, ``[..., n, d]``, ``[..., n, d_v]``.
        constraint: ``"row"`` (softmax over keys) or ``"column"`` (softmax over queries/slots).
        log_prior: log π, broadcastable to ``[..., m, n]`` (see :mod:`hopfieldkit.bayes.priors`).
        potential, scale, sigma, w: the potential (``"dot"`` with scale 1/√d by default).
        inference: ``"marginal"``, ``"map"``, ``"topk(k[, renormalize=False])"``, ``"sample[(tau)]"``.
        value_fn: ``"linear"``, ``"multihop(K)"``, a :class:`~hopfieldkit.bayes.Multihop`, or a callable.
        iters, m_step: with an ``m_step`` (``"mean"`` or a callable), run :func:`em` for ``iters``
            rounds and return the final queries (Hopfield iterates, slots).
    """
    _check_qkv(q, k, v)
    step = _parse_m_step(m_step)
    if step is not None:
        return em(q, k, v, iters=iters, m_step=step, constraint=constraint, log_prior=log_prior,
                  potential=potential, scale=scale, sigma=sigma, w=w, inference=inference).q
    if iters != 1:
        raise ValueError("iters > 1 needs an m_step (e.g. m_step='mean'): without one nothing changes between iterations")
    post = posterior(q, k, constraint=constraint, log_prior=log_prior, potential=potential,
                     scale=scale, sigma=sigma, w=w)
    return parse_value_fn(value_fn)(parse_inference(inference).weights(post), v)


# ----------------------------------------------------------------------------------------------
# The module
# ----------------------------------------------------------------------------------------------
class StructuralAttention(nn.Module):
    """Multi-head attention computed as structural inference (see the module docstring).

    Args:
        dim: width of the query input (and of the output).
        heads, head_dim: heads and their width (default ``dim // heads``).
        kv_dim: width of the context (keys/values) input; default ``dim``.
        bias: biases in the projections. ``out_proj``: apply W_O after merging heads.
        constraint, potential, sigma, inference, value_fn, iters, m_step: as in :func:`attention`.
        causal: add the causal prior. ``learned_bias``: ``(m, n)`` to learn a log-prior bias.
    """

    def __init__(self, dim: int, heads: int = 1, head_dim: int | None = None, *, kv_dim: int | None = None,
                 bias: bool = True, out_proj: bool = True, constraint: str = "row", potential: Potential = "dot",
                 sigma: float = 1.0, inference: Inference = "marginal", value_fn="linear", iters: int = 1,
                 m_step: str | MStep | None = None, causal: bool = False,
                 learned_bias: tuple[int, int] | None = None):
        super().__init__()
        check_positive("dim", dim, integer=True)
        check_positive("heads", heads, integer=True)
        if head_dim is None:
            if dim % heads:
                raise ValueError(f"dim={dim} is not divisible by heads={heads}; give head_dim")
            head_dim = dim // heads
        kv_dim = dim if kv_dim is None else kv_dim
        self.dim, self.heads, self.head_dim = dim, heads, head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner, bias=bias)
        self.to_k = nn.Linear(kv_dim, inner, bias=bias)
        self.to_v = nn.Linear(kv_dim, inner, bias=bias)
        self.to_out = nn.Linear(inner, dim, bias=bias) if out_proj else nn.Identity()
        if not out_proj and inner != dim:
            raise ValueError(f"out_proj=False needs heads * head_dim == dim, got {inner} != {dim}")
        self.w = nn.Parameter(torch.randn(head_dim) / math.sqrt(head_dim)) if potential == "additive" else None
        self.bias_prior = P.LearnedBias(*learned_bias) if learned_bias is not None else None
        self.options = dict(constraint=constraint, potential=potential, sigma=sigma, inference=inference,
                            value_fn=value_fn, iters=iters, m_step=m_step)
        parse_inference(inference)
        parse_value_fn(value_fn)
        self.causal = causal

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *,
                attn_mask: torch.Tensor | None = None, key_padding_mask: torch.Tensor | None = None,
                log_prior: torch.Tensor | None = None, return_posterior: bool = False):
        """``x``: ``[B, m, dim]``; ``context``: ``[B, n, kv_dim]`` (default x). ``attn_mask``: bool
        (True = may attend) or additive float ``[m, n]``/``[B, H, m, n]``; ``key_padding_mask``:
        bool ``[B, n]`` (True = ignore); ``log_prior``: any extra log-prior."""
        check_tensor("x", x, ndim=3)
        ctx = x if context is None else check_tensor("context", context, ndim=3)
        if ctx.shape[0] != x.shape[0]:
            raise ValueError(f"x and context must share the batch size, got {x.shape[0]} and {ctx.shape[0]}")
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(ctx)), self._split(self.to_v(ctx))
        m, n = q.shape[-2], k.shape[-2]
        lp = torch.zeros((), dtype=q.dtype, device=q.device)
        if self.causal:
            lp = lp + P.causal(m, n, dtype=q.dtype, device=q.device)
        if attn_mask is not None:
            lp = lp + P.from_mask(attn_mask, dtype=q.dtype)
        if key_padding_mask is not None:
            lp = lp + P.padding(key_padding_mask, dtype=q.dtype).unsqueeze(1)
        if self.bias_prior is not None:
            lp = lp + self.bias_prior().to(q.dtype)
        if log_prior is not None:
            lp = lp + log_prior
        lp = None if lp.dim() == 0 else lp
        opts = dict(self.options)
        out = attention(q, k, v, log_prior=lp, w=self.w, **opts)
        out = self.to_out(out.transpose(1, 2).reshape(x.shape[0], m, self.heads * self.head_dim))
        if return_posterior:
            return out, posterior(q, k, constraint=opts["constraint"], log_prior=lp, potential=opts["potential"],
                                  sigma=opts["sigma"], w=self.w)
        return out


# ----------------------------------------------------------------------------------------------
# Named special cases
# ----------------------------------------------------------------------------------------------
def self_attention(dim: int, heads: int = 1, *, causal: bool = False, **kw) -> StructuralAttention:
    """Multi-head self-attention = row constraint, dot potential (1/√d), marginal, linear values."""
    return StructuralAttention(dim, heads, causal=causal, **kw)


def cross_attention(dim: int, kv_dim: int, heads: int = 1, **kw) -> StructuralAttention:
    """Cross-attention from queries of width ``dim`` to a context of width ``kv_dim``."""
    return StructuralAttention(dim, heads, kv_dim=kv_dim, **kw)


def hard_attention(dim: int, heads: int = 1, **kw) -> StructuralAttention:
    """Hard attention: the MAP structure (straight-through gradients)."""
    return StructuralAttention(dim, heads, inference="map", **kw)


def topk_attention(dim: int, k: int, heads: int = 1, *, renormalize: bool = True, **kw) -> StructuralAttention:
    """Top-k attention: the posterior truncated to each query's k best keys."""
    return StructuralAttention(dim, heads, inference=f"topk({k}, renormalize={renormalize})", **kw)


def multihop_attention(dim: int, heads: int = 1, K: int = 2, **kw) -> StructuralAttention:
    """Multihop self-attention: Σ_{h ≤ K} A^h V/(K + 1) (paths of length 0..K)."""
    return StructuralAttention(dim, heads, value_fn=f"multihop({K})", **kw)


class InducingPointAttention(nn.Module):
    """Learned latents (inducing points) attend to a set (Perceiver's cross-attention, the first
    half of the Set Transformer's ISAB): queries = latents, keys/values = inputs, row constraint."""

    def __init__(self, dim: int, num_latents: int, heads: int = 1, **kw):
        super().__init__()
        check_positive("num_latents", num_latents, integer=True)
        self.latents = nn.Parameter(torch.randn(num_latents, dim) / math.sqrt(dim))
        self.attend = StructuralAttention(dim, heads, **kw)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        lat = self.latents.to(x.dtype).expand(x.shape[0], -1, -1)
        return self.attend(lat, x, key_padding_mask=key_padding_mask)


class SlotAttentionEM(nn.Module):
    """Slot attention without its GRU/MLP: EM on an isotropic Gaussian mixture whose means are the
    slots. Column constraint (each input explained by one slot), softmax over slots, M-step =
    responsibility-weighted mean of the inputs, ``iters`` rounds. Slots start at learned means."""

    def __init__(self, dim: int, num_slots: int, iters: int = 3, sigma: float = 1.0):
        super().__init__()
        check_positive("num_slots", num_slots, integer=True)
        check_positive("sigma", sigma)
        self.slots = nn.Parameter(torch.randn(num_slots, dim))
        self.iters, self.sigma = iters, sigma

    def forward(self, x: torch.Tensor, slots: torch.Tensor | None = None, return_trace: bool = False):
        check_tensor("x", x, min_dim=2)
        s = self.slots.to(x.dtype).expand(*x.shape[:-2], -1, -1) if slots is None else slots
        trace = em(s, x, x, iters=self.iters, m_step="mean", constraint="column", potential="gaussian",
                   sigma=self.sigma)
        return trace if return_trace else trace.q


def hopfield_attention(xi: torch.Tensor, patterns: torch.Tensor, beta: float, iters: int = 1) -> torch.Tensor:
    """The modern Hopfield update as EM: states ``xi`` ``[..., m, d]`` are the queries, the stored
    patterns are keys and values, potential β q·k, uniform prior, M-step = weighted mean;
    ``iters`` rounds equal ``iters`` CCCP updates of :class:`hopfieldkit.HopfieldEnergy`."""
    return attention(xi, patterns, patterns, scale=beta, m_step="mean", iters=iters)


def workspace_write(slots: torch.Tensor, tokens: torch.Tensor, k: int, *, scale: float | None = None,
                    renormalize: bool = True) -> torch.Tensor:
    """Shared-workspace write [GWS]: each slot (query) chooses among the tokens (parents) with a
    top-k truncated posterior, and reads their weighted values. ``[..., slots, d]``."""
    return attention(slots, tokens, tokens, scale=scale, inference=f"topk({k}, renormalize={renormalize})")


def workspace_broadcast(tokens: torch.Tensor, slots: torch.Tensor, *, scale: float | None = None) -> torch.Tensor:
    """Broadcast [GWS]: each token (query) chooses among the slots (parents). ``[..., tokens, d]``."""
    return attention(tokens, slots, slots, scale=scale)
