"""Train AiT or a baseline: ``python -m ait.train --model ait-tiny --data triangle --out runs/ait``.

One readable loop (after nanoGPT); every setting is a field of :class:`TrainConfig` (its flags are
generated from the fields), and the run folder ``--out`` receives:

- ``config.json``: the resolved settings (``train``), the model's architecture (``model``), its
  inputs, the parameter count and provenance (command line, git revision, torch version);
- ``metrics.jsonl``: per evaluation one row for ``"split": "val"`` and one for ``"split": "test"``
  (``step``, ``epoch``, ``loss``, ``acc``; Sort-of-CLEVR also ``acc_nonrelational``,
  ``acc_relational``, ``acc_ternary``; the test row also ``train_loss``, ``lr``, ``images_per_s``);
- ``last.pt`` (every evaluation) and ``best.pt`` (best validation accuracy; never chosen on test),
  written atomically, holding tensors and plain values only (loaded with ``weights_only=True``);
- ``log.txt`` (the console lines), ``curve.png`` (the learning curves, at the end), ``tb/`` when
  ``tensorboard`` is installed.

A folder that already holds a run is refused unless ``--resume`` (continue it) or ``--overwrite``
(delete it and start again) is given. ``--resume [DIR]`` continues the run in DIR (default: ``--out``)
exactly, with ITS saved settings: model (with the workspace memories and step counter), optimiser,
schedule, data order and random state are restored, and metrics rows written after the checkpoint
(by a run killed in between) are dropped. Flags given with ``--resume`` must match the saved
settings, except ``--max-steps``, ``--eval-every``, ``--device``, ``--data-dir`` and ``--stop-at``,
which are applied and logged. ``--eval-only`` evaluates a run's checkpoint and writes nothing.

A run whose training loss stops being finite stops at the next evaluation with one line naming the
steps, before anything of those steps is evaluated or saved (its last checkpoint stays as it was).

Unset fields (None) come from the recipe (:func:`recipe`): tiny models get CPU defaults (Triangle on a
32-px canvas, 1500 steps at lr 3e-3; other sets 300 steps at lr 1e-3, batch 64); other sizes the
paper's (AdamW lr 1e-4, weight decay 0.01, 5 warm-up epochs from 1e-5, cosine to 1e-6, batch 512,
100 epochs). Model fields: ``--set key=value`` (repeatable; parsed to the field's type), or
``overrides`` in a JSON ``--config`` file.

Multi-process: ``torchrun --nproc_per_node K -m ait.train ...`` (DDP; the workspace pool is
all-gathered across ranks and the memory stays identical on every rank; ``--batch-size`` is global).
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

from hopfieldkit.runs import Log, Metrics, RunError, check_writable, load_checkpoint, prepare, provenance, save_checkpoint, \
    write_json
from hopfieldkit.settings import Parser, SettingError, add_arguments, check, coerce, from_mapping, setting

from . import data as D
from .models import AiTConfig, build, config_class, count_parameters, memory_kept, model_names

FAMILY_NAMES = ("nonrelational", "relational", "ternary")  # Sort-of-CLEVR question families


@dataclasses.dataclass
class TrainConfig:
    """Every training setting, once. ``None`` = from the recipe (:func:`recipe`), resolved before
    the run starts and saved resolved to ``config.json``."""

    model: str = setting("ait-tiny", "model key (python -c 'import ait; print(ait.model_names())')",
                         choices=tuple(model_names()))
    preset: str = setting("ait", "ait (fixed) or paper (the released code's behaviour); AiT / ViT only",
                          choices=("ait", "paper"))
    data: str = setting("triangle", "data set", choices=tuple(D.SPECS))
    data_dir: str | None = setting(None, "folder with the CIFAR files (cifar10, cifar100); Sort-of-CLEVR cache")
    train_size: int | None = setting(None, "limit the training samples (None: all)", ge=1)
    val_size: int | None = setting(None, "validation samples held out of the training data (Sort-of-CLEVR: "
                                   "images); None: the set's default, at most a tenth", ge=1)
    test_size: int | None = setting(None, "limit the test samples (None: all)", ge=1)
    clevr_quirks: bool = setting(False, "Sort-of-CLEVR with the reference generator's flaws")
    clevr_family: str = setting("all", "Sort-of-CLEVR questions trained and evaluated: all three families "
                                "mixed, or one of them (the released code trains and tests relational only)",
                                choices=("all", *FAMILY_NAMES))
    fresh_data: bool = setting(True, "Triangle: a fresh, seeded batch every step (the original's infinite mode)")
    clevr_fresh: bool = setting(False, "Sort-of-CLEVR: new training scenes in every epoch after the first, as "
                                "many as the training split, from the seed and the epoch (validation and test "
                                "fixed): no scene is seen twice, so answers cannot be memorised")
    image_size: int | None = setting(None, "Triangle canvas (None: 32 for tiny models, 64 otherwise)", ge=16)
    out: str = setting("runs/ait", "run folder")
    batch_size: int | None = setting(None, "global batch (None: 64 tiny / Sort-of-CLEVR, 512 otherwise)", ge=1)
    eval_batch_size: int | None = setting(None, "None: the training batch in the paper preset (whose memory is "
                                          "written in eval; partial batches dropped, as released), else 256", ge=1)
    lr: float | None = setting(None, "peak learning rate (None: 1e-3 tiny, 3e-3 tiny on Triangle, 1e-4 otherwise)",
                               gt=0)
    weight_decay: float = setting(0.01, "AdamW weight decay", ge=0)
    decay_all: bool = setting(False, "decay every parameter (the released code); default: Linear / Conv "
                              "weights only, no decay on norms, biases, embeddings, memories")
    warmup_lr: float = setting(1e-5, "learning rate at step 0", ge=0)
    min_lr: float = setting(1e-6, "learning rate at the end of the cosine", ge=0)
    warmup_steps: int | None = setting(None, "linear warm-up steps (None: 10 %% of the steps tiny, 5 epochs "
                                       "otherwise)", ge=0)
    max_steps: int | None = setting(None, "training steps (None: from epochs, or the recipe)", ge=1)
    epochs: int | None = setting(None, "epochs (used when max_steps is None)", ge=1)
    eval_every: int | None = setting(None, "steps between evaluations (None: a third of the run tiny, an epoch "
                                     "otherwise)", ge=1)
    grad_clip: float = setting(0.0, "clip the gradient norm to this (0: off)", ge=0)
    seed: int = setting(0, "seed of the model, data order and validation split", ge=0)
    device: str | None = setting(None, "cpu, cuda, cuda:1, ... (None: cuda when available)")
    bf16: bool = setting(False, "bfloat16 autocast")
    compile: bool = setting(False, "torch.compile the model")
    overrides: dict = setting(None, "model config fields (--set KEY=VALUE)", default_factory=dict)

    def __post_init__(self):
        check(self)
        if self.clevr_family != "all" and self.data != "sort-of-clevr":
            raise SettingError(f"clevr_family: {self.clevr_family!r} applies to --data sort-of-clevr only, not {self.data}")
        if self.clevr_fresh and self.data != "sort-of-clevr":
            raise SettingError(f"clevr_fresh applies to --data sort-of-clevr only, not {self.data}")
        if self.preset == "paper" and not self.model.startswith(("ait-", "vit-")):
            raise SettingError(f"preset: 'paper' applies to AiT and ViT only, not to {self.model}")
        cls = config_class(self.model)
        self.overrides = {k: coerce(cls, k, v) for k, v in self.overrides.items()}


# settings that may change when a run is resumed (applied and logged); every other one must match
RESUME_OVERRIDES = ("max_steps", "eval_every", "device", "data_dir")


def is_tiny(model: str) -> bool:
    """A CPU-sized model key (``ait-tiny``, ``coordination-tiny``, ...): it gets the CPU recipe."""
    return "tiny" in model.split("-")


def recipe(c: TrainConfig, n_train: int) -> dict:
    """The value of every ``None`` setting: the CPU recipe for tiny models, the paper's otherwise."""
    tiny = is_tiny(c.model)
    batch = c.batch_size if c.batch_size is not None else (64 if tiny or c.data == "sort-of-clevr" else 512)
    per_epoch = math.ceil(n_train / batch)
    if tiny:
        steps = c.max_steps if c.max_steps is not None else \
            c.epochs * per_epoch if c.epochs is not None else (1500 if c.data == "triangle" else 300)
        return dict(batch_size=batch, lr=3e-3 if c.data == "triangle" else 1e-3, max_steps=steps,
                    warmup_steps=int(0.1 * steps), eval_every=max(1, steps // 3))
    steps = c.max_steps if c.max_steps is not None else (c.epochs if c.epochs is not None else 100) * per_epoch
    return dict(batch_size=batch, lr=1e-4, max_steps=steps, warmup_steps=5 * per_epoch, eval_every=per_epoch)


def resolve(c: TrainConfig, n_train: int) -> TrainConfig:
    """``c`` with every ``None`` setting filled from :func:`recipe` (explicit values are kept, 0 included)."""
    fill = {k: v for k, v in recipe(c, n_train).items() if getattr(c, k) is None}
    out = dataclasses.replace(c, **fill)
    if out.eval_batch_size is None:
        out.eval_batch_size = out.batch_size if out.preset == "paper" else 256
    if out.device is None:
        out.device = default_device()
    if out.min_lr > out.lr or out.warmup_lr > out.lr:
        raise SettingError(f"lr {out.lr} must be at least min_lr ({out.min_lr}) and warmup_lr ({out.warmup_lr})")
    return out


def lr_at(step: int, c: TrainConfig) -> float:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps``, then cosine to ``min_lr``."""
    if step < c.warmup_steps:
        return c.warmup_lr + (c.lr - c.warmup_lr) * step / max(1, c.warmup_steps)
    t = (step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps)
    return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def param_groups(model: torch.nn.Module, weight_decay: float, decay_all: bool = False) -> list[dict]:
    """AdamW groups: decay on the weights of Linear and Conv layers; none on norms, biases, position
    embeddings, tokens, learned memories and latents (unless ``decay_all``)."""
    decay_ids = set()
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
            decay_ids.add(id(mod.weight))
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_all:
        return [{"params": params, "weight_decay": weight_decay}]
    return [{"params": [p for p in params if id(p) in decay_ids], "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) not in decay_ids], "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, decay_all: bool = False) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused (one kernel over all parameters) where torch has it for
    the model's device: per-parameter loops cost more than the update itself at tiny sizes."""
    device = next(model.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(param_groups(model, weight_decay, decay_all), lr=lr, fused=fused or None)


@torch.no_grad()
def evaluate(model, split: D.Split, batch_size: int, device, drop_last: bool = False) -> dict:
    """Loss and accuracy over the split in batches of ``batch_size`` (``drop_last``: full batches only,
    as the released code evaluates); per question family too. ``n`` = samples evaluated."""
    was_training = model.training
    model.eval()
    loss, hits, fam = 0.0, [], []
    n = len(split) - (len(split) % batch_size if drop_last else 0)
    if n == 0:
        raise ValueError(f"evaluation: {len(split)} samples make no full batch of {batch_size}")
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n))
        xb, qb, yb = split.batch(idx)
        logits, _ = model(xb.to(device), None if qb is None else qb.to(device))
        loss += F.cross_entropy(logits.float(), yb.to(device), reduction="sum").item()
        hits.append(logits.argmax(-1).cpu() == yb)
    model.train(was_training)
    hits = torch.cat(hits).float()
    out = {"loss": loss / n, "acc": hits.mean().item(), "n": n}
    if split.family is not None:
        family = split.family[:n]
        for f, name in enumerate(FAMILY_NAMES):
            sel = family == f
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


def check_device(name: str) -> torch.device:
    """``name`` as a torch device that this machine has (a clear error otherwise)."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SettingError(f"device: {name!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingError(f"device: {name!r} asked for, but this torch build or machine has no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SettingError(f"device: {name!r}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise SettingError(f"device: {name!r} asked for, but MPS is not available")
    return dev


def load_split(c: TrainConfig, split: str) -> D.Split:
    """One split of a run's data (``train``, ``val`` or ``test``), exactly as training sees it."""
    size = c.test_size if split == "test" else c.train_size
    out = D.load(c.data, split, data_dir=c.data_dir, size=size, seed=c.seed, clevr_quirks=c.clevr_quirks,
                 image_size=c.image_size, val_size=c.val_size)
    return family_only(c, out)


def family_only(c: TrainConfig, split: D.Split) -> D.Split:
    """The questions of the run's Sort-of-CLEVR family (their images are kept as they are); all of them
    for ``clevr_family="all"``."""
    if c.clevr_family == "all":
        return split
    return split.take(torch.nonzero(split.family == FAMILY_NAMES.index(c.clevr_family)).squeeze(1))


def training_split(c: TrainConfig, fixed: D.Split, epoch: int) -> D.Split:
    """The split epoch ``epoch`` trains on: the fixed one, or with ``clevr_fresh`` after epoch 0 new
    scenes as many as the fixed split's (:func:`ait.data.fresh_clevr`)."""
    if not c.clevr_fresh or epoch == 0:
        return fixed
    return family_only(c, D.fresh_clevr(len(fixed.images), c.seed, epoch, c.clevr_quirks))


def load_data(c: TrainConfig):
    """(training split or None for fresh Triangle batches, validation split, test split, samples per epoch)."""
    fresh = c.data == "triangle" and c.fresh_data
    train_set = None if fresh else load_split(c, "train")
    return train_set, load_split(c, "val"), load_split(c, "test"), D.TRIANGLE_EPOCH if fresh else len(train_set)


def default_device() -> str:
    """``cuda`` when this machine has it, else ``cpu`` (what ``device=None`` means)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def model_for(c: TrainConfig) -> torch.nn.Module:
    """The model of a resolved config (the data set's patch size unless ``overrides`` sets one)."""
    torch.manual_seed(c.seed)
    overrides = {"patch": D.SPECS[c.data].patch, **c.overrides}
    return build(c.model, D.input_spec(c.data, c.image_size), preset=c.preset, **overrides)


@dataclasses.dataclass
class Plan:
    """A checked run, ready to start: nothing has been written yet."""

    cfg: TrainConfig
    mode: str                         # "new" or "resume"
    stop_at: int | None = None
    applied: dict = dataclasses.field(default_factory=dict)   # settings changed on resume
    eval_only: bool = False


FINGERPRINT_STEPS = 3   # training losses recorded at steps 1…3 of every new run


def train(cfg: TrainConfig | Plan, resume: bool = False, progress: bool | None = None, stop_at: int | None = None,
          overwrite: bool = False) -> dict:
    """Run (or continue) a training job; returns the last test evaluation (with ``val_acc``).

    ``cfg`` is a :class:`TrainConfig` (``resume`` continues the run in ``cfg.out``; ``overwrite``
    deletes a run there first) or a :class:`Plan` from :func:`parse_args`. Under ``torchrun`` the
    global batch is split over the ranks, the model is wrapped in DistributedDataParallel, the
    workspace pool is all-gathered so every rank writes the identical memory, and rank 0 writes the files.
    """
    if isinstance(cfg, Plan):
        plan = cfg
    elif resume:
        plan = Plan(saved_config(pathlib.Path(cfg.out)), "resume", stop_at)
    else:
        plan = Plan(cfg, "overwrite" if overwrite else "new", stop_at)
    if int(os.environ.get("RANK", "0")) == 0:  # only rank 0 writes (the other ranks would see its files)
        if plan.mode == "overwrite":            # the run in it is deleted only once all is checked
            check_writable(pathlib.Path(plan.cfg.out))
        else:                                   # refuse a folder that holds a run / one that holds none
            prepare(plan.cfg.out, resume=plan.mode == "resume", overwrite=False)
    rank, world, device = setup_distributed(plan.cfg.device or default_device())
    c0 = dataclasses.replace(plan.cfg, device=device)
    if c0.image_size is None and c0.data == "triangle":  # the canvas the data is generated at
        c0.image_size = 32 if is_tiny(c0.model) else 64
    out = pathlib.Path(c0.out)
    try:
        train_set, val_set, test_set, n_train = load_data(c0)
        c = c0 if plan.mode == "resume" else resolve(c0, n_train)
        dev = check_device(c.device)
        model = model_for(c).to(dev)
    except SettingError:
        raise
    except ValueError as exc:  # a data set / model combination that cannot work, found before writing
        raise SettingError(str(exc)) from None
    if c.batch_size % world:
        raise SettingError(f"batch_size {c.batch_size} must be divisible by the number of processes {world}")
    if c.preset == "paper" and min(len(val_set), len(test_set)) < c.eval_batch_size:
        raise SettingError(f"eval_batch_size {c.eval_batch_size}: the paper preset evaluates full batches only, and "
                           f"the validation / test splits hold {len(val_set)} / {len(test_set)} samples")
    opt = make_optimizer(model, c.lr, c.weight_decay, c.decay_all)
    gen = torch.Generator().manual_seed(c.seed)
    step, best = 0, -1.0
    before = 0.0   # seconds of training before this process: saved with each checkpoint (nan: not recorded)
    metrics = Metrics(out / "metrics.jsonl")
    log = Log(out / "log.txt", enabled=rank == 0)
    ck = None
    if plan.mode == "resume":
        if (out / "last.pt").exists():
            ck = load_checkpoint(out / "last.pt", map_location=dev)
            try:
                model.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                gen.set_state(ck["generator"])
                torch.set_rng_state(ck["torch_rng"])
                step, best = int(ck["step"]), float(ck["best"])
                before = float(ck.get("train_s", math.nan))   # checkpoints before it was recorded lack it
            except (KeyError, RuntimeError, ValueError, TypeError) as exc:
                raise RunError(f"{out / 'last.pt'} does not match this run's model and optimiser: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            if c.max_steps < step:
                raise SettingError(f"max_steps {c.max_steps} is before the checkpoint's step {step}")
    # --- everything is checked; from here on the run folder is written ---
    if rank == 0:
        if plan.mode == "overwrite":
            prepare(out, resume=False, overwrite=True)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
        if plan.mode == "resume":
            dropped = metrics.truncate(step)
            if ck is None:
                log(f"{out}: no checkpoint yet (the run stopped before its first one); starting it again from "
                    f"step 0 with its saved settings")
            else:
                log(f"resuming {out} at step {step}" + (f", dropped {dropped} metrics row(s) written after the "
                                                         f"checkpoint" if dropped else ""))
            for k, (old, new) in plan.applied.items():
                log(f"resume override: {k} {old} -> {new}")
            if plan.applied:
                conf = json.loads((out / "config.json").read_text())
                conf["train"] = dataclasses.asdict(dataclasses.replace(c, device=plan.cfg.device))
                conf.setdefault("resumes", []).append({"at_step": step, "overrides": {k: v[1] for k, v in
                                                                                      plan.applied.items()},
                                                       **provenance()})
                write_json(out / "config.json", conf)
        else:
            write_json(out / "config.json", {"train": dataclasses.asdict(c), "model": dataclasses.asdict(model.cfg),
                                             "inputs": dataclasses.asdict(model.inputs),
                                             "parameters": count_parameters(model), "world_size": world,
                                             "provenance": provenance()})
        preset = f" ({c.preset} preset)" if c.model.startswith(("ait-", "vit-")) else ""
        log(f"{c.model}{preset} on {c.data}: {count_parameters(model):,} parameters, {c.max_steps} steps of batch "
            f"{c.batch_size}, lr {c.lr:g}, {world} process(es), device {dev}, out {out}")
    run_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        run_model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    run_model = torch.compile(run_model) if c.compile else run_model
    writer = None
    if rank == 0:
        try:  # TensorBoard when it is installed; metrics.jsonl always
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"))
        except Exception:
            writer = None
    local = c.batch_size // world
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=c.max_steps, initial=step, desc=c.model)
    end = c.max_steps if plan.stop_at is None else min(plan.stop_at, c.max_steps)
    last, t0, t_start, seen, resumed_at = {}, time.time(), time.time(), 0, step
    first_losses = []   # the fingerprint of the code's numbers (fingerprint.json; ait.stale checks it)
    per_epoch = math.ceil(n_train / c.batch_size)
    fixed_train, epoch_now = train_set, 0
    drop_last = c.preset == "paper"
    finite, checked = torch.ones((), dtype=torch.bool, device=dev), step   # the loss since the last check
    while step < end:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, c)
        part = slice(rank * local, (rank + 1) * local)
        if train_set is None:
            xb, yb = D.fresh_triangles(c.batch_size, c.seed, step, c.image_size)      # the global batch
            xb, qb, yb = xb[part], None, yb[part]
        else:
            if step // per_epoch != epoch_now:  # clevr_fresh: new scenes at each epoch's first step
                epoch_now, t_gen = step // per_epoch, time.time()
                train_set = training_split(c, fixed_train, epoch_now)
                if train_set is not fixed_train:
                    log(f"epoch {epoch_now}: {len(train_set.images):,} new scenes ({time.time() - t_gen:.0f} s)")
            idx = torch.randint(0, n_train, (c.batch_size,), generator=gen)  # the global batch
            xb, qb, yb = train_set.batch(idx[part])
        if c.data in D.AUGMENTED:
            xb = D.augment_crop_flip(xb, gen)
        xb, yb = xb.to(dev), yb.to(dev)
        qb = None if qb is None else qb.to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=c.bf16):
            logits, aux = run_model(xb, qb)
            loss = F.cross_entropy(logits.float(), yb) + aux.float()
        finite &= torch.isfinite(loss.detach())   # no host sync: read at the next check
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        step += 1
        seen += c.batch_size
        if step <= FINGERPRINT_STEPS and plan.mode != "resume" and rank == 0:
            first_losses.append(loss.item())
            if step == FINGERPRINT_STEPS:
                write_json(out / "fingerprint.json", {"steps": FINGERPRINT_STEPS, "train_loss": first_losses,
                                                      **provenance()})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, c):.1e}")
        if step % c.eval_every == 0 or step == c.max_steps or step == end:
            check_finite_loss(finite, checked, step, world)
            checked = step
        if step % c.eval_every == 0 or step == c.max_steps:
            train_loss = loss.detach()
            if world > 1:  # log the global batch's loss, not rank 0's share
                import torch.distributed as dist
                dist.all_reduce(train_loss)
                train_loss = train_loss / world
            speed = round(seen / (time.time() - t0), 1)
            epoch = round(step / per_epoch, 3)
            # the paper preset writes the memory during evaluation: the validation pass must not
            # change the memory that the test pass (as the released code's) and training go on from
            with memory_kept(model):
                val = {"step": step, "epoch": epoch, "split": "val",
                       **evaluate(model, val_set, c.eval_batch_size, dev, drop_last)}
            last = {"step": step, "epoch": epoch, "split": "test",
                    **evaluate(model, test_set, c.eval_batch_size, dev, drop_last),
                    "train_loss": train_loss.item(), "lr": lr_at(step, c), "images_per_s": speed}
            improved = val["acc"] > best
            best = max(best, val["acc"])
            if rank == 0:
                metrics.append(val)
                metrics.append(last)
                if writer is not None:
                    for split_row in (val, last):
                        for k, v in split_row.items():
                            if isinstance(v, float) and k != "epoch":
                                writer.add_scalar(f"{split_row['split']}/{k}", v, step)
                log(f"step {step}/{c.max_steps}  train loss {last['train_loss']:.4f}  val acc {100 * val['acc']:.2f} %"
                    f"  test acc {100 * last['acc']:.2f} %  lr {last['lr']:.2e}  {speed:.0f} img/s"
                    + ("  (best val)" if improved else ""))
                if improved:
                    save_checkpoint({"model": model.state_dict(), "step": step, "val_acc": val["acc"]}, out / "best.pt")
            last = {**last, "val_acc": val["acc"]}
        if rank == 0 and (step % c.eval_every == 0 or step == end):
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                     "torch_rng": torch.get_rng_state(), "step": step, "best": best,
                     "train_s": before + time.time() - t_start}
            save_checkpoint(state, out / "last.pt")
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if rank == 0 and step == c.max_steps:
        summary(out, log, time.time() - t_start, before, resumed_at)
    return last


