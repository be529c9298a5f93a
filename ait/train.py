"""Train AiT or its ViT baseline: ``python -m ait.train --model ait-tiny --data triangle --out runs/ait``.

One readable loop (after nanoGPT). Writes to ``--out``:

- ``config.json``: the resolved configuration (model and training);
- ``metrics.jsonl``: one JSON object per evaluation (``step``, ``epoch``, ``split``, ``loss``, ``acc``,
  ``train_loss``, ``lr``, ``images_per_s``; on Sort-of-CLEVR also ``acc_nonrelational``,
  ``acc_relational``, ``acc_ternary``);
- ``last.pt`` and ``best.pt`` (best test accuracy), written atomically (temporary file + rename);
- ``tb/``: the same scalars for TensorBoard, when ``tensorboard`` is installed.

Multi-process: ``torchrun --nproc_per_node K -m ait.train ...`` (DDP; the workspace pool is
all-gathered across ranks and the memory stays identical on every rank; ``--batch-size`` is global).

``--resume`` continues ``--out`` exactly: model (with the workspace memories), optimiser, schedule
step, data order and random state are restored, so a resumed run equals an unbroken one.

Defaults run on a CPU in under a minute (tiny model, Triangle on a 32-px canvas, 1500 steps at lr 3e-3;
other data sets 300 steps at lr 1e-3). The paper's recipe (AdamW lr 1e-4,
weight decay 0.01, 5 warm-up epochs from 1e-5, cosine to 1e-6, batch 512, 100 epochs) is what the
``small``/``medium``/``base`` sizes default to. Model fields are overridden with ``--set key=value``
(repeatable), or from a JSON/YAML file with ``--config``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

from hopfieldkit.checkpoint import save_atomic

from . import data as D
from .model import AiTConfig, build, count_parameters, model_names

TRAIN_DEFAULTS = dict(batch_size=64, lr=1e-3, weight_decay=0.01, warmup=0.1, min_lr=1e-6, warmup_lr=1e-5,
                      max_steps=300, eval_every=100, seed=0, device="cpu")
# CPU defaults per data set where they differ: tiny AiT needs about 1500 steps at lr 3e-3 to learn
# Triangle (benchmarks/results/tuning.md).
CPU_DATA_DEFAULTS = {"triangle": dict(max_steps=1500, lr=3e-3)}
PAPER_RECIPE = dict(batch_size=512, lr=1e-4, weight_decay=0.01, min_lr=1e-6, warmup_lr=1e-5, epochs=100,
                    warmup_epochs=5)


@dataclasses.dataclass
class TrainConfig:
    model: str = "ait-tiny"
    preset: str = "ait"
    data: str = "triangle"
    data_dir: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    clevr_quirks: bool = False
    fresh_data: bool = True         # Triangle: a fresh, seeded batch every step (the original's infinite mode)
    image_size: int | None = None   # Triangle canvas: 32 for tiny models (CPU), 64 (the paper's) otherwise
    out: str = "runs/ait"
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    warmup_steps: int | None = None
    max_steps: int | None = None
    epochs: int | None = None
    eval_every: int | None = None
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    bf16: bool = False
    compile: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)


def is_tiny(model: str) -> bool:
    """A CPU-sized model key (``ait-tiny``, ``coordination-tiny``, ...): it gets the CPU defaults."""
    return "tiny" in model.split("-")


def resolve(cfg: TrainConfig, n_train: int) -> TrainConfig:
    """Fill the unset fields from the CPU defaults (tiny) or the paper's recipe (other sizes)."""
    tiny = is_tiny(cfg.model)
    c = dataclasses.replace(cfg)
    if tiny:
        d = {**TRAIN_DEFAULTS, **CPU_DATA_DEFAULTS.get(cfg.data, {})}
        c.batch_size = c.batch_size or d["batch_size"]
        c.lr = c.lr or d["lr"]
        c.max_steps = c.max_steps or (c.epochs * math.ceil(n_train / c.batch_size) if c.epochs else d["max_steps"])
        c.warmup_steps = c.warmup_steps if c.warmup_steps is not None else int(d["warmup"] * c.max_steps)
        c.eval_every = c.eval_every or max(1, c.max_steps // 3)
    else:
        c.batch_size = c.batch_size or (64 if cfg.data == "sort-of-clevr" else PAPER_RECIPE["batch_size"])
        c.lr = c.lr or PAPER_RECIPE["lr"]
        per_epoch = math.ceil(n_train / c.batch_size)
        c.max_steps = c.max_steps or (c.epochs or PAPER_RECIPE["epochs"]) * per_epoch
        c.warmup_steps = c.warmup_steps if c.warmup_steps is not None else PAPER_RECIPE["warmup_epochs"] * per_epoch
        c.eval_every = c.eval_every or per_epoch
    return c


def lr_at(step: int, c: TrainConfig) -> float:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps``, then cosine to ``min_lr``."""
    if step < c.warmup_steps:
        return c.warmup_lr + (c.lr - c.warmup_lr) * step / max(1, c.warmup_steps)
    t = (step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps)
    return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


FAMILY_NAMES = ("nonrelational", "relational", "ternary")  # Sort-of-CLEVR question families


@torch.no_grad()
def evaluate(model, split: D.Split, batch_size: int, device) -> dict:
    """Loss and accuracy on every sample (the last batch may be smaller); per question family too."""
    model.eval()
    loss, hits = 0.0, []
    for i in range(0, len(split), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(split)))
        xb, qb, yb = split.batch(idx)
        logits, _ = model(xb.to(device), None if qb is None else qb.to(device))
        loss += F.cross_entropy(logits.float(), yb.to(device), reduction="sum").item()
        hits.append((logits.argmax(-1).cpu() == yb))
    model.train()
    hits = torch.cat(hits).float()
    out = {"loss": loss / len(split), "acc": hits.mean().item()}
    if split.family is not None:
        for f, name in enumerate(FAMILY_NAMES):
            sel = split.family == f
            if sel.any():
                out[f"acc_{name}"] = hits[sel].mean().item()
    return out


def setup_distributed(device: str) -> tuple[int, int, str]:
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group (nccl on CUDA, gloo on CPU).
    Returns (rank, world size, this rank's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return dist.get_rank(), dist.get_world_size(), device


def train(cfg: TrainConfig, resume: bool = False, progress: bool | None = None, stop_at: int | None = None) -> dict:
    """Run (or continue) a training job; returns the last evaluation.

    Under ``torchrun --nproc_per_node K -m ait.train ...`` the global batch (``batch_size``) is split
    over the K ranks, the model is wrapped in DistributedDataParallel, the workspace pool is
    all-gathered so every rank writes the identical memory, and rank 0 writes the files.
    """
    rank, world, device = setup_distributed(cfg.device)
    cfg = dataclasses.replace(cfg, device=device)
    out = pathlib.Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.image_size is None and cfg.data == "triangle":
        cfg = dataclasses.replace(cfg, image_size=32 if is_tiny(cfg.model) else 64)
    kw = dict(data_dir=cfg.data_dir, seed=cfg.seed, clevr_quirks=cfg.clevr_quirks, image_size=cfg.image_size)
    fresh = cfg.data == "triangle" and cfg.fresh_data
    train_set = None if fresh else D.load(cfg.data, "train", size=cfg.train_size, **kw)
    test_set = D.load(cfg.data, "test", size=cfg.test_size, **kw)
    n_train = D.TRIANGLE_EPOCH if fresh else len(train_set)
    c = resolve(cfg, n_train)
    data_fields = D.model_fields(c.data, c.image_size)
    model = build(c.model, data_fields, preset=c.preset, **c.overrides)
    dev = torch.device(c.device)
    model.to(dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=c.lr, weight_decay=c.weight_decay)
    gen = torch.Generator().manual_seed(c.seed)
    step, best = 0, -1.0
    if resume:
        ck_path = out / "last.pt"
        if not ck_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ck_path}")
        ck = torch.load(ck_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        step, best = ck["step"], ck["best"]
    if c.batch_size % world:
        raise ValueError(f"batch_size {c.batch_size} must be divisible by the number of processes {world}")
    if rank == 0:
        preset = f" ({c.preset} preset)" if c.model.startswith(("ait-", "vit-")) else ""
        print(f"{c.model}{preset} on {c.data}: {count_parameters(model):,} parameters, "
              f"{c.max_steps} steps of batch {c.batch_size}, {world} process(es), device {dev}", file=sys.stderr)
        (out / "config.json").write_text(json.dumps({"train": dataclasses.asdict(c), "model": dataclasses.asdict(
            model.cfg), **({"arch": dataclasses.asdict(model.arch)} if hasattr(model, "arch") else {}), "parameters": count_parameters(model), "world_size": world}, indent=2, default=str))
    run_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        run_model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    run_model = torch.compile(run_model) if c.compile else run_model
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    writer = None
    if rank == 0:
        try:  # TensorBoard when it is installed; metrics.jsonl always
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"))
        except Exception:
            writer = None
    local = c.batch_size // world
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=c.max_steps, initial=step, desc=c.model)
    end = c.max_steps if stop_at is None else min(stop_at, c.max_steps)
    last, t0, seen = {}, time.time(), 0
    per_epoch = math.ceil(n_train / c.batch_size)
    while step < end:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, c)
        part = slice(rank * local, (rank + 1) * local)
        if fresh:
            xb, yb = D.fresh_triangles(c.batch_size, c.seed, step, c.image_size)      # the global batch
            xb, qb, yb = xb[part], None, yb[part]
        else:
            idx = torch.randint(0, n_train, (c.batch_size,), generator=gen)  # the global batch
            xb, qb, yb = train_set.batch(idx[part])
        if c.data in D.AUGMENTED:
            xb = D.augment_crop_flip(xb, gen)
        xb, yb = xb.to(dev), yb.to(dev)
        qb = None if qb is None else qb.to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=c.bf16):
            logits, aux = run_model(xb, qb)
            loss = F.cross_entropy(logits.float(), yb) + aux.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += c.batch_size
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, c):.1e}")
        if step % c.eval_every == 0 or step == c.max_steps:
            train_loss = loss.detach()
            if world > 1:  # log the global batch's loss, not rank 0's share
                import torch.distributed as dist
                dist.all_reduce(train_loss)
                train_loss = train_loss / world
            ev = evaluate(model, test_set, 4 * c.batch_size, dev)
            last = {"step": step, "epoch": round(step / per_epoch, 3), "split": "test", **ev,
                    "train_loss": train_loss.item(), "lr": lr_at(step, c), "images_per_s": round(seen / (time.time() - t0), 1)}
            if rank == 0:
                with open(out / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps(last) + "\n")
                if writer is not None:
                    for k, v in last.items():
                        if isinstance(v, float) and k != "epoch":
                            writer.add_scalar(k, v, step)
            if ev["acc"] > best:
                best = ev["acc"]
                if rank == 0:
                    save_atomic({"model": model.state_dict(), "step": step, "acc": best}, out / "best.pt")
        if rank == 0 and (step % c.eval_every == 0 or step == end):
            save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "step": step, "best": best}, out / "last.pt")
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    return last


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, int | None]:
    ap = argparse.ArgumentParser(prog="python -m ait.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ait-tiny", choices=model_names(), metavar="MODEL",
                    help="ait-{tiny,small,medium,base}, vit-{...}[-cls], coordination[-ssw|-tr|-hc|-str|-d|-h|-dh|-tiny], "
                         "set-transformer[-tiny], perceiver[-tiny]")
    ap.add_argument("--preset", default="ait", choices=["ait", "paper"], help="paper = the released code's behaviour")
    ap.add_argument("--data", default="triangle", choices=sorted(D.SPECS))
    ap.add_argument("--data-dir", default=None, help="folder with the CIFAR files (cifar10, cifar100)")
    ap.add_argument("--out", default="runs/ait")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    ap.add_argument("--config", default=None, help="JSON or YAML file of TrainConfig fields (and 'overrides')")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a model field, e.g. --set hopfield_steps=3; AiT/ViT fields: "
                         f"{', '.join(AiTConfig.__dataclass_fields__)}; baselines: the fields of their config "
                         "(ait.coordination.CoordinationConfig, ...)")
    ap.add_argument("--clevr-quirks", action="store_true", help="Sort-of-CLEVR with the reference generator's flaws")
    ap.add_argument("--fixed-data", dest="fresh_data", action="store_false", default=None,
                    help="Triangle: train on a fixed split (--train-size) instead of fresh images every step")
    for name in ("batch_size", "max_steps", "epochs", "eval_every", "warmup_steps", "seed", "train_size", "test_size",
                 "image_size"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    for name in ("lr", "weight_decay", "warmup_lr", "min_lr"):
        ap.add_argument("--" + name.replace("_", "-"), type=float, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--stop-at", type=int, default=None, help="stop after this step (resume later)")
    a = vars(ap.parse_args(argv))
    fields = {}
    if a["config"]:
        text = pathlib.Path(a["config"]).read_text()
        if a["config"].endswith((".yaml", ".yml")):
            import yaml  # optional
            fields = yaml.safe_load(text)
        else:
            fields = json.loads(text)
    overrides = dict(fields.pop("overrides", {}))
    for kv in a["set"]:
        if "=" not in kv:
            raise SystemExit(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        overrides[k] = _parse_value(v)
    for k in ("model", "preset", "data", "data_dir", "out", "batch_size", "max_steps", "epochs", "eval_every",
              "warmup_steps", "seed", "lr", "weight_decay", "warmup_lr", "min_lr", "device", "bf16", "compile",
              "train_size", "test_size", "clevr_quirks", "fresh_data", "image_size"):
        if a[k] is not None and (k not in fields or a[k] != ap.get_default(k)):
            fields[k] = a[k]
    unknown = set(fields) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise SystemExit(f"unknown config keys {sorted(unknown)}")
    cfg = TrainConfig(**{**fields, "overrides": overrides})
    return cfg, a["resume"], a["stop_at"]


def main(argv: list[str] | None = None) -> dict:
    cfg, resume, stop_at = parse_args(argv)
    last = train(cfg, resume=resume, stop_at=stop_at)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(last))
    _leave_process_group()
    return last


def _leave_process_group() -> None:
    """Wait for every rank, then leave the process group, so that no rank tears gloo down while its
    peers still run (a rank that did aborted at exit: benchmarks/results/tuning.md)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
