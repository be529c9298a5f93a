"""The poster's main comparison: AiT against ViT, Coordination, Perceiver and Set Transformer on
CIFAR-10, CIFAR-100 and Triangle, with model sizes.

    python paper_figures/main_comparison.py                      # small: tiny models on Triangle, CPU, ~4 min
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


def runs(names: list[str]) -> list[R.Run]:
    return [R.Run(m, d) for m in names for d in DATA]


def table(results: dict, names: list[str]) -> list[str]:
    lines = ["| method | CIFAR-10 | CIFAR-100 | Triangle | average | parameters |", "|---|---|---|---|---|---|"]
    for m in names:
        res = [results[R.Run(m, d)] for d in DATA]
        done = [r for r in res if r is not None]
        if not done:
            continue
        avg = f"{100 * sum(r['acc'] for r in done) / len(done):.2f}" if len(done) == len(DATA) else "—"
        params = f"{done[0]['parameters'] / 1e6:.2f}M"
        lines.append(f"| {m} | " + " | ".join(R.cell(r) for r in res) + f" | {avg} | {params} |")
    return lines


def add_models(ap) -> None:
    ap.add_argument("--models", default=None, help="comma-separated model keys (default: every model of the scale)")


def collect(a) -> tuple[str, dict, dict]:
    scale = "full" if a.full else "small"
    paths = R.ensure(runs(models(a, scale)), scale, execute=not a.no_run, data_dir=a.data_dir, root=a.runs_root,
                     extra=R.extra_args(a))
    R.require_some(paths, "main comparison")
    return scale, paths, {run: R.final(p) for run, p in paths.items()}


def main(argv: list[str] | None = None):
    argv, a, _ = R.parse(__doc__, argv, add_models)
    scale, paths, results = collect(a)
    notes = ("Test accuracy (%) at the last evaluation. The average is printed only where all three data "
             "sets were run. Small scale: tiny models, CPU defaults of `ait.train` (Triangle on a 32-px "
             "canvas, 1500 steps); not comparable with the poster's numbers, which are full-scale.")
    text = R.write_table(a.out / f"main_comparison_{scale}.md", "Main comparison (poster table 1)",
                         table(results, models(a, scale)), paths, scale, argv, "main_comparison.py", notes)
    print(text)
    return a.out / f"main_comparison_{scale}.md"


if __name__ == "__main__":
    main()
