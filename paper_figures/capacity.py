"""Capacity of associative memories, measured under one protocol beside the theory.

    python paper_figures/capacity.py                 # both figures, ~10 min on 1 CPU core
    python paper_figures/capacity.py --quick         # a smoke run (small N, few trials)

Protocol (``hopfieldkit.capacity``): random ±1 patterns, one of them recalled per trial from a copy
with round(0.15 N) flipped bits, sequential asynchronous sweeps (CCCP updates for the modern
network), exact recall, ``--trials`` trials per point, seeds fixed.

(a) ``capacity_curves.png``: recall rate against the load α = P/N at N = 100, 200, 400 for Hebb,
    Storkey, pseudo-inverse and the (symmetric) perceptron (N ≤ 200, α ≤ 0.5), with the theory markers: N/(4 ln N) and
    N/(2 ln N) (Hebb, exact fixed points), α = 0.138 (Hebb, retrieval with a few errors), Storkey's
    N/√(2 ln N), and Gardner's α = 2 (independent rows). The Hebb column at N = 100 is printed beside
    the independent package's measurement (0.95 / 0.65 / 0.30 / 0.00 / 0.00 at P = 7 … 29).
(b) ``capacity_classical_to_modern.png``: the largest P recalled in 90 % of trials against N (log
    scale) for Hebb, dense AM with F = z³ and z⁴, the exponential DAM and the continuous modern
    network, with Hebb's N/(2 ln N) (one pattern recalled per trial), Krotov and Hopfield's N^{n−1}/(2(2n−3)!! ln N) and
    Demircigil's exp(αN) (α for a 15 % corruption).

Writes the two figures and ``capacity.md`` (every number, with the command and git revision).
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import torch

from hopfieldkit import capacity as K
from hopfieldkit import theory as T
from hopfieldkit.checkpoint import git_revision

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE_HEBB_N100 = {7: 0.95, 13: 0.65, 19: 0.30, 25: 0.0, 29: 0.0}
RULE_LABELS = {"hebbian": "Hebb", "storkey": "Storkey", "pseudo_inverse": "pseudo-inverse", "perceptron": "perceptron (sym.)"}


def curves(sizes, alphas, trials, corruption):
    out = {}
    for rule in K.RULES:
        for N in sizes:
            loads = sorted({max(1, int(round(a * N))) for a in alphas})
            if rule == "perceptron":
                if N > 200:
                    continue                                        # its epochs grow as N² P per pass
                loads = [p for p in loads if p <= 0.5 * N]
            out[rule, N] = K.capacity_curve(rule, N, loads, trials=trials, corruption=corruption)
            print(f"{rule:15s} N={N:4d}: " + " ".join(f"{p}:{r:.2f}" for p, r in zip(loads, out[rule, N].rates)),
                  flush=True)
    return out


def classical_to_modern(sizes, trials, corruption):
    models = {"hebbian": sizes, "dense-3": sizes, "dense-4": [n for n in sizes if n <= 48],
              "dense-exp": [n for n in sizes if n <= 40], "modern": [n for n in sizes if n <= 40]}
    out = {}
    for model, Ns in models.items():
        for N in Ns:
            out[model, N] = K.largest_recalled(model, N, threshold=0.9, trials=trials, corruption=corruption,
                                               limit=4096)
            print(f"{model:10s} N={N:3d}: largest P recalled in 90 % of trials = {out[model, N]}", flush=True)
    return out


def draw(curve_data, sizes, top, out_dir, corruption):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(K.RULES), figsize=(4.2 * len(K.RULES), 3.6), sharey=True)
    for ax, rule in zip(axes, K.RULES):
        for N in sizes:
            if (rule, N) in curve_data:
                curve_data[rule, N].plot(ax, label=f"N = {N}")
        N0 = sizes[-1]
        marks = {"hebbian": [("N/4lnN", T.hebb_capacity_all(N0) / N0), ("N/2lnN", T.hebb_capacity_single(N0) / N0),
                             ("0.138", T.AGS_ALPHA_C)],
                 "storkey": [("N/√(2lnN)", T.storkey_capacity(N0) / N0)],
                 "pseudo_inverse": [("α = 1", 1.0)], "perceptron": [("Gardner 2", T.gardner_alpha(0.0))]}[rule]
        for name, a in marks:
            ax.axvline(a, color="gray", ls=":", lw=1)
            ax.text(a, 1.02, name, rotation=90, fontsize=7, va="bottom", ha="center", color="gray")
        ax.set_title(RULE_LABELS[rule], pad=34)
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=7)
        if ax is not axes[0]:
            ax.set_ylabel("")
    fig.suptitle(f"exact recall from {corruption:.0%} flipped bits (dotted: theory at N = {sizes[-1]})", y=1.12)
    fig.subplots_adjust(wspace=0.12)
    fig.savefig(out_dir / "capacity_curves.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    styles = {"hebbian": "Hebb", "dense-3": "dense AM z³", "dense-4": "dense AM z⁴", "dense-exp": "exponential DAM",
              "modern": "modern (continuous)"}
    for model, label in styles.items():
        Ns = sorted(N for (m, N) in top if m == model)
        line = ax.plot(Ns, [max(top[model, N], 0.8) for N in Ns], "o-", label=label)[0]
        c = line.get_color()
        grid = torch.linspace(min(Ns), max(Ns), 50).tolist()
        if model == "hebbian":   # one pattern recalled per trial: the single-pattern bound
            ax.plot(grid, [T.hebb_capacity_single(int(n)) for n in grid], ":", color=c)
        elif model in ("dense-3", "dense-4"):
            n = int(model[-1])
            ax.plot(grid, [T.krotov_capacity(int(x), n) for x in grid], ":", color=c)
        elif model == "dense-exp":
            a = T.demircigil_alpha(corruption)
            ax.plot(grid, [math.exp(a * x) for x in grid], ":", color=c)
    ax.axhline(4096, color="gray", lw=0.8, ls="--")
    ax.text(min(N for _, N in top), 4096 * 1.15, "search limit 4096", fontsize=7, color="gray")
    ax.set_yscale("log")
    ax.set_xlabel("N (neurons)")
    ax.set_ylabel("largest P recalled (90 % of trials)")
    ax.set_title("classical to modern (dotted: theory)", pad=14)
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(out_dir / "capacity_classical_to_modern.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N and few trials (a smoke run)")
    ap.add_argument("--trials", type=int, default=None, help="trials per point (default 50; --quick 6)")
    ap.add_argument("--corruption", type=float, default=0.15)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/paper_figures"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(args.threads)
    trials = args.trials or (6 if args.quick else 50)
    sizes = [30, 60] if args.quick else [100, 200, 400]
    alphas = [0.05, 0.15, 0.3] if args.quick else [0.03, 0.06, 0.1, 0.14, 0.18, 0.25, 0.35, 0.5, 0.7, 0.9]
    mod_sizes = [8, 12] if args.quick else [8, 16, 24, 32, 40, 64, 100]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = curves(sizes, alphas, trials, args.corruption)
    ref = K.capacity_curve("hebbian", 100, list(REFERENCE_HEBB_N100), trials=trials, corruption=0.15)
    top = classical_to_modern(mod_sizes, trials, args.corruption)
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    draw(data, sizes, top, args.out, args.corruption)
    cmd = ("python paper_figures/capacity.py " + " ".join(argv)).strip()
    lines = [f"# Capacity under one protocol\n\nCommand: `{cmd}`  \nGit revision: `{git_revision(HERE)}`  \n"
             f"{trials} trials a point, {args.corruption:.0%} flipped bits, exact recall, sequential async sweeps; "
             f"{(time.perf_counter() - t0) / 60:.1f} min on {args.threads} thread(s).\n",
             "## Hebb at N = 100 beside the independent package (20 trials a point there)\n",
             "| P | ours | independent package |", "|---|---|---|"]
    lines += [f"| {p} | {r:.2f} ± {s:.2f} | {REFERENCE_HEBB_N100[p]:.2f} |" for p, r, s in zip(ref.loads, ref.rates, ref.stderr)]
    lines += ["", "## Recall rate against load (rate at each P)\n", "| rule | N | P: rate |", "|---|---|---|"]
    for (rule, N), c in data.items():
        lines.append(f"| {RULE_LABELS[rule]} | {N} | " + ", ".join(f"{p}: {r:.2f}" for p, r in zip(c.loads, c.rates)) + " |")
    lines += ["", "## Largest P recalled in 90 % of trials (search limit 4096)\n",
              "Theory: Hebb N/(2 ln N) (each single pattern a fixed point: one pattern is recalled per trial); "
              "dense AM N^{n−1}/(2(2n−3)!! ln N) (Krotov and Hopfield, exact recall); exponential DAM exp(αN) with "
              f"α = {T.demircigil_alpha(args.corruption):.4f} for {args.corruption:.0%} corruption (Demircigil et al.: an "
              "asymptotic rate, so small N sit above it); none stated here for the continuous modern network.\n",
              "| model | N | P | theory |", "|---|---|---|---|"]
    for (model, N), P in top.items():
        th = {"hebbian": T.hebb_capacity_single(N), "dense-exp": math.exp(T.demircigil_alpha(args.corruption) * N)}.get(model)
        if model in ("dense-3", "dense-4"):
            th = T.krotov_capacity(N, int(model[-1]))
        lines.append(f"| {model} | {N} | {P} | {'—' if th is None else f'{th:.3g}'} |")
    md = "\n".join(lines) + "\n"
    (args.out / "capacity.md").write_text(md)
    print(md)
    return md


if __name__ == "__main__":
    main()