def check_finite_loss(finite: torch.Tensor, since: int, step: int, world: int) -> None:
    """Stop a diverged run before it evaluates or saves: the training loss was not finite at some
    step in (since, step] (on any rank). Nothing from those steps is written; last.pt holds step ``since``."""
    if world > 1:
        import torch.distributed as dist
        flag = finite.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        finite = flag.bool()
    if not bool(finite):
        saved = f"the run's last checkpoint is at step {since}" if since else "no checkpoint was written"
        raise RunError(f"training diverged: the loss was not finite at a step in {since + 1}..{step}; nothing "
                       f"of those steps was saved ({saved}); try a lower --lr or --grad-clip 1")


def summary(out: pathlib.Path, log: Log, elapsed: float, before: float = 0.0, resumed_at: int = 0) -> dict:
    """The final console line (best validation, test at the last and the val-best step, time, folder)
    and ``curve.png``. The time is the whole run's: ``before`` seconds up to the checkpoint this
    process resumed from at step ``resumed_at`` (nan when that checkpoint did not record it) and
    ``elapsed`` in this process."""
    rows = Metrics(out / "metrics.jsonl").rows()
    val = [r for r in rows if r.get("split") == "val"]
    test = {r["step"]: r for r in rows if r.get("split") == "test"}
    if not val or not test:
        return {}
    best = max(val, key=lambda r: (r["acc"], -r["step"]))
    final = test[max(test)]
    at_best = test.get(best["step"], {})
    log(f"done: best val acc {100 * best['acc']:.2f} % at step {best['step']} (test {100 * at_best.get('acc', float('nan')):.2f} %), "
        f"final test acc {100 * final['acc']:.2f} % at step {final['step']}, {run_time(elapsed, before, resumed_at)}, "
        f"run in {out}")
    learning_curve(rows, out / "curve.png")
    return {"best_val": best, "final_test": final}


