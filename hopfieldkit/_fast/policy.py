"""When a fast path applies: every such decision of hopfieldkit is made here.

A fast path computes the same numbers as the plain expression it stands in for (each is tested
equal to it); it differs in how: kernels without a derivative, buffers written in place, values
kept between calls. Each of those is wrong in some situation, and this module names them:

- :func:`tracing`: inside torch.compile tracing or a torch.func transform (grad, vmap, jvp). Only
  plain torch ops run there: the transform must see every op, and nothing computed inside it may
  be kept (its tensors belong to the transform).
- :func:`needs_graph` (an :class:`~hopfieldkit.Energy` module) and :func:`graph_reach` (a plain
  callable, from the graph of its first evaluation in ``descend``): whether ∂E/∂ξ must stay
  differentiable, because grad mode is on and ξ, β or a tensor the energy uses requires grad. If so, gradients are taken with torch.func and
  products stay differentiable; if not, one graph-free ``torch.autograd.grad`` call does the work.
- :func:`hopfield_route`: how the two products of a Hopfield energy (the scores Xξ and the
  weighted sum pᵀX) run for states ``xi`` and patterns ``X`` (not tracing):
  ``"onednn"``: X packed once for oneDNN's linear kernel, block by block (float32, CPU, one shared
  ``[N, d]`` memory without a mask, at least :data:`~.onednn.MIN_PATTERN_ELEMENTS` entries and
  :data:`~.onednn.MIN_ROWS` states, no graph, the kernels pass their one-time check);
  ``"stream"``: plain products over blocks of patterns with a running softmax, so the ``[B, N]``
  scores are never held whole (no graph, and the whole score matrix would exceed
  :data:`~.stream.STREAM_BYTES`; any dtype, device, per-sample memories and masks);
  ``"few"`` (the update only): the scores laid out pattern-major for a memory of fewer than
  :data:`~.few_patterns.MAX_PATTERNS` patterns, with or without a graph (CPU, one shared memory
  without a mask, one β, at least :data:`~.few_patterns.MIN_ROWS` states);
  ``"plain"``: the expression as written in the energy's file.
- :func:`chunked_update`: whether ``descend(method="update")`` (with the energy recorded, or with
  a tolerance or trajectory to judge) runs in chunks of free-running steps (:mod:`.chunked_update`): the Hopfield energy's own update and
  energy (a subclass that overrides either runs the plain loop), no graph needed, not tracing, no
  autocast, a
  score matrix of at most :data:`~.chunked_update.MAX_SCORES` entries (beyond, a step's fixed costs
  no longer matter), and with ``trajectory=True`` at most
  :data:`~.chunked_update.MAX_TRAJECTORY` entries of states kept.
- :func:`second_moment`: whether Σ_i p_i x_i x_iᵀ (the Hopfield Jacobian's) runs as one product
  ``[K, N] @ [N, d²]`` with the outer products kept per energy (:mod:`.second_moment`): one shared
  ``[N, d]`` memory without a mask, no graph, not tracing, more states K than the dimension d, and
  at most :data:`~.second_moment.MAX_OUTER` entries of outer products.
- :func:`lse_op`: whether :func:`~hopfieldkit.lse_similarity` runs as its own autograd op (the
  softmax weights of the forward pass kept for a one-product backward): CPU, float32/64, one
  shared memory without a mask, β a constant, not tracing.
- :func:`fused_read`: whether the value read of a layer's association, softmax(β ξKᵀ)V, runs as
  torch's fused attention kernel (:mod:`.attention`): the weights are not requested and no
  torch.func transform runs.
- :func:`cacheable`: whether a value derived from a tensor (a packed copy, M²) may be kept.
- :func:`et_graph_free`: whether the Energy Transformer's descent direction may take its folded,
  in-place form (no graph needed, not tracing).

``HOPFIELDKIT_ONEDNN=0`` in the environment switches the oneDNN route off.
"""
from __future__ import annotations

import torch
from torch import nn
from torch._C import _functorch
from torch._C._functorch import is_functorch_wrapped_tensor

from . import chunked_update as chunked, few_patterns, onednn, second_moment as moment, stream


def tracing() -> bool:
    """Inside torch.compile tracing or a torch.func transform."""
    return torch.compiler.is_compiling() or _functorch.peek_interpreter_stack() is not None


