"""The poster's layer-efficiency table: the main comparison's runs grouped by the number of layers.

    python paper_figures/layer_efficiency.py            # small scale (tiny models, CPU)
    python paper_figures/layer_efficiency.py --full --data-dir ~/data

Reads (and, unless ``--no-run``, first makes) the runs of ``main_comparison.py``; writes
``layer_efficiency_<scale>.md``. A "layer" is one application of a block with its own attention:
AiT/ViT blocks, Coordination layer applications (shared or not), Set Transformer MABs (2 per ISAB,
PMA, SAB), Perceiver cross-attention and latent blocks over all iterations.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import main_comparison as MC  # noqa: E402
import poster_runs as R  # noqa: E402


def layers(conf: dict) -> int:
    """Attention layers of a run's model, from its saved configuration."""
    model = conf["train"]["model"]
    arch = conf.get("arch", conf["model"])   # older runs saved a baseline's architecture as "arch"
    if model.startswith(("ait-", "vit-")):
        return conf["model"]["depth"]
    if model.startswith("coordination"):
        return arch["depth"]
    if model.startswith("set-transformer"):
        return 2 * arch["depth"] + 2
    if model.startswith("perceiver"):
        return arch["iterations"] * (1 + arch["blocks"])
    raise ValueError(f"no layer count for {model}")


def main(argv: list[str] | None = None):
    argv, a, _ = R.parse(__doc__, argv, MC.add_models)
    scale, paths, results = MC.collect(a)
    rows = []
    for m in MC.models(a, scale):
        res = [MC.per_seed(results, R.Run(m, d), a.seeds) for d in MC.DATA]
        done = [r for rs in res for r in rs if r is not None]
        if done:
            rows.append((layers(done[0]["config"]), m, res, done))
    lines = ["| layers | method | CIFAR-10 | CIFAR-100 | Triangle | parameters |", "|---|---|---|---|---|---|"]
    cells = {}
    for n, m, res, done in sorted(rows, key=lambda r: r[0]):
        cells[m] = {"layers": n, "parameters": done[0]["parameters"]} | {d: R.json_cells(rs) for d, rs in zip(MC.DATA, res)}
        lines.append(f"| {n} | {m} | " + " | ".join(R.cell(r) for r in res) + f" | {done[0]['parameters'] / 1e6:.2f}M |")
    out = a.out / f"layer_efficiency_{scale}.md"
    print(R.write_table(out, "Layer efficiency (poster table 2)", lines, paths, scale, argv, "layer_efficiency.py",
                        "Test accuracy (%) at the last evaluation (mean ± sd over seeds, n), by the number of "
                        "attention layers.", cells))
    return out


if __name__ == "__main__":
    main()
