"""The AiT ablation table: the full model against each component removed (poster / paper table 3).

    python paper_figures/ablation.py                 # small: AiT-tiny on Triangle, 5 seeds, CPU, ~30 min
    python paper_figures/ablation.py --full --data-dir ~/data    # AiT-Small, CIFAR-10/100 + Triangle (GPU)

Configurations (``--set`` fields of ``ait.train``): w/o bottleneck (dense attention over the pool),
w/o self-attention, w/o memory (= ViT block), w/o Hopfield (a learned cross-attention reads the
priors), w/o balance loss, reset memory (every 100 steps). Writes ``ablation_<scale>.md``.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402

CONFIGS = {  # name: (run tag, model fields)
    "full AiT": ("", ()),
    "w/o bottleneck": ("no-bottleneck", (("bottleneck_on", False),)),
    "w/o self-attention": ("no-self-attention", (("self_attention", False),)),
    "w/o memory (= ViT)": ("no-memory", (("memory", False),)),
    "w/o Hopfield": ("no-hopfield", (("hopfield", False),)),
    "w/o balance loss": ("no-balance-loss", (("balance_loss", False),)),
    "reset memory": ("reset-memory", (("reset_memory_every", 100),)),
}
SCALES = {"small": ("ait-tiny", ["triangle"]), "full": ("ait-small", ["cifar10", "cifar100", "triangle"])}


def runs(scale: str) -> dict[str, list[R.Run]]:
    model, data = SCALES[scale]
    return {name: [R.Run(model, d, ov, tag=tag) for d in data] for name, (tag, ov) in CONFIGS.items()}


def main(argv: list[str] | None = None):
    argv, a, scale = R.parse(__doc__, argv)
    table = runs(scale)
    paths = R.ensure([s for rs in table.values() for r in rs for s in r.seeds(a.seeds)], scale, execute=not a.no_run,
                     data_dir=a.data_dir, root=a.runs_root, extra=R.extra_args(a))
    R.require_some(paths, "ablation")
    data = SCALES[scale][1]
    lines = ["| configuration | " + " | ".join(data) + " | average | Δ average |", "|---" * (len(data) + 3) + "|"]
    base, cells = None, {}
    for name, rs in table.items():
        res = [[R.final(paths[s]) for s in r.seeds(a.seeds)] for r in rs]
        full = [s for s in range(a.seeds) if all(x[s] is not None for x in res)]
        avg = [100 * sum(x[s]["acc"] for x in res) / len(res) for s in full]    # per seed, over the data sets
        base = avg if name == "full AiT" else base
        delta = "—" if name == "full AiT" or base is None else R.versus(avg, base)
        mean = R.cell([{"acc": v / 100} for v in avg])
        lines.append(f"| {name} | " + " | ".join(R.cell(x) for x in res) + f" | {mean} | {delta} |")
        cells[name] = {d: R.json_cells(x) for d, x in zip(data, res)} | {"average": {"values": avg, "seeds": full}}
    out = a.out / f"ablation_{scale}.md"
    print(R.write_table(out, f"Ablation of {SCALES[scale][0]} (paper table 3)", lines, paths, scale, argv, "ablation.py",
                        "Test accuracy (%) at the last evaluation, mean ± sd over seeds (n); Δ average against the full "
                        "model, with Welch's t-test on the per-seed averages (α = 0.05).", cells))
    return out


if __name__ == "__main__":
    main()