def _requires_grad(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def no_graph(*tensors: object) -> bool:
    """No autograd graph is needed through ``tensors``: grad mode is off or none requires grad."""
    if not torch.is_grad_enabled():
        return True
    for t in tensors:                       # (a loop: this runs on every step of every descent)
        if isinstance(t, torch.Tensor) and t.requires_grad:
            return False
    return True


def needs_graph(energy: object, xi: torch.Tensor, beta: object) -> bool:
    """Whether ∂E/∂ξ must stay differentiable: grad mode is on and ξ, β or a tensor the energy
    holds requires grad. A plain callable may close over such tensors unseen: then True."""
    from ..energy import SumEnergy

    if not torch.is_grad_enabled():
        return False
    if xi.requires_grad or _requires_grad(beta):
        return True
    if isinstance(energy, SumEnergy):      # its plain-callable parts may close over tensors unseen
        return any(needs_graph(p, xi, beta) for p in energy._fns)
    if not isinstance(energy, nn.Module):
        return True
    held = [*energy.parameters(), *energy.buffers()]
    for m in energy.modules():
        held += [v for v in vars(m).values() if isinstance(v, torch.Tensor)]
    return any(t.requires_grad for t in held)


def graph_reach(out: torch.Tensor, x: torch.Tensor) -> tuple[bool, bool]:
    """For a plain callable's value ``out`` computed from ``x`` (its tensors cannot be listed):
    (its graph reaches ``x``, it reaches another leaf that requires grad). The second is
    :func:`needs_graph` for a plain callable, decided once from its first evaluation."""
    if out.grad_fn is None:
        return False, False
    seen, todo, hits_x, other = set(), [out.grad_fn], False, False
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)        # a leaf's AccumulateGrad node
        if var is not None:
            if var is x:
                hits_x = True
            else:
                other = True
        todo.extend(f for f, _ in fn.next_functions)
    return hits_x, other


def first_gradient_needs_graph(x: torch.Tensor, beta: object) -> bool:
    """Whether the first gradient of a plain callable must be taken by torch.func (ξ or β carries
    a graph, or a transform is running), before its graph can be inspected."""
    return is_functorch_wrapped_tensor(x) or (torch.is_grad_enabled() and (x.requires_grad or _requires_grad(beta)))


def graph_free_autodiff(xi: torch.Tensor, needs: bool) -> bool:
    """Autodiff may use one plain ``torch.autograd.grad`` call (no graph kept) instead of torch.func."""
    return not needs and not is_functorch_wrapped_tensor(xi)


def hopfield_route(X: torch.Tensor, xi: torch.Tensor, b: object, mask: torch.Tensor | None = None) -> str:
    """``"onednn" | "stream" | "few" | "plain"`` for the products of states ``xi`` [..., d] with patterns
    ``X`` [..., N, d] (module docstring)."""
    if tracing():
        return "plain"
    if no_graph(xi, X, b):
        if X.dim() == 2 and mask is None and onednn.applies(X, xi):
            return "onednn"
        if stream.applies(X, xi):
            return "stream"
    if few_patterns.applies(X, xi, b, mask):
        return "few"
    return "plain"


def chunked_update(energy: object, xi: torch.Tensor, beta: object, steps: int, keep_traj: bool) -> bool:
    """``descend(method="update")`` may run in chunks (module docstring)."""
    from ..hopfield import HopfieldEnergy

    if not isinstance(energy, HopfieldEnergy) or steps < 1 or tracing() or torch.is_autocast_enabled(xi.device.type):
        return False
    kind = type(energy)
    if kind.update is not HopfieldEnergy.update or kind.forward is not HopfieldEnergy.forward:
        return False                    # an update or energy of its own: only the plain loop runs it
    if needs_graph(energy, xi, beta):
        return False
    rows = max(1, xi.numel() // xi.shape[-1])
    if rows * energy.num_patterns > chunked.MAX_SCORES:
        return False
    return not keep_traj or (steps + 1) * xi.numel() <= chunked.MAX_TRAJECTORY


def second_moment(p: torch.Tensor, X: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Σ_i p_i x_i x_iᵀ may run as one product with the outer products kept (module docstring)."""
    if mask is not None or tracing() or not cacheable(X) or (torch.is_grad_enabled() and p.requires_grad):
        return False
    return moment.applies(p, X)


def lse_op(xi: torch.Tensor, X: torch.Tensor, b: object, mask: torch.Tensor | None = None) -> bool:
    """:func:`~hopfieldkit.lse_similarity` may run as its own autograd op (module docstring)."""
    if xi.device.type != "cpu" or X.device.type != "cpu" or xi.dtype not in (torch.float32, torch.float64):
        return False
    if X.dim() != 2 or mask is not None or tracing():
        return False
    return not _requires_grad(b)


def fused_read(need_weights: bool) -> bool:
    """The association's value read may run as the fused attention kernel (module docstring)."""
    return not need_weights and _functorch.peek_interpreter_stack() is None


def cacheable(X: torch.Tensor) -> bool:
    """Whether a value computed from X may be kept: a plain tensor (no transform, no tracing)
    that needs no gradient here."""
    return not tracing() and not (torch.is_grad_enabled() and X.requires_grad)


def et_graph_free(energy: object, x: torch.Tensor, beta: object) -> bool:
    """The ET descent direction may take its folded, in-place form."""
    return not tracing() and not needs_graph(energy, x, beta)
