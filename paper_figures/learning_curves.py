"""Learning curves and a final-accuracy table from ``ait.train`` run directories.

    python paper_figures/learning_curves.py runs/ait-small runs/vit-small --out paper_figures/results/triangle

Reads each run's ``metrics.jsonl`` and ``config.json``; draws test accuracy (and, on Sort-of-CLEVR, the
relational and non-relational accuracy) against the training step; writes ``<out>.png`` and
``<out>.md`` (a table: run, model, preset, data, steps, final and best accuracy, parameters). A run
directory without metrics is an error: no number is ever printed for a run that does not exist.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys


def read_run(run: pathlib.Path) -> dict:
    """A run's test rows (``rows``; what the tables report), its validation rows (``val_rows``) and
    its ``config.json``."""
    metrics, config = run / "metrics.jsonl", run / "config.json"
    if not metrics.is_file() or not config.is_file():
        raise FileNotFoundError(f"{run} is not a finished ait.train run (needs metrics.jsonl and config.json)")
    every = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
    rows = [r for r in every if r.get("split", "test") == "test"]
    if not rows:
        raise ValueError(f"{metrics} holds no test evaluation")
    return {"run": str(run), "rows": rows, "val_rows": [r for r in every if r.get("split") == "val"],
            "config": json.loads(config.read_text())}


def main(argv: list[str] | None = None) -> pathlib.Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=pathlib.Path)
    ap.add_argument("--out", type=pathlib.Path, required=True, help="output path without extension")
    a = ap.parse_args(argv)
    import matplotlib.pyplot as plt

    runs = [read_run(r) for r in a.runs]
    keys = [k for k in ("acc", "acc_relational", "acc_nonrelational") if any(k in r["rows"][0] for r in runs)]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 3.6), squeeze=False)
    lines = ["| run | model | preset | data | steps | final acc | best acc | parameters |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        t, rows = r["config"]["train"], r["rows"]
        label = f"{t['model']} ({t['preset']})"
        for ax, k in zip(axes[0], keys):
            pts = [(row["step"], row[k]) for row in rows if k in row]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        lines.append(f"| {r['run']} | {t['model']} | {t['preset']} | {t['data']} | {rows[-1]['step']} | "
                     f"{rows[-1]['acc']:.4f} | {max(x['acc'] for x in rows):.4f} | {r['config'].get('parameters', '-'):,} |")
    for ax, k in zip(axes[0], keys):
        ax.set_xlabel("step")
        ax.set_ylabel(f"test {k}")
        ax.legend(fontsize=8)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    png, md = a.out.with_suffix(".png"), a.out.with_suffix(".md")
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    cmd = "python paper_figures/learning_curves.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md.write_text(f"# Learning curves\n\nCommand: `{cmd}`\n\n" + "\n".join(lines) + "\n")
    print(md.read_text())
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
