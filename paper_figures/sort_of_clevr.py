"""Sort-of-CLEVR: relational and non-relational accuracy (poster table 3) and learning curves.

    python paper_figures/sort_of_clevr.py            # small: AiT-tiny vs Coordination-tiny vs Set Transformer-tiny,
                                                     # equal budgets (1500 steps of 64 questions), CPU, ~3 min
    python paper_figures/sort_of_clevr.py --full     # AiT-Small, Coordination, Set Transformer, paper recipe (GPU)

Writes ``sort_of_clevr_<scale>.md`` (the table) and ``sort_of_clevr_<scale>.png`` (test accuracy on
the relational and non-relational questions against the training step).
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402

MODELS = {"small": ["ait-tiny", "coordination-tiny", "set-transformer-tiny"],
          "full": ["ait-small", "coordination", "set-transformer"]}
BUDGET = {"small": (("max_steps", 1500), ("eval_every", 250), ("lr", 0.003)), "full": ()}


def main(argv: list[str] | None = None):
    argv, a, scale = R.parse(__doc__, argv)
    runs = [R.Run(m, "sort-of-clevr", train=BUDGET[scale]) for m in MODELS[scale]]
    paths = R.ensure(runs, scale, execute=not a.no_run, root=a.runs_root, extra=R.extra_args(a))
    R.require_some(paths, "Sort-of-CLEVR")
    results = {r: R.final(paths[r]) for r in runs}
    lines = ["| method | relational | non-relational | average | ternary | steps | parameters |", "|---|---|---|---|---|---|---|"]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in runs:
        res = results[r]
        if res is None:
            lines.append(f"| {r.model} | not run | not run | not run | not run | — | — |")
            continue
        avg = 50 * (res["acc_relational"] + res["acc_nonrelational"])
        lines.append(f"| {r.model} | {R.cell(res, 'acc_relational')} | {R.cell(res, 'acc_nonrelational')} | {avg:.2f} | "
                     f"{R.cell(res, 'acc_ternary')} | {res['step']} | {res['parameters'] / 1e6:.3f}M |")
        for ax, key in zip(axes, ("acc_relational", "acc_nonrelational")):
            ax.plot([row["step"] for row in res["rows"]], [100 * row[key] for row in res["rows"]], marker="o", ms=3,
                    label=r.model)
    for ax, title in zip(axes, ("relational questions", "non-relational questions")):
        ax.set_xlabel("training step (64 questions each)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    a.out.mkdir(parents=True, exist_ok=True)
    png = a.out / f"sort_of_clevr_{scale}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(R.write_table(a.out / f"sort_of_clevr_{scale}.md", "Sort-of-CLEVR (poster table 3)", lines, paths, scale, argv,
                        "sort_of_clevr.py", f"Test accuracy (%) at the last evaluation; average of relational and "
                        f"non-relational. Learning curves: `{png.name}`."))
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
