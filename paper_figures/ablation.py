"""The AiT ablation table: the full model against each component removed (poster / paper table 3).

    python paper_figures/ablation.py                 # small: AiT-tiny on Triangle, CPU, ~4 min
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
    paths = R.ensure([r for rs in table.values() for r in rs], scale, execute=not a.no_run, data_dir=a.data_dir,
                     root=a.runs_root, extra=R.extra_args(a))
    R.require_some(paths, "ablation")
    data = SCALES[scale][1]
    lines = ["| configuration | " + " | ".join(data) + " | average | Δ average |", "|---" * (len(data) + 3) + "|"]
    base = None
    for name, rs in table.items():
        res = [R.final(paths[r]) for r in rs]
        avg = None if any(r is None for r in res) else 100 * sum(r["acc"] for r in res) / len(res)
        base = avg if name == "full AiT" else base
        delta = "—" if avg is None or base is None or name == "full AiT" else f"{avg - base:+.2f}"
        lines.append(f"| {name} | " + " | ".join(R.cell(r) for r in res)
                     + f" | {'not run' if avg is None else f'{avg:.2f}'} | {delta} |")
    out = a.out / f"ablation_{scale}.md"
    print(R.write_table(out, f"Ablation of {SCALES[scale][0]} (paper table 3)", lines, paths, scale, argv, "ablation.py",
                        "Test accuracy (%) at the last evaluation; Δ against the full model."))
    return out


if __name__ == "__main__":
    main()
