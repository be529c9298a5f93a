"""Sort-of-CLEVR: relational and non-relational accuracy (poster table 3) and learning curves.

    python paper_figures/sort_of_clevr.py            # small: AiT-tiny vs Coordination-tiny vs Set Transformer-tiny,
                                                     # equal budgets (1500 steps of 64 questions), 5 seeds, CPU, ~25 min
    python paper_figures/sort_of_clevr.py --full     # AiT-Small, Coordination, Set Transformer, paper recipe (GPU)
    python paper_figures/sort_of_clevr.py --conv     # the CPU recipe that learns the task: the -tiny models plus
                                                     # ViT with the convolutional stem, 40,000 steps, 1 seed
                                                     # (--seeds N for more), 40-90 min a run on one core; best.pt kept

The ``--conv`` recipe (``docs/ait.md``): every model's image tokens from ``stem=conv`` (stride-2
convolutions, one token per 15-px cell) instead of the linear patch embedding, lr 1e-3 with
gradient clipping at 1, 40,000 steps of 64 questions (8.9 epochs), and AiT without its balance loss
(it grows with the pool, ``docs/ait.md``; at this pool of 64 · 26 patches an exploratory AiT run
with it, through a scratch loop with the same model, lr schedule and batches but no held-out
scenes, stood at 61.7 % non-relational test accuracy at step 12,000, the run without it at 87.1 %).

Writes ``sort_of_clevr_<scale>.md`` (the table) and ``sort_of_clevr_<scale>.png`` (test accuracy on
the relational and non-relational questions against the training step).
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402
from hopfieldkit.stats import summarise  # noqa: E402

MODELS = {"small": ["ait-tiny", "coordination-tiny", "set-transformer-tiny"],
          "full": ["ait-small", "coordination", "set-transformer"],
          "conv": ["ait-tiny", "vit-tiny", "coordination-tiny", "set-transformer-tiny"]}
BUDGET = {"small": (("max_steps", 1500), ("eval_every", 250), ("lr", 0.003)), "full": (),
          "conv": (("max_steps", 40000), ("eval_every", 2000), ("lr", 0.001), ("grad_clip", 1.0))}


CONV_NOTE = (" Every model keeps its own position code and head (AiT and ViT: sine-cosine codes and the flat"
             " head; Coordination: learned positions, mean pooling; Set Transformer: no positions, its pooling"
             " decoder), so the rows compare the models as built, not one protocol.")


def configs_for(recipe: str) -> list:
    """The runs of a recipe (``small``, ``full`` or ``conv``)."""
    if recipe != "conv":
        return [R.Run(m, "sort-of-clevr", train=BUDGET[recipe]) for m in MODELS[recipe]]
    return [R.Run(m, "sort-of-clevr", train=BUDGET["conv"], tag="conv",
                  overrides=(("stem", "conv"),) + ((("balance_loss", False),) if m.startswith("ait-") else ()))
            for m in MODELS["conv"]]


def question_only(run_paths: list) -> list[dict]:
    """The best answer from the question alone, one result per run folder given (one per seed: the
    scenes depend on the seed), on that run's own training and test data, by
    ``ait.data.clevr.question_only_accuracy``: ``acc_relational``, ``acc_nonrelational``,
    ``acc_ternary``, ``acc_average`` (of the first two) and ``acc`` (over all test questions, the
    families weighted by their counts), with the run's ``seed``."""
    from ait.data.clevr import FAMILIES, question_only_accuracy
    from ait.train import load_split, saved_config

    out = []
    for path in run_paths:
        if path is None:
            continue
        tc = saved_config(path)
        test = load_split(tc, "test")
        c = question_only_accuracy(load_split(tc, "train"), test)
        n = {f: int((test.family == i).sum()) for i, f in enumerate(FAMILIES)}
        out.append({"seed": tc.seed, "acc_relational": c["binary"], "acc_nonrelational": c["unary"],
                    "acc_ternary": c["ternary"], "acc_average": (c["binary"] + c["unary"]) / 2,
                    "acc": sum(c[f] * n[f] for f in FAMILIES if n[f]) / sum(n.values())})
    return out


def family_knockouts(run_paths: list) -> dict:
    """Per knockout of ``ait.KNOCKOUTS`` (read = the attractors' mean, priors random, read skipped,
    top-k off), the change of test accuracy (points) on the relational and the non-relational
    questions of each AiT seed's val-best checkpoint
    (``ait.evaluate --diagnostics``, kept as ``diagnostics.json`` beside it)."""
    from ait import KNOCKOUTS
    from memory_study import diagnostics

    out = {k: {"relational": [], "nonrelational": []} for k in KNOCKOUTS}
    for p in run_paths:
        d = diagnostics(p) if p is not None else None
        for k, fam in out.items():
            if d is not None and "by_family" in d["knockouts"][k]:
                for f, vals in fam.items():
                    vals.append(100 * d["knockouts"][k]["by_family"][f]["delta"])
    return out


