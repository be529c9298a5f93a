"""A fast path for the workspace read in training on the CPU: the Hopfield read and its skip path as one
autograd node.

:meth:`ait.models.ait.GlobalWorkspace.hopfield_read` holds the equation (one CCCP step of
``hopfieldkit.LowRankPriorEnergy`` through ``hopfieldkit.descend``), and the block adds z beside it:

    Y = f_LT(γ) = γ W_LTᵀ + b_LT  [M, D],   S = β Y Zᵀ  [M, R],   P = softmax(S) over the M priors,
    out = Z + Pᵀ Y   (Pᵀ Y alone without ``read_skip``)

for the R = B·N rows of Z. At the tiny sizes a CPU trains, the read's ~150 ops (the descent's
bookkeeping, autograd nodes, the skip's add and the gradient accumulations it causes) cost several
times its arithmetic. Here the forward runs the same products without a graph, the scores laid out
prior-major as ``hopfieldkit``'s few-pattern route lays them out, and one hand-written backward
returns every gradient:

    dP = Y Gᵀ,   dS = P ⊙ (dP − Σ_m P ⊙ dP),   dZ = G + β dSᵀ Y,   dY = P G + β dS Z,
    dβ = Σ dS ⊙ S / β,   dγ = dY W_LT,   dW_LT = dYᵀ γ,   db_LT = Σ_m dY

(G = ∂L/∂out). Equal to the plain path up to rounding (tests/test_fused_read.py).

:func:`applies` is the one decision of when it runs: gradients on, CPU, outside autocast, float32 or
float64, the Hopfield read itself (no knockout, not the cross-attention ablation) of one step, the
dot-product read (``read_radius = 0``), no trace asked for. Everything else takes the plain path,
and so does every read inside :func:`disabled`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._switch import Switch

_switch = Switch()
disabled = _switch.disabled   # ``with disabled():`` every read takes the plain path


def applies(ws, z: torch.Tensor, tracing: bool) -> bool:
    """Whether :func:`read` may stand in for the plain read of ``ws`` (plus its skip path) on ``z``."""
    cfg = ws.cfg
    return (not _switch.off and not tracing and torch.is_grad_enabled()
            and z.device.type == "cpu" and z.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled("cpu")
            and ws.knockout is None and cfg.hopfield and cfg.hopfield_steps == 1 and ws.read.radius is None
            and ws.read.mask is None)


def read(ws, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The read of ``z`` ``[B, N, D]`` from priors ``gamma`` ``[M, d_m]``, plus z with ``read_skip``."""
    lt, beta = ws.read.f_LT, ws.beta
    learned = isinstance(beta, torch.Tensor)          # log β learned: β is an input with a gradient
    out = _Read.apply(z.reshape(-1, z.shape[-1]), gamma, lt.weight, lt.bias, beta if learned else None,
                      (None if learned else float(beta), ws.cfg.read_skip))
    return out.view(z.shape)


class _Read(torch.autograd.Function):
    """Forward: Y, S, P and the output without a graph. Backward: the module docstring's gradients."""

    @staticmethod
    def forward(ctx, Z, gamma, W, b, beta_t, opts):
        beta_f, skip = opts
        beta = beta_t if beta_t is not None else beta_f
        Y = F.linear(gamma, W, b)                                                # [M, D]
        S = Y @ Z.T                                                              # [M, R]
        if beta_t is not None or beta_f != 1:
            S = beta * S
        P = torch.softmax(S, dim=0)
        out = torch.addmm(Z, P.T, Y) if skip else P.T @ Y                        # [R, D]
        ctx.save_for_backward(Z, gamma, W, Y, P, S if beta_t is not None else None, beta_t)
        ctx.opts = opts
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, gamma, W, Y, P, S, beta_t = ctx.saved_tensors
        beta_f, skip = ctx.opts
        beta = beta_t if beta_t is not None else beta_f
        need_Z, need_gamma, need_W, need_b, need_beta, _ = ctx.needs_input_grad
        dP = Y @ G.T                                                             # [M, R]
        dS = P * (dP - (P * dP).sum(0, keepdim=True))                            # softmax over the priors
        g_Z = g_gamma = g_W = g_b = g_beta = None
        if need_Z:
            if beta_t is None:
                g_Z = torch.addmm(G, dS.T, Y, alpha=beta) if skip else torch.mm(dS.T, Y).mul_(beta)
            else:
                g_Z = torch.mm(dS.T, Y).mul_(beta) + (G if skip else 0)
        if need_gamma or need_W or need_b or need_beta:
            if beta_t is None:
                g_Y = torch.addmm(P @ G, dS, Z, alpha=beta)                        # [M, D]
            else:
                g_Y = P @ G + beta * (dS @ Z)
            g_gamma = g_Y @ W if need_gamma else None
            g_W = g_Y.T @ gamma if need_W else None
            g_b = g_Y.sum(0) if need_b else None
            if need_beta:
                g_beta = (dS * S).sum() / beta_t
        return g_Z, g_gamma, g_W, g_b, g_beta, None
