"""The poster's main comparison: AiT against ViT, Coordination, Perceiver and Set Transformer on
CIFAR-10, CIFAR-100 and Triangle, with model sizes.

    python paper_figures/main_comparison.py                      # small: tiny models on Triangle, 5 seeds, CPU, ~20 min
    python paper_figures/main_comparison.py --data-dir ~/data    # + CIFAR-10/100 rows
    python paper_figures/main_comparison.py --full --data-dir ~/data   # the poster's sizes (GPU)

Missing runs are trained first (``--no-run`` only reads); writes ``main_comparison_<scale>.md``.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402

MODELS = {
    "small": ["ait-tiny", "vit-tiny", "coordination-tiny", "perceiver-tiny", "set-transformer-tiny"],
    "full": ["ait-base", "ait-medium", "ait-small", "coordination", "coordination-dh", "coordination-d",
             "coordination-h", "vit-base", "vit-small", "perceiver", "set-transformer"],
}
DATA = ["cifar10", "cifar100", "triangle"]


def models(a, scale: str) -> list[str]:
    """The rows: ``--models`` (comma-separated) or every model of the scale."""
    return a.models.split(",") if getattr(a, "models", None) else MODELS[scale]


def configs(names: list[str]) -> list[R.Run]:
    return [R.Run(m, d) for m in names for d in DATA]


def per_seed(results: dict, run: R.Run, seeds: int) -> list[dict | None]:
    return [results[r] for r in run.seeds(seeds)]


def table(results: dict, names: list[str], seeds: int) -> tuple[list[str], dict]:
    """The Markdown rows and the JSON cells: test accuracy mean ± sd (n) per model and data set; the
    average where all three were run (over seeds of the per-seed average)."""
    lines = ["| method | CIFAR-10 | CIFAR-100 | Triangle | average | parameters |", "|---|---|---|---|---|---|"]
    cells = {}
    for m in names:
        res = [per_seed(results, R.Run(m, d), seeds) for d in DATA]
        done = [r for rs in res for r in rs if r is not None]
        if not done:
            continue
        full = [s for s in range(seeds) if all(rs[s] is not None for rs in res)]
        avg = "—" if not full else R.cell([{"acc": sum(rs[s]["acc"] for rs in res) / len(DATA)} for s in full])
        lines.append(f"| {m} | " + " | ".join(R.cell(rs) for rs in res) + f" | {avg} | {done[0]['parameters'] / 1e6:.2f}M |")
        cells[m] = {d: R.json_cells(rs) for d, rs in zip(DATA, res)} | {"parameters": done[0]["parameters"]}
    return lines, cells


def noise(results: dict, names: list[str], seeds: int) -> list[str]:
    """Each model against the first (AiT) per data set: Δ and whether it exceeds seed noise."""
    base, rows = names[0], []
    for m in names[1:]:
        cols = [R.versus(R.values(per_seed(results, R.Run(m, d), seeds)), R.values(per_seed(results, R.Run(base, d), seeds)))
                for d in DATA]
        if any(c != "—" for c in cols):
            rows.append(f"| {m} − {base} | " + " | ".join(cols) + " |")
    return ["", f"Difference from {base} (percentage points; Welch's t-test on the per-seed accuracies, α = 0.05):", "",
            "| models | CIFAR-10 | CIFAR-100 | Triangle |", "|---|---|---|---|"] + rows if rows else []


def add_models(ap) -> None:
    ap.add_argument("--models", default=None, help="comma-separated model keys (default: every model of the scale)")


def collect(a) -> tuple[str, dict, dict]:
    scale = "full" if a.full else "small"
    paths = R.ensure([s for r in configs(models(a, scale)) for s in r.seeds(a.seeds)], scale, execute=not a.no_run, data_dir=a.data_dir, root=a.runs_root,
                     extra=R.extra_args(a))
    R.require_some(paths, "main comparison")
    return scale, paths, {run: R.final(p) for run, p in paths.items()}


def main(argv: list[str] | None = None):
    argv, a, _ = R.parse(__doc__, argv, add_models)
    scale, paths, results = collect(a)
    names = models(a, scale)
    lines, cells = table(results, names, a.seeds)
    notes = ("Test accuracy (%) at the last evaluation, mean ± sample sd over seeds (n). The average is "
             "over the seeds with all three data sets run. Small scale: tiny models, CPU defaults of `ait.train` (Triangle on a 32-px "
             "canvas, 1500 steps); not comparable with the poster's numbers, which are full-scale.")
    text = R.write_table(a.out / f"main_comparison_{scale}.md", "Main comparison (poster table 1)",
                         lines + noise(results, names, a.seeds), paths, scale, argv, "main_comparison.py", notes, cells)
    print(text)
    return a.out / f"main_comparison_{scale}.md"


if __name__ == "__main__":
    main()