def run_time(elapsed: float, before: float, resumed_at: int) -> str:
    """The run's training time for the final line, saying how a resumed run's time adds up (the time
    between a run's last checkpoint and its interruption is not counted)."""
    if not resumed_at:
        return f"{elapsed:.0f} s"
    if math.isnan(before):
        return (f"{elapsed:.0f} s since the resume at step {resumed_at} (the time before it was not recorded "
                f"in that checkpoint)")
    return f"{before + elapsed:.0f} s ({before:.0f} s to step {resumed_at}, {elapsed:.0f} s after resuming)"


def learning_curve(rows: list[dict], path: pathlib.Path) -> None:
    """Training loss and validation / test accuracy against the step."""
    from matplotlib.figure import Figure   # no pyplot: the caller's backend and figures are left alone

    fig = Figure(figsize=(8, 3.2))
    a, b = fig.subplots(1, 2)
    test = [r for r in rows if r.get("split") == "test"]
    a.plot([r["step"] for r in test], [r["train_loss"] for r in test], "o-")
    a.set_xlabel("step")
    a.set_ylabel("training loss")
    for split in ("val", "test"):
        rs = [r for r in rows if r.get("split") == split]
        b.plot([r["step"] for r in rs], [100 * r["acc"] for r in rs], "o-", label=split)
    b.set_xlabel("step")
    b.set_ylabel("accuracy (%)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def saved_config(run: pathlib.Path) -> TrainConfig:
    """The resolved settings a run was started with (its ``config.json``)."""
    path = run / "config.json"
    if not path.is_file():
        raise RunError(f"{run} holds no run (no config.json)")
    try:
        conf = json.loads(path.read_text())
        return from_mapping(TrainConfig, {**conf["train"], "out": str(run)}, f"{path}")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{path} is not a config.json written by ait.train: {exc}") from None


def read_config_file(path: str) -> dict:
    """Settings from a JSON file (``overrides`` holds model fields). YAML is refused with a clear message."""
    p = pathlib.Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        raise SettingError(f"--config {path}: YAML is not supported; write the settings as JSON")
    try:
        fields = json.loads(p.read_text())
    except OSError as exc:
        raise SettingError(f"--config {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise SettingError(f"--config {path}: not valid JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise SettingError(f"--config {path}: expected a JSON object of settings")
    return fields


def _parse_set(items: list[str]) -> dict:
    out = {}
    for kv in items:
        if "=" not in kv:
            raise SettingError(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m ait.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, TrainConfig, skip=("overrides",))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a model config field, parsed to its type, e.g. --set hopfield_steps=3; AiT / ViT fields: "
                         f"{', '.join(f.name for f in dataclasses.fields(AiTConfig))}; baselines: the fields of "
                         "their config (ait.config_class(name))")
    ap.add_argument("--config", default=None, help="JSON file of settings (and 'overrides': model fields)")
    ap.add_argument("--resume", nargs="?", const=True, default=None, metavar="DIR",
                    help="continue the run in DIR (default: --out) with its saved settings")
    ap.add_argument("--overwrite", action="store_true", help="delete the run in --out and start again")
    ap.add_argument("--stop-at", type=int, default=None, help="stop after this step (resume later)")
    ap.add_argument("--eval-only", action="store_true",
                    help="evaluate the run in --out / --resume DIR (best.pt, else last.pt) and write nothing")
    return ap


def parse_args(argv: list[str] | None = None) -> Plan:
    """The command line as a checked :class:`Plan` (nothing is written)."""
    ap = parser()
    a = vars(ap.parse_args(argv))
    given = {k: v for k, v in a.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    if a["config"]:
        fields = read_config_file(a["config"])
        given = {**{k: v for k, v in fields.items()}, **given}
    overrides = dict(given.pop("overrides", {}) or {})
    overrides.update(_parse_set(a["set"]))
    if a["stop_at"] is not None and a["stop_at"] < 1:
        raise SettingError(f"stop_at: expected a value ≥ 1, got {a['stop_at']}")
    resume = a["resume"]
    if resume is not None or a["eval_only"]:
        run = pathlib.Path(resume if isinstance(resume, str) else given.get("out", TrainConfig.out))
        if resume is not None and isinstance(resume, str) and "out" in given and pathlib.Path(given["out"]) != run:
            raise SettingError(f"--resume {resume} and --out {given['out']} name different folders")
        saved = saved_config(run)
        applied = {}
        for k, v in given.items():
            if k == "out":
                continue
            new = coerce(TrainConfig, k, v)
            old = getattr(saved, k)
            if new == old:
                continue
            if k in RESUME_OVERRIDES or a["eval_only"]:
                applied[k] = (old, new)
            else:
                raise SettingError(f"--{k.replace('_', '-')} {new} differs from the run's saved {old}; a resumed run "
                                   f"keeps its settings (changeable: {', '.join('--' + x.replace('_', '-') for x in RESUME_OVERRIDES)})")
        if overrides:
            saved_o = saved.overrides
            new_o = {k: coerce(config_class(saved.model), k, v) for k, v in overrides.items()}
            diff = {k: v for k, v in new_o.items() if saved_o.get(k) != v}
            if diff:
                raise SettingError(f"--set {diff} differs from the run's saved model settings {saved_o}; a resumed run "
                                   f"keeps its model")
        cfg = dataclasses.replace(saved, **{k: v[1] for k, v in applied.items()})
        if a["overwrite"]:
            raise SettingError("--resume and --overwrite exclude each other")
        return Plan(cfg, "resume", a["stop_at"], applied, a["eval_only"])
    cfg = from_mapping(TrainConfig, {**given, "overrides": overrides}, "settings")
    return Plan(cfg, "overwrite" if a["overwrite"] else "new", a["stop_at"])


def eval_only(plan: Plan) -> dict:
    """Validation and test accuracy of a run's best.pt (else last.pt); nothing is written."""
    out = pathlib.Path(plan.cfg.out)
    c = plan.cfg
    dev = check_device(c.device or default_device())
    val_set, test_set = load_split(c, "val"), load_split(c, "test")
    model = model_for(c).to(dev)
    path = out / "best.pt" if (out / "best.pt").exists() else out / "last.pt"
    state = load_checkpoint(path, map_location=dev)
    model.load_state_dict(state["model"])
    drop_last = c.preset == "paper"
    res = {"checkpoint": str(path), "step": state.get("step"),
           "val": evaluate(model, val_set, c.eval_batch_size, dev, drop_last),
           "test": evaluate(model, test_set, c.eval_batch_size, dev, drop_last)}
    print(f"{path} (step {res['step']}): val acc {100 * res['val']['acc']:.2f} %, test acc "
          f"{100 * res['test']['acc']:.2f} %", file=sys.stderr)
    return res


def main(argv: list[str] | None = None) -> dict:
    """The command line; a user error (bad flag or value, unreadable config, refused folder, corrupt
    checkpoint, missing data) is one line on stderr and exit status 2."""
    try:
        plan = parse_args(argv)
        if plan.eval_only:
            result = eval_only(plan)
            print(json.dumps(result))
            return result
        last = train(plan)
    except (RunError, SettingError, FileNotFoundError) as exc:
        print(f"python -m ait.train: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
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
