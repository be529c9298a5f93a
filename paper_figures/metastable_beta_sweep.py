"""Metastable states against β, regenerated from code ([R] §2; the AiT poster's β = 0.05 / 1 / 4).

Stored patterns: scikit-learn's 8×8 digits (ships with the package), centred and scaled to equal
norm. Starts: the stored digits with a quarter of their pixels blanked. For each β the script
finds the fixed points (``hopfieldkit.fixed_points``), classifies them from their softmax weights
(k = fewest patterns holding 90 % of the mass: single k = 1, metastable 1 < k ≤ N/2, global
k > N/2) and draws

  (a) the number of stable fixed points of each kind against β,
  (b) the mean k of the fixed points the starts reach, against β,
  (c) what 10 masked digits retrieve at β = 0.05, 1.0 and 4.0: at small β several queries
      retrieve the identical mixture (a metastable state), at large β each its own digit.

    python paper_figures/metastable_beta_sweep.py              # small default, seconds on CPU
    python paper_figures/metastable_beta_sweep.py --full       # all 1797 digits, finer β grid

Writes ``<out>/metastable_beta_sweep.png`` and ``<out>/metastable_beta_sweep.md`` (the table,
with the command and git revision that made it).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch

import hopfieldkit as hk
from hopfieldkit.checkpoint import git_revision

HERE = pathlib.Path(__file__).resolve().parent


def digit_patterns(n: int, mask_frac: float, seed: int):
    """(patterns, labels, masked starts, to_image): digits centred and scaled to norm 4;
    ``to_image`` undoes the centring and scaling for display."""
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = torch.tensor(d.data, dtype=torch.float64)
    mean = raw.mean(0)
    X = raw - mean
    scale = float(X.norm(dim=-1).mean()) / 4.0
    X = 4.0 * X / X.norm(dim=-1, keepdim=True)
    P, y = X[:n], torch.tensor(d.target[:n])
    g = torch.Generator().manual_seed(seed)
    q = P.clone()
    q[torch.rand(P.shape, generator=g) < mask_frac] = 0.0
    return P, y, q, lambda v: (v * scale + mean).reshape(8, 8).clamp(0, 16).numpy()


def main(argv: list[str] | None = None) -> pathlib.Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patterns", type=int, default=100, help="stored digits (default 100)")
    ap.add_argument("--betas", type=int, default=12, help="β values on a log grid (default 12)")
    ap.add_argument("--mask", type=float, default=0.25, help="fraction of pixels blanked in the starts")
    ap.add_argument("--full", action="store_true", help="all 1797 digits and 30 β values")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=pathlib.Path, default=HERE.parent / "runs" / "paper_figures",
                    help="output folder (default runs/paper_figures, untracked; --out paper_figures/results "
                         "updates the committed result)")
    args = ap.parse_args(argv)
    if args.full:
        args.patterns, args.betas = 1797, 30

    import matplotlib.pyplot as plt

    P, y, q, to_image = digit_patterns(args.patterns, args.mask, args.seed)
    E = hk.HopfieldEnergy(P)
    betas = np.logspace(-1.5, 2, args.betas)
    sweep = hk.beta_sweep(P, betas, q, progress=sys.stderr.isatty())

    fig = plt.figure(figsize=(12, 7.5))
    gs = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
    axc = sweep.plot(fig.add_subplot(gs[0, 0]))
    axc.set_title("(a) stable fixed points by kind")
    axk = fig.add_subplot(gs[0, 1])
    reached_k = []
    for r in sweep.results:
        lab = r.labels[r.labels >= 0]
        reached_k.append(float(r.support[lab].double().mean()))
    axk.semilogx(betas, reached_k, "o-")
    axk.set_xlabel("β")
    axk.set_ylabel("mean k reached from the starts")
    axk.set_title("(b) patterns mixed at the fixed point (90 % mass)")

    show = [0.05, 1.0, 4.0]
    n_show = 10
    sub = gs[1, :].subgridspec(len(show) + 1, n_show, hspace=0.1, wspace=0.05)
    rows = [("masked start", q[:n_show])]
    for b in show:
        rows.append((f"β = {b}", hk.descend(E, q[:n_show], b, steps=3000).xi))
    for i, (name, imgs) in enumerate(rows):
        for j in range(n_show):
            a = fig.add_subplot(sub[i, j])
            a.imshow(to_image(imgs[j]), cmap="gray_r", vmin=0, vmax=16)
            a.set_xticks([])
            a.set_yticks([])
            if j == 0:
                a.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"Modern Hopfield fixed points on {args.patterns} digits: global → metastable → single as β grows")
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "metastable_beta_sweep.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)

    cmd = "python paper_figures/metastable_beta_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = args.out / "metastable_beta_sweep.md"
    md.write_text(
        f"# Metastable states against β\n\nCommand: `{cmd.strip()}`  \nGit revision: `{git_revision(HERE)}`  \n"
        f"Patterns: {args.patterns} digits (centred, norm 4); starts: the same digits with "
        f"{args.mask:.0%} of pixels blanked; torch {torch.__version__}, CPU.\n\n"
        f"Stable fixed points reached from the starts, by kind (k = patterns holding 90 % of the "
        f"softmax mass):\n\n```\n{sweep.table()}\n```\n")
    print(sweep.table())
    print(f"wrote {png} and {md}")
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
