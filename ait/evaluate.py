"""Evaluate a trained run: ``python -m ait.evaluate RUN_DIR [--checkpoint best.pt] [--read-steps 8]``.

Writes into RUN_DIR (or ``--out``):

- ``eval.json``: accuracy overall, per class, and per question family (Sort-of-CLEVR);
- ``priors.png``: prior specialisation: for each prior of the first workspace, how often it selects
  each patch position over a test batch (the top-k gates of its first head), with an example image;
- ``energy.png``: the Hopfield energy of the read along ``--read-steps`` update steps (never rises);
- ``attention.png``: self-attention maps of the first block for one test image (mean over heads).
"""
from __future__ import annotations

import argparse
import json
import pathlib

import torch

from . import data as D
from .model import AiT, ViT, build
from .train import TrainConfig, evaluate


def load_run(run: pathlib.Path, checkpoint: str = "best.pt"):
    """(model in eval mode, TrainConfig, data spec) of a run directory written by ``ait.train``."""
    conf = json.loads((run / "config.json").read_text())
    tc = TrainConfig(**{k: v for k, v in conf["train"].items() if k in TrainConfig.__dataclass_fields__})
    spec = D.SPECS[tc.data]
    model = build(tc.model, D.model_fields(tc.data, tc.image_size), preset=tc.preset, **tc.overrides)
    path = run / checkpoint
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}; runs written by ait.train hold best.pt and last.pt")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    return model.eval(), tc, spec


@torch.no_grad()
def workspace_input(model: AiT, x: torch.Tensor, q: torch.Tensor | None = None) -> tuple:
    """(first global workspace, the patch representations z [B, N, d] its Hopfield read starts from)."""
    if not isinstance(model, AiT) or not model.cfg.memory:
        raise TypeError(f"workspace_input needs an AiT with its workspace (memory=True), got {type(model).__name__}")
    ws, blk = model.workspaces()[0], model.blocks[0]
    h = model.embed(x, q)
    if blk.attn is not None:
        h = h + blk.attn(h)
    return ws, ws.norm_z(ws.mlp(blk.norm_b(h)))


@torch.no_grad()
def per_class(model, split: D.Split, num_classes: int, batch: int = 256) -> dict:
    hits = torch.zeros(num_classes)
    count = torch.zeros(num_classes)
    for i in range(0, len(split), batch):
        idx = torch.arange(i, min(i + batch, len(split)))
        x, q, y = split.batch(idx)
        pred = model(x, q)[0].argmax(-1)
        count += torch.bincount(y, minlength=num_classes).float()
        hits += torch.bincount(y[pred == y], minlength=num_classes).float()
    return {str(c): (hits[c] / count[c]).item() for c in range(num_classes) if count[c] > 0}


@torch.no_grad()
def figures(model, split: D.Split, out: pathlib.Path, read_steps: int = 8, n: int = 32) -> dict:
    from matplotlib.figure import Figure   # no pyplot: the caller's backend and figures are left alone

    if not isinstance(model, (AiT, ViT)):  # the figures show AiT / ViT internals; baselines get accuracies
        return {}
    x, q, _ = split.batch(torch.arange(min(n, len(split))))
    info = {}
    cfg = model.cfg
    side = cfg.image_size // cfg.patch
    if cfg.memory:
        ws, z = workspace_input(model, x, q)
        G = ws.gates(ws.memory, z.reshape(-1, z.shape[-1]))[0]           # first head: [M, B·N]
        sel = (G > 0).float().reshape(G.shape[0], len(x), -1)[:, :, : side * side].mean(1)  # [M, patches]
        M = sel.shape[0]
        cols = min(8, M)
        fig = Figure(figsize=(1.6 * cols, 1.6 * (-(-M // cols) + 1)))
        axes = fig.subplots(-(-M // cols) + 1, cols).reshape(-1, cols)
        for j in range(cols):
            axes[0, j].axis("off")
        img = x[0].permute(1, 2, 0).numpy()
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

        # the Hopfield read, iterated, with its energy
        import hopfieldkit as hk

        ws.read.set_priors(ws.memory)
        run = hk.descend(ws.read, z, ws.beta, method="update", steps=read_steps, tol=0)
        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        run.plot(ax=ax)
        ax.set_title(f"Hopfield read energy, first workspace (monotone={run.monotone()})")
        fig.savefig(out / "energy.png", dpi=100, bbox_inches="tight")
        info["read_energy_monotone"] = run.monotone()
    attn = model.blocks[0].attn
    if attn is not None:
        h = attn.norm(model.embed(x[:1], None if q is None else q[:1]))
        qkv = attn.to_qkv(h).reshape(1, h.shape[1], 3, attn.heads, attn.dim_head).permute(2, 0, 3, 1, 4)
        w = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * attn.dim_head ** -0.5, -1).mean(1)[0]  # [N, N]
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.imshow(w.numpy(), cmap="viridis")
        ax.set_title("self-attention, block 1 (mean over heads)", fontsize=9)
        ax.set_xlabel("key token")
        ax.set_ylabel("query token")
        fig.savefig(out / "attention.png", dpi=100, bbox_inches="tight")
    return info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m ait.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=pathlib.Path, help="a run directory written by ait.train")
    ap.add_argument("--checkpoint", default="best.pt")
    ap.add_argument("--read-steps", type=int, default=8)
    ap.add_argument("--out", type=pathlib.Path, default=None)
    a = ap.parse_args(argv)
    model, tc, spec = load_run(a.run, a.checkpoint)
    split = D.load(tc.data, "test", data_dir=tc.data_dir, size=tc.test_size, seed=tc.seed, clevr_quirks=tc.clevr_quirks,
                   image_size=tc.image_size)
    out = a.out or a.run
    out.mkdir(parents=True, exist_ok=True)
    result = {"checkpoint": str(a.run / a.checkpoint), **evaluate(model, split, 256, torch.device("cpu")),
              "per_class": per_class(model, split, spec.num_classes)}
    model.eval()
    result.update(figures(model, split, out, a.read_steps))
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_class"}))
    return result


if __name__ == "__main__":
    main()