def chance_row(lines: list[str], paths: dict, configs: list, seeds: int, versus: bool = False) -> dict:
    """Appends the row of the best answer from the question alone and returns its per-seed values
    (every configuration of a seed sees the same data, so the first configuration's runs serve)."""
    res = question_only([paths.get(run) for run in configs[0].seeds(seeds)])
    if not res:
        return {}
    lines.append(f"| chance: the best answer from the question alone | {R.cell(res, 'acc_relational')} | "
                 f"{R.cell(res, 'acc_nonrelational')} | {R.cell(res, 'acc_average')} | {R.cell(res, 'acc_ternary')} |{' — |' if versus else ''} — | — |")
    return {"seeds": [r["seed"] for r in res],
            "per_seed": {r["seed"]: {"binary": r["acc_relational"], "unary": r["acc_nonrelational"],
                                     "ternary": r["acc_ternary"]} for r in res}}


def main(argv: list[str] | None = None):
    argv, a, scale = R.parse(__doc__, argv, lambda ap: ap.add_argument(
        "--conv", action="store_true", help="the CPU recipe with the convolutional stem (1 seed by default)"))
    if a.conv and a.full:
        raise SystemExit("--conv and --full are two recipes: choose one")
    recipe = "conv" if a.conv else scale
    if a.conv and not any(x.startswith("--seeds") for x in argv):   # one seed unless asked
        a.seeds = 1
    configs = configs_for(recipe)
    paths = R.ensure([s for r in configs for s in r.seeds(a.seeds)], scale, execute=not a.no_run, root=a.runs_root,
                     extra=R.extra_args(a), keep_best=a.conv)
    R.require_some(paths, "Sort-of-CLEVR")
    keys = ("acc_relational", "acc_nonrelational", "acc_ternary")
    base = next((r for r in configs if r.model.startswith("vit-")), None)   # the conv recipe's reference row
    extra = f" relational vs {base.model} |" if base else ""
    lines = [f"| method | relational | non-relational | average | ternary |{extra} steps | parameters |",
             "|---|---|---|---|---|---|---|" + ("---|" if base else "")]
    cells = {"chance": chance_row(lines, paths, configs, a.seeds, bool(base))}
    base_rel = R.values([R.final(paths[s]) for s in base.seeds(a.seeds)], "acc_relational") if base else []
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in configs:
        res = [R.final(paths[s]) for s in r.seeds(a.seeds)]
        done = [x for x in res if x is not None]
        if not done:
            lines.append(f"| {r.model} | not run | not run | not run | not run |{' — |' if base else ''} — | — |")
            continue
        avg = R.cell([{"acc": (x["acc_relational"] + x["acc_nonrelational"]) / 2} for x in done])
        vs = (f" {'—' if r is base else R.versus(R.values(res, 'acc_relational'), base_rel)} |" if base else "")
        lines.append(f"| {r.model} | {R.cell(res, 'acc_relational')} | {R.cell(res, 'acc_nonrelational')} | {avg} | "
                     f"{R.cell(res, 'acc_ternary')} |{vs} {done[0]['step']} | {done[0]['parameters'] / 1e6:.3f}M |")
        cells[r.model] = R.json_cells(res, keys) | {"parameters": done[0]["parameters"]}
        if a.conv and r.model.startswith("ait-"):
            cells[r.model]["knockouts"] = ko = family_knockouts([paths[s] for s in r.seeds(a.seeds)])
            lines.append(f"| ↳ {r.model} knockouts at the val-best checkpoint, Δ points relational / non-relational | "
                         + " ; ".join(f"{k} {summarise(v['relational'])} / {summarise(v['nonrelational'])}"
                                      for k, v in ko.items() if v["relational"]) + " | | | | | |" + (" |" if base else ""))
        steps = [row["step"] for row in done[0]["rows"]]
        for ax, key in zip(axes, keys[:2]):   # the mean over seeds at each evaluation, the spread shaded
            import numpy as np

            curves = np.array([[100 * row[key] for row in x["rows"]] for x in done if len(x["rows"]) == len(steps)])
            mean = curves.mean(0)
            ax.plot(steps, mean, marker="o", ms=3, label=f"{r.model} (n={len(curves)})")
            if len(curves) > 1:
                sd = curves.std(0, ddof=1)
                ax.fill_between(steps, mean - sd, mean + sd, alpha=0.2)
    for ax, title in zip(axes, ("relational questions", "non-relational questions")):
        ax.set_xlabel("training step (64 questions each)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    a.out.mkdir(parents=True, exist_ok=True)
    png = a.out / f"sort_of_clevr_{recipe}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(R.write_table(a.out / f"sort_of_clevr_{recipe}.md", "Sort-of-CLEVR (poster table 3)" + (
        ": the CPU recipe with the convolutional stem" if a.conv else ""), lines, paths, scale, argv,
                        "sort_of_clevr.py", f"Test accuracy (%) at the last evaluation, mean ± sd over seeds (n); average "
                        f"of relational and non-relational.{CONV_NOTE if a.conv else ''} Chance: for each distinct question, its most frequent training answer, scored on the test questions of the same seed. Learning curves (mean ± sd over seeds): `{png.name}`.", cells))
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
