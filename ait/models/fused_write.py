"""A fast path for the workspace write in training on the CPU: one autograd node instead of ~75.

:meth:`ait.models.ait.GlobalWorkspace.write` holds the equations. At the tiny sizes a CPU trains,
the write's cost is almost all per-op overhead (autograd nodes, views, Python dispatch), not
arithmetic: it costs nearly as much for a pool of 64 patches as for 4,096. Here the same forward
runs without an autograd graph and one hand-written backward returns every gradient, so the step
pays for one node. The forward uses the same ops in the same order as the plain path (the same
values bit for bit, the same random draws for the dropout); the backward is each op's gradient
written out, equal to autograd's up to rounding (tests/test_fused_write.py).

:func:`applies` is the one decision of when it runs: training with gradients on the CPU, outside
autocast, top-k gates, the write path learning (the ``ait`` preset), no centred write, no gates
kept for a trace. Everything else takes the plain path, and so does every write inside
:func:`disabled`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._switch import Switch

_switch = Switch()
disabled = _switch.disabled   # ``with disabled():`` every write takes the plain path


def applies(ws, Z: torch.Tensor, dense: bool, keep_gates: bool) -> bool:
    """Whether :func:`write` may stand in for ``ws.write(Z, dense, keep_gates)``."""
    cfg = ws.cfg
    return (not _switch.off and ws.training and torch.is_grad_enabled() and Z.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")
            and cfg.bottleneck_on and not dense and not keep_gates
            and cfg.learn_write and not cfg.write_centered and not ws.memory.requires_grad)


def write(ws, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(new priors ``[M, d_m]``, balance loss): ``ws.write(Z)[:2]`` with one autograd node."""
    cfg = ws.cfg
    gamma = ws.memory.detach().clone()
    ln = ws.norm_gamma
    return _TopKWrite.apply(Z, ws.to_q.weight, ws.to_k.weight, ws.to_v.weight, ws.to_out.weight, ln.weight,
                            ln.bias, gamma, (cfg.memory_heads, cfg.prior_dim, min(cfg.bottleneck, Z.shape[0]),
                                             cfg.ema, ws.drop.p, ln.eps,
                                             cfg.balance_weight if cfg.balance_loss else None))


