"""The poster's reconstruction figure: patches read from the learned priors at β = 0.05, 1.0 and 4.0.

    python paper_figures/beta_reconstruction.py            # from the small-scale AiT-tiny Triangle run
    python paper_figures/beta_reconstruction.py --full     # from the full-scale AiT-Small Triangle run

Takes the patch representations z entering the first global workspace for 8 test images, reads
them with one Hopfield step ẑ = f_LT(γ)ᵀ softmax(β f_LT(γ) z) (and to convergence) at each β, and
plots the 2-D PCA of z and of ẑ: hue = image, brightness = patch. At small β every patch is pulled
to (nearly) the same point, the global average of the priors ("identical patches retrieved"); at
larger β patches keep apart, each near a metastable mixture or a single prior. Writes
``beta_reconstruction_<scale>.png`` and ``.md`` (spread and number of distinct retrievals per β).
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402

BETAS = (0.05, 1.0, 4.0)
MODEL = {"small": "ait-tiny", "full": "ait-small"}


def distinct(v, tol: float = 1e-2) -> int:
    """Number of distinct rows of v [n, d], merging rows closer than tol·(typical row norm)."""
    scale = v.norm(dim=-1).mean().clamp_min(1e-12)
    reps: list = []
    for row in v:
        if not any(((row - r).norm() / scale) < tol for r in reps):
            reps.append(row)
    return len(reps)


def main(argv: list[str] | None = None):
    argv, a, scale = R.parse(__doc__, argv, lambda ap: ap.add_argument("--images", type=int, default=8))
    run = R.Run(MODEL[scale], "triangle")
    paths = R.ensure([run], scale, execute=not a.no_run, root=a.runs_root, extra=R.extra_args(a))
    R.require_some(paths, "β reconstruction")
    import colorsys

    import matplotlib.pyplot as plt
    import torch

    import hopfieldkit as hk
    from ait import data as D
    from ait.evaluate import load_run, workspace_input

    model, tc = load_run(paths[run])
    split = D.load(tc.data, "test", size=max(64, a.images), seed=tc.seed, image_size=tc.image_size)
    x, q, _ = split.batch(torch.arange(a.images))
    with torch.no_grad():
        ws, z = workspace_input(model, x, q)
        ws.read.set_priors(ws.memory)
        B, N, d = z.shape
        colours = [colorsys.hsv_to_rgb(i / B, 0.9, 0.35 + 0.65 * j / max(1, N - 1)) for i in range(B) for j in range(N)]
        flat = z.reshape(-1, d)
        reads = {(beta, steps): hk.descend(ws.read, z, beta, method="update", steps=steps, tol=0)
                 for beta in BETAS for steps in (1, 50)}

        def pca(v):
            centred = v - v.mean(0)
            return centred @ torch.pca_lowrank(centred, q=2, center=False)[2]

        fig, axes = plt.subplots(1, len(BETAS) + 1, figsize=(4 * (len(BETAS) + 1), 3.8))
        axes[0].scatter(*pca(flat).T, c=colours, s=8)
        axes[0].set_title("z (input patches), own PCA", fontsize=10)
        # the reads share one PCA basis (from the β = max read) and one scale, so spreads compare
        top = reads[(BETAS[-1], 1)].xi.reshape(-1, d)
        mean, V = top.mean(0), torch.pca_lowrank(top - top.mean(0), q=2, center=False)[2]
        lim = 1.1 * ((top - mean) @ V).abs().max().item()
        lines = ["| β | read | mean distance to the patches' mean | distinct retrievals (of %d patches) | final energy |" % (B * N),
                 "|---|---|---|---|---|"]
        spread = lambda v: (v - v.mean(0)).norm(dim=-1).mean().item()  # noqa: E731
        lines.append(f"| — | input z | {spread(flat):.4f} | {distinct(flat)} | — |")
        for ax, beta in zip(axes[1:], BETAS):
            for steps, label in ((1, "one step"), (50, "converged")):
                res = reads[(beta, steps)]
                zh = res.xi.reshape(-1, d)
                lines.append(f"| {beta} | {label} | {spread(zh):.4f} | {distinct(zh)} | {res.energy.mean().item():.4f} |")
                if steps == 1:
                    ax.scatter(*((zh - mean) @ V).T, c=colours, s=8)
                    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
                    ax.set_title(f"ẑ (one step), β = {beta}: {distinct(zh)} distinct", fontsize=10)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"Hopfield read of the learned priors ({MODEL[scale]}, Triangle); hue = image, brightness = patch",
                 fontsize=10)
    a.out.mkdir(parents=True, exist_ok=True)
    png = a.out / f"beta_reconstruction_{scale}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(R.write_table(a.out / f"beta_reconstruction_{scale}.md", "Reconstruction at β = 0.05 / 1.0 / 4.0 (poster figure)",
                        lines, paths, scale, argv, "beta_reconstruction.py",
                        f"{B} test images × {N} patches, first workspace, its {ws.cfg.num_priors} learned priors as "
                        f"attractors; PCA basis from z. Figure: `{png.name}`."))
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
