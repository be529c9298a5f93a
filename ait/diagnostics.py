"""Does the workspace do anything? Knockouts and per-layer statistics of a trained AiT.

:func:`diagnose` returns (and ``python -m ait.evaluate RUN --diagnostics`` writes to
``RUN/diagnostics.json``):

- ``accuracy``: test accuracy of the checkpoint;
- ``knockouts``: for each of :data:`ait.KNOCKOUTS` (:func:`ait.knockout` says what each does)
  ``{"acc": …, "delta": acc − accuracy}``;
- for question sets (Sort-of-CLEVR) also ``accuracy_by_family`` ``{family: acc}`` and in each
  knockout ``by_family`` ``{family: {"acc", "delta"}}``: a memory may matter to one family only;
- ``workspaces``: one entry per layer, measured on a batch of test samples (in eval mode):

  ``num_priors``               M;
  ``prior_cosine_mean``        mean pairwise cosine of the priors γ (off-diagonal pairs);
  ``attractor_cosine_mean``    the same for the attractors Y = f_LT(γ);
  ``effective_priors``         exp of the entropy of the read's softmax over the priors,
                               p = softmax(β Y z), averaged over patches: in [1, M];
  ``read_spread_ratio``        spread of the read's output ẑ over the patches / spread of its input
                               z, spread = sqrt(mean_i ‖x_i − x̄‖²) over all patches of the batch;
  ``unselected_share``         share of the pool's patches that no prior selects in any head (a
                               write over the batch's pool with the top-k gates).
"""
from __future__ import annotations

import torch

from .data import Split
from .models import KNOCKOUTS, AiT, WorkspaceTrace, knockout, memory_kept


def _cosine_mean(x: torch.Tensor) -> float:
    """Mean cosine over the off-diagonal pairs of the rows of ``x``."""
    u = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    c = u @ u.T
    m = len(u)
    return float((c.sum() - c.diagonal().sum()) / max(1, m * (m - 1)))


def _spread(x: torch.Tensor) -> float:
    x = x.reshape(-1, x.shape[-1])
    return float(((x - x.mean(0)) ** 2).sum(-1).mean().sqrt())


def trace(model: AiT, x: torch.Tensor, q: torch.Tensor | None = None) -> list[WorkspaceTrace]:
    """One :class:`ait.WorkspaceTrace` per workspace for a batch, in eval mode (nothing is written
    to the memories: they are restored afterwards in presets that write in eval)."""
    if not isinstance(model, AiT) or not model.cfg.memory:
        raise TypeError(f"diagnostics need an AiT with its workspace (memory=True), got {type(model).__name__}")
    was = model.training
    model.eval()
    out: list[WorkspaceTrace] = []
    try:
        with memory_kept(model), torch.no_grad():
            model(x, q, trace=out)
    finally:
        model.train(was)
    return out


@torch.no_grad()
def workspace_stats(model: AiT, x: torch.Tensor, q: torch.Tensor | None = None) -> list[dict]:
    """The per-layer statistics of the module docstring for one batch."""
    stats = []
    for ws, t in zip(model.workspaces(), trace(model, x, q)):
        Y = ws.read.attractors(t.priors)                             # [M, D]
        beta = float(ws.beta)
        logits = beta * t.z.reshape(-1, t.z.shape[-1]) @ Y.T          # [P, M]
        p = logits.softmax(-1)
        entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)
        G = t.gates if t.gates is not None else ws.gates(t.priors, t.z.reshape(-1, t.z.shape[-1]))
        selected = (G > 0).any(0).any(0)                               # [P]
        stats.append({"num_priors": int(Y.shape[0]), "prior_cosine_mean": _cosine_mean(t.priors),
                      "attractor_cosine_mean": _cosine_mean(Y), "effective_priors": float(entropy.exp().mean()),
                      "read_spread_ratio": _spread(t.out) / max(_spread(t.z), 1e-12),
                      "unselected_share": float(1 - selected.float().mean())})
    return stats


def diagnose(model: AiT, test: Split, evaluate, batch_size: int = 256, device="cpu", drop_last: bool = False,
             n_stats: int = 256, seed: int = 0) -> dict:
    """Accuracy, knockouts and workspace statistics (module docstring). ``evaluate`` is
    :func:`ait.train.evaluate` (passed in to keep this module free of the training loop)."""
    if not isinstance(model, AiT) or not model.cfg.memory:
        raise TypeError(f"diagnostics need an AiT with its workspace (memory=True), got {type(model).__name__}")
    # presets that write the memory in eval must start every measurement from the same memory
    with memory_kept(model):
        full = evaluate(model, test, batch_size, device, drop_last)
    base, families = full["acc"], _families(full)
    knock = {}
    for kind in KNOCKOUTS:
        with knockout(model, kind, seed=seed):     # knockout keeps the memory itself
            r = evaluate(model, test, batch_size, device, drop_last)
        knock[kind] = {"acc": r["acc"], "delta": r["acc"] - base}
        if families:
            knock[kind]["by_family"] = {f: {"acc": a, "delta": a - families[f]} for f, a in _families(r).items()}
    x, q, _ = test.batch(torch.arange(min(n_stats, len(test))))
    x = x.to(device)
    q = None if q is None else q.to(device)
    ws = workspace_stats(model, x, q)              # trace keeps the memory
    out = {"accuracy": base, "knockouts": knock, "workspaces": ws}
    if families:
        out["accuracy_by_family"] = families
    return out


def _families(result: dict) -> dict:
    """``{family: acc}`` from an evaluation's ``acc_<family>`` entries (empty for image-only sets)."""
    return {k[4:]: v for k, v in result.items() if k.startswith("acc_")}


def table(result: dict) -> str:
    """The diagnostics as console text."""
    lines = [f"test accuracy {100 * result['accuracy']:.2f} %", "knockout            acc (%)   delta (points)"]
    fams = list(result.get("accuracy_by_family", {}))
    if fams:
        lines[0] += "  (" + ", ".join(f"{f} {100 * a:.2f}" for f, a in result["accuracy_by_family"].items()) + ")"
        lines[1] += "".join(f"  {f:>14}" for f in fams)
    for k, v in result["knockouts"].items():
        lines.append(f"  {k:<17} {100 * v['acc']:7.2f}   {100 * v['delta']:+7.2f}"
                     + "".join(f"  {100 * v['by_family'][f]['delta']:+14.2f}" for f in fams))
    lines.append("layer  M   prior cos  attractor cos  effective priors  read spread ratio  unselected")
    for i, w in enumerate(result["workspaces"]):
        lines.append(f"  {i:<4} {w['num_priors']:<3} {w['prior_cosine_mean']:9.3f}  {w['attractor_cosine_mean']:13.3f}"
                     f"  {w['effective_priors']:16.2f}  {w['read_spread_ratio']:17.4f}  {w['unselected_share']:10.3f}")
    return "\n".join(lines)