class _TopKWrite(torch.autograd.Function):
    """Forward: the plain write's ops (``GlobalWorkspace._queries``, ``_select``, ``write``,
    ``balance_loss``) without a graph. Backward: their gradients, in reverse order."""

    @staticmethod
    def forward(ctx, Z, Wq, Wk, Wv, Wo, ln_w, ln_b, gamma, opts):
        H, dm, k, ema, p_drop, eps, bal = opts
        M, (P, D) = gamma.shape[0], Z.shape
        # c_hm = (W_Q,h γ_m)ᵀ W_K,h / √d_m, the write's scores s_hmp = c_hm · Z_p
        gs = gamma * dm ** -0.5
        q = F.linear(gs, Wq).view(-1, H, dm).transpose(0, 1)                     # [H, M, d]
        c = q @ Wk.view(H, dm, -1)                                               # [H, M, D]
        index = (c.reshape(-1, D) @ Z.T).topk(k, dim=-1, sorted=False).indices.view(H, M, k)
        rows = Z.index_select(0, index.flatten()).view(H, M, k, D)              # [H, M, k, D]
        w = torch.softmax((rows @ c.unsqueeze(-1)).squeeze(-1), dim=-1)          # [H, M, k]
        read = (w.unsqueeze(-2) @ rows).squeeze(-2)                              # [H, M, D]
        O = (read @ Wv.view(H, dm, -1).transpose(1, 2)).transpose(0, 1).reshape(M, -1)   # [M, H·d]
        t = F.linear(O, Wo)
        noise = None
        if p_drop > 0:  # as F.dropout on the CPU: a scaled Bernoulli mask drawn from the global generator
            noise = torch.empty_like(t).bernoulli_(1 - p_drop).div_(1 - p_drop)
            t = t * noise
        x = gamma + t
        g_tilde, mu, rstd = torch.native_layer_norm(x, (dm,), ln_w, ln_b, eps)
        v = ema * gamma + (1 - ema) * g_tilde
        norm = v.norm(dim=-1, keepdim=True)
        new = v / norm
        if bal is None:
            aux = Z.new_zeros(())
            d_imp = mean_imp = var_imp = den_imp = None
        else:  # σ Σ_h CV²(importance_h) + CV²(load_h), as ait.models.ait.balance_loss
            flat, src = index.flatten(1), w.flatten(1)
            both = Z.new_zeros(2, H, P).scatter_add(-1, flat.expand(2, -1, -1), torch.stack((src, torch.ones_like(src))))
            mean = both.sum(-1, keepdim=True) / P
            d = both - mean
            var = (d * d).sum(-1) / (P - 1)
            den = mean.squeeze(-1) ** 2 + 1e-10
            aux = bal * (var / den).sum()
            d_imp, mean_imp, var_imp, den_imp = d[0], mean[0], var[0].unsqueeze(-1), den[0].unsqueeze(-1)
        ctx.save_for_backward(Z, Wq, Wk, Wv, Wo, ln_w, ln_b, gamma, gs, q, c, index, rows, w, read, O, x, mu, rstd,
                              new, norm, noise, d_imp, mean_imp, var_imp, den_imp)
        ctx.opts = opts
        return new, aux

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_new, g_aux):
        (Z, Wq, Wk, Wv, Wo, ln_w, ln_b, gamma, gs, q, c, index, rows, w, read, O, x, mu, rstd,
         new, norm, noise, d_imp, mean_imp, var_imp, den_imp) = ctx.saved_tensors
        H, dm, k, ema, p_drop, eps, bal = ctx.opts
        M, (P, D) = gamma.shape[0], Z.shape
        # new = v / ‖v‖, v = ρ γ + (1 − ρ) γ̃ (γ carries no gradient)
        g_v = (g_new - new * (new * g_new).sum(-1, keepdim=True)) / norm
        g_x, g_lnw, g_lnb = torch.ops.aten.native_layer_norm_backward(
            (1 - ema) * g_v, x, (dm,), mu, rstd, ln_w, ln_b, (True, True, True))
        g_t = g_x if noise is None else g_x * noise
        g_Wo = g_t.T @ O                                                         # [d, H·d]
        g_O = (g_t @ Wo).view(M, H, dm).transpose(0, 1)                          # [H, M, d]
        g_Wv = (g_O.transpose(1, 2) @ read).reshape(H * dm, D)
        g_read = g_O @ Wv.view(H, dm, D)                                         # [H, M, D]
        g_w = (rows @ g_read.unsqueeze(-1)).squeeze(-1)                          # [H, M, k]
        if bal is not None:  # ∂CV²/∂imp_p = 2 (imp_p − mean) / ((P − 1) den) − 2 Var · mean / (P den²)
            g_imp = (bal * g_aux) * (2 * d_imp / ((P - 1) * den_imp) - 2 * var_imp * mean_imp / (P * den_imp ** 2))
            g_w = g_w + g_imp.gather(-1, index.flatten(1)).view(H, M, k)
        g_s = w * (g_w - (w * g_w).sum(-1, keepdim=True))                        # softmax
        g_rows = w.unsqueeze(-1) * g_read.unsqueeze(-2) + g_s.unsqueeze(-1) * c.unsqueeze(-2)
        g_c = (g_s.unsqueeze(-2) @ rows).squeeze(-2)                             # [H, M, D]
        g_Z = torch.zeros_like(Z).index_add_(0, index.flatten(), g_rows.reshape(-1, D))
        g_Wk = (q.transpose(1, 2) @ g_c).reshape(H * dm, D)
        g_q = (g_c @ Wk.view(H, dm, D).transpose(1, 2)).transpose(0, 1).reshape(M, H * dm)
        g_Wq = g_q.T @ gs
        return g_Z, g_Wq, g_Wk, g_Wv, g_Wo, g_lnw, g_lnb, None, None
