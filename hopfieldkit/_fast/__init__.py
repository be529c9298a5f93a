"""hopfieldkit's fast paths, apart from the equations they compute.

The energy files hold the math as plain torch expressions; where a faster way to the same numbers
exists, they call one function from here, which returns the result, or ``None`` when no fast path
applies (then the plain expression runs). Each fast path is tested equal to its plain expression.

- :mod:`.chunked_update`: the recorded ``update`` descent in chunks of free-running steps.
- :mod:`.policy`: every decision of when a fast path applies (graph needed, tracing, sizes).
- :mod:`.onednn`: packed oneDNN products on the CPU (float32).
- :mod:`.stream`: products over blocks of patterns with a running softmax (any dtype and device).
- :mod:`.few_patterns`: the update of a memory of a few patterns, scores laid out pattern-major.
- :mod:`.second_moment`: Σ_i p_i x_i x_iᵀ of many states as one product with kept outer products.
- :mod:`.lse_op`: lse(β, Xᵀξ) as an autograd op with a one-product backward.
- :mod:`.et_folded`: the Energy Transformer's descent direction with β and signs folded into the weights.
- :mod:`.attention`: the value read of a layer's association as torch's fused attention kernel.
- :mod:`.cache`: values kept between calls, verified against their sources, :func:`clear_caches`.
- :mod:`.malloc`: :func:`retain_freed_memory`, an opt-in allocator setting for the CPU.
"""
from __future__ import annotations

import torch

from . import attention, cache, chunked_update, et_folded, few_patterns, lse_op, malloc, onednn, policy, second_moment, stream
from .cache import cached, clear_caches
from .malloc import retain_freed_memory

__all__ = ["kept", "lse", "hopfield_step", "hopfield_step_and_lse", "second_moment_of", "value_read", "et_direction", "cached", "clear_caches", "retain_freed_memory", "policy"]


def kept(owner: object, name: str, sources: tuple, build):
    """``build()`` kept in ``owner`` while its source tensors are unchanged (:func:`.cache.cached`),
    where a value made from them may be kept (:func:`.policy.cacheable` of the first); else built anew."""
    if policy.cacheable(sources[0]):
        return cache.cached(owner, name, sources, build)
    return build()


def lse(xi: torch.Tensor, X: torch.Tensor, b, mask: torch.Tensor | None = None,
        owner: object | None = None) -> torch.Tensor | None:
    """lse(β, Xᵀξ) as ``[..., 1]`` for states ``xi`` [..., d], patterns ``X`` [..., N, d] and a
    broadcast-ready β, or None where only the plain expression applies."""
    as_op = policy.lse_op(xi, X, b, mask)
    if as_op and not policy.no_graph(xi, X):
        return lse_op.LseSimilarity.apply(xi, X, b, owner)
    route = policy.hopfield_route(X, xi, b, mask)
    if route == "stream":
        return stream.lse_and_step(b * xi, X, mask, step=False)[0] / b
    return lse_op.forward(xi, X, b, owner, keep=False, route=route)[0] if as_op else None


def hopfield_step(xi: torch.Tensor, X: torch.Tensor, b, mask: torch.Tensor | None = None,
                  owner: object | None = None) -> torch.Tensor | None:
    """softmax(β Xξ)ᵀX ``[..., d]`` (one CCCP update), or None where only the plain expression applies."""
    route = policy.hopfield_route(X, xi, b, mask)
    if route == "onednn":
        return lse_op.packed_patterns(owner, X, xi).step(b * xi)
    if route == "stream":
        return stream.lse_and_step(b * xi, X, mask, step=True)[1]
    if route == "few":
        return few_patterns.step(xi, X, b)
    return None


def hopfield_step_and_lse(xi: torch.Tensor, X: torch.Tensor, b, mask: torch.Tensor | None = None,
                          owner: object | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(softmax(β Xξ)ᵀX ``[..., d]``, lse(β, Xᵀξ) ``[..., 1]``) from one pass over the scores, or
    None where only the plain expression applies."""
    route = policy.hopfield_route(X, xi, b, mask)
    q = b * xi
    if route == "onednn":
        packed = lse_op.packed_patterns(owner, X, xi)
        total, kept = packed.lse(q, keep=True)
        step = packed.weighted_sum(kept, total)
        packed.release(kept)
        return step, total / b
    if route == "stream":
        total, step = stream.lse_and_step(q, X, mask, step=True)
        return step, total / b
    if route == "few":
        step, total = few_patterns.step_and_lse(xi, X, b)
        return step, total / b
    return None


def second_moment_of(p: torch.Tensor, X: torch.Tensor, mask: torch.Tensor | None = None,
                     owner: object | None = None) -> torch.Tensor | None:
    """Σ_i p_i x_i x_iᵀ ``[..., d, d]`` for weights ``p`` [..., N] over one memory ``X`` [N, d], or
    None where only the plain expression applies."""
    if not policy.second_moment(p, X, mask):
        return None
    return second_moment.second_moment(p, X, owner)


def value_read(xi: torch.Tensor, K: torch.Tensor, V: torch.Tensor, b, mask: torch.Tensor | None,
               dropout_p: float, need_weights: bool) -> torch.Tensor | None:
    """softmax(β ξKᵀ)V of a layer's association (:mod:`.attention`), or None where the plain
    expression must run (the weights are wanted)."""
    if not policy.fused_read(need_weights):
        return None
    return attention.read(xi, K, V, b, mask, dropout_p)


def et_direction(energy, x: torch.Tensor, beta, mask: torch.Tensor | None) -> torch.Tensor | None:
    """∂E/∂g of the Energy Transformer energy in its folded form, or None where a graph is needed."""
    if not policy.et_graph_free(energy, x, beta):
        return None
    return et_folded.direction(energy, x, beta, mask)
