"""Evaluate a trained run: ``python -m ait.evaluate RUN_DIR [--checkpoint best.pt] [--diagnostics]``.

Writes into RUN_DIR (or ``--out``):

- ``eval.json``: validation and test accuracy, per class, and per question family (Sort-of-CLEVR);
- ``priors.png``: prior specialisation: for each prior of the first workspace, how often it selects
  each patch position over a test batch (the top-k gates of its first head), with an example image;
- ``energy.png``: the Hopfield energy of the read along ``--read-steps`` update steps (never rises);
- ``attention.png``: self-attention maps of the first block for one test image (mean over heads);
- with ``--diagnostics``: ``diagnostics.json`` (knockouts and workspace statistics,
  :mod:`ait.diagnostics`), also printed as a table.

Checkpoints are loaded with ``weights_only=True``: a file that holds anything but tensors and plain
values is refused (loading it could run code).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import torch

import hopfieldkit as hk
from hopfieldkit.runs import RunError, load_checkpoint, write_json
from hopfieldkit.settings import SettingError

from . import data as D
from . import diagnostics
from .models import AiT, ViT, memory_kept
from .train import check_device, evaluate, load_split, model_for, saved_config


def load_run(run: pathlib.Path, checkpoint: str = "best.pt", device: str = "cpu"):
    """(model in eval mode, its TrainConfig) of a run directory written by ``ait.train``."""
    run = pathlib.Path(run)
    tc = saved_config(run)
    model = model_for(tc)
    state = load_checkpoint(run / checkpoint, map_location=device)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        raise RunError(f"{run / checkpoint} does not match the run's model (made by other code?): "
                       f"{detail[:400]}") from None
    return model.to(device).eval(), tc


@torch.no_grad()
def workspace_input(model: AiT, x: torch.Tensor, q: torch.Tensor | None = None) -> tuple:
    """(first global workspace, the patch representations z [B, N, D] its Hopfield read starts from)."""
    t = diagnostics.trace(model, x, q)
    return model.workspaces()[0], t[0].z


@torch.no_grad()
def per_class(model, split: D.Split, num_classes: int, batch: int = 256, device="cpu") -> dict:
    hits = torch.zeros(num_classes)
    count = torch.zeros(num_classes)
    for i in range(0, len(split), batch):
        idx = torch.arange(i, min(i + batch, len(split)))
        x, q, y = split.batch(idx)
        pred = model(x.to(device), None if q is None else q.to(device))[0].argmax(-1).cpu()
        count += torch.bincount(y, minlength=num_classes).float()
        hits += torch.bincount(y[pred == y], minlength=num_classes).float()
    return {str(c): (hits[c] / count[c]).item() for c in range(num_classes) if count[c] > 0}


@torch.no_grad()
def figures(model, split: D.Split, out: pathlib.Path, read_steps: int = 8, n: int = 32, device="cpu") -> dict:
    from matplotlib.figure import Figure   # no pyplot: the caller's backend and figures are left alone

    if not isinstance(model, (AiT, ViT)):  # the figures show AiT / ViT internals; baselines get accuracies
        return {}
    x, q, _ = split.batch(torch.arange(min(n, len(split))))
    x, q = x.to(device), None if q is None else q.to(device)
    info = {}
    cfg, inputs = model.cfg, model.inputs
    side = inputs.image_size // cfg.patch
    skip = 1 if inputs.question_dim else 0        # the question token comes first
    if cfg.memory:
        ws, z = workspace_input(model, x, q)
        G = ws.gates(ws.memory, z.reshape(-1, z.shape[-1]))[0]           # first head: [M, B·N]
        sel = (G > 0).float().reshape(G.shape[0], len(x), -1)[:, :, skip:skip + side * side].mean(1).cpu()
        M = sel.shape[0]
        cols = min(8, M)
        fig = Figure(figsize=(1.6 * cols, 1.6 * (-(-M // cols) + 1)))
        axes = fig.subplots(-(-M // cols) + 1, cols).reshape(-1, cols)
        for j in range(cols):
            axes[0, j].axis("off")
        img = x[0].permute(1, 2, 0).cpu().numpy()
        axes[0, 0].imshow(img[..., 0] if img.shape[-1] == 1 else img.clip(0, 1), cmap="gray")
        axes[0, 0].set_title("example", fontsize=7)
        for m in range(M):
            a = axes[1 + m // cols, m % cols]
            a.imshow(sel[m].reshape(side, side).numpy(), cmap="magma", vmin=0)
            a.set_title(f"prior {m}", fontsize=7)
            a.axis("off")
        for m in range(M, (axes.shape[0] - 1) * cols):
            axes[1 + m // cols, m % cols].axis("off")
        fig.suptitle("prior specialisation: how often each prior selects each patch position (head 1)", fontsize=9)
        fig.savefig(out / "priors.png", dpi=100, bbox_inches="tight")
        info["selections_per_image_per_prior"] = sel.sum(-1).tolist()  # = k / images in the pool

        ws.read.set_priors(ws.memory)                    # the Hopfield read, iterated, with its energy
        run = hk.descend(ws.read, z, ws.beta, method="update", steps=read_steps, tol=0)
        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        run.plot(ax=ax)
        ax.set_title(f"Hopfield read energy, first workspace (monotone={run.monotone()})")
        fig.savefig(out / "energy.png", dpi=100, bbox_inches="tight")
        info["read_energy_monotone"] = run.monotone()
    attn = model.blocks[0].attn
    if attn is not None:
        w = attn.weights(model.embed(x[:1], None if q is None else q[:1])).mean(1)[0].cpu()  # [N, N]
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.imshow(w.numpy(), cmap="viridis")
        ax.set_title("self-attention, block 1 (mean over heads)", fontsize=9)
        ax.set_xlabel("key token")
        ax.set_ylabel("query token")
        fig.savefig(out / "attention.png", dpi=100, bbox_inches="tight")
    return info


def named_from(checkpoint: pathlib.Path, folder: pathlib.Path) -> str:
    """The checkpoint's name as a file in ``folder`` records it: its bare name when it lies there
    (so a run folder that is moved, copied or committed still names it truly), else its path."""
    return checkpoint.name if checkpoint.resolve().parent == folder.resolve() else str(checkpoint)


def run_eval(run: pathlib.Path, checkpoint: str = "best.pt", read_steps: int = 8, out: pathlib.Path | None = None,
             device: str = "cpu", with_diagnostics: bool = False) -> dict:
    dev = check_device(device)
    model, tc = load_run(run, checkpoint, str(dev))
    test, val = load_split(tc, "test"), load_split(tc, "val")
    out = out or run
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    drop_last = tc.preset == "paper"
    with memory_kept(model):   # as in training: the validation pass leaves the memory to the test pass
        val_result = evaluate(model, val, tc.eval_batch_size, dev, drop_last)
    result = {"checkpoint": named_from(run / checkpoint, out), "val": val_result,
              **evaluate(model, test, tc.eval_batch_size, dev, drop_last),
              "per_class": per_class(model, test, model.inputs.num_classes, device=dev)}
    model.eval()
    result.update(figures(model, test, out, read_steps, device=dev))
    write_json(out / "eval.json", result)
    if with_diagnostics:
        diag = _diagnose(model, tc, test, dev, run / checkpoint, out)
        print(diagnostics.table(diag), file=sys.stderr)
        result["diagnostics"] = diag
    return result


def diagnose_run(run: pathlib.Path, checkpoint: str = "best.pt", device: str = "cpu") -> dict:
    """The diagnostics of a run's checkpoint (:func:`ait.diagnostics.diagnose`), written to
    ``RUN/diagnostics.json``; without the figures and per-class table of :func:`run_eval`."""
    dev = check_device(device)
    model, tc = load_run(run, checkpoint, str(dev))
    return _diagnose(model, tc, load_split(tc, "test"), dev, run / checkpoint, run)


def _diagnose(model, tc, test: D.Split, dev, checkpoint: pathlib.Path, out: pathlib.Path) -> dict:
    """:func:`ait.diagnostics.diagnose` on ``test`` as the run evaluates it, written to ``out/diagnostics.json``."""
    diag = diagnostics.diagnose(model, test, evaluate, tc.eval_batch_size, dev, tc.preset == "paper", seed=tc.seed)
    diag["checkpoint"] = named_from(checkpoint, out)
    write_json(out / "diagnostics.json", diag)
    return diag


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m ait.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=pathlib.Path, help="a run directory written by ait.train")
    ap.add_argument("--checkpoint", default="best.pt", help="best.pt (best validation accuracy) or last.pt")
    ap.add_argument("--read-steps", type=int, default=8)
    ap.add_argument("--out", type=pathlib.Path, default=None)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--diagnostics", action="store_true", help="knockouts and workspace statistics (AiT only)")
    a = ap.parse_args(argv)
    if a.read_steps < 1:
        ap.error(f"--read-steps must be ≥ 1, got {a.read_steps}")
    try:
        result = run_eval(a.run, a.checkpoint, a.read_steps, a.out, a.device, a.diagnostics)
    except (RunError, SettingError, FileNotFoundError, TypeError) as exc:
        print(f"python -m ait.evaluate: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_class", "diagnostics")}))
    return result


if __name__ == "__main__":
    main()
