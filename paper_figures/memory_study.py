"""Does the workspace memory earn its place? AiT variants against the memory's collapse, with knockouts.

    python paper_figures/memory_study.py                  # AiT-tiny on Triangle, 5 seeds, CPU
    python paper_figures/memory_study.py --seeds 3 --configs paper,cosine

Each configuration is AiT-tiny with some ``--set`` fields of ``ait.train`` (``CONFIGS``); every run
is diagnosed (``python -m ait.evaluate RUN --diagnostics``, kept as ``RUN/diagnostics.json``):
test accuracy, the change of accuracy when the memory is knocked out (priors replaced by random
unit vectors, ``memory_random``; the read skipped, ``no_hopfield``), and the state of the memory
(mean pairwise cosine of the priors, effective number of priors in the read's softmax, spread of
the read's output over the patches relative to its input). ViT-tiny (the same runs as the main
comparison) is the reference.

The memory *earns its place* in a configuration when both hold: knocking it out
(``memory_random``) costs more than 2 sd of the configuration's seed-to-seed spread of accuracy,
and the configuration's mean accuracy is at or above ViT's. Writes ``memory_study_<scale>.md``
and its JSON twin.
"""
from __future__ import annotations

import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402
from hopfieldkit.stats import summarise  # noqa: E402

RADIUS = 8.0   # sqrt(dim) of ait-tiny: the norm of a LayerNorm'd token
COSINE = (("read_radius", RADIUS), ("learn_beta", True), ("beta", 0.125))
CONFIGS = {  # key: (label, model fields)
    "paper": ("AiT (dot-product read, EMA write)", ()),
    "centred": ("centred write", (("write_centered", True),)),
    "cosine": ("cosine read, learned β", COSINE),
    "cosine-centred": ("cosine read + centred write", COSINE + (("write_centered", True),)),
    "read-alone": ("read alone (no z beside ẑ)", (("read_skip", False),)),
    "read-alone-centred": ("read alone + centred write", (("read_skip", False), ("write_centered", True))),
    "read-alone-cosine": ("read alone + cosine read + centred write",
                          (("read_skip", False),) + COSINE + (("write_centered", True),)),
}
DATA = "triangle"


def runs(keys: list[str]) -> dict[str, R.Run]:
    return {k: R.Run("ait-tiny", DATA, CONFIGS[k][1], tag="" if k == "paper" else f"mem-{k}") for k in keys}


def diagnostics(path: pathlib.Path) -> dict | None:
    """The run's diagnostics (computed once from its best.pt and kept beside it)."""
    f = path / "diagnostics.json"
    if not f.is_file():
        if not (path / "best.pt").is_file():
            return None
        from ait.evaluate import diagnose_run

        diagnose_run(path)
    return json.loads(f.read_text())


def summary(diags: list[dict]) -> dict:
    """Per-seed values (knockout deltas in points, statistics averaged over the layers)."""
    def layers(key):
        return [statistics.fmean(w[key] for w in d["workspaces"]) for d in diags]
    return {"memory_random": [100 * d["knockouts"]["memory_random"]["delta"] for d in diags],
            "no_hopfield": [100 * d["knockouts"]["no_hopfield"]["delta"] for d in diags],
            "prior_cosine": layers("prior_cosine_mean"), "effective_priors": layers("effective_priors"),
            "read_spread": layers("read_spread_ratio")}


def _ms(v: list[float], digits: int = 2) -> str:
    """mean ± sd of per-seed values (``hopfieldkit.stats.summarise``) at ``digits`` decimals."""
    if not v:
        return "—"
    s = summarise(v)
    return f"{s.mean:.{digits}f} ± {s.sd:.{digits}f}"


def earns(s: dict, vit: list[float]) -> str:
    """Both criteria of the module docstring, each said."""
    if len(s["acc"]) < 2 or len(vit) < 2:
        return "untested (n < 2)"
    acc = summarise(s["acc"])
    noise = 2 * acc.sd
    costs = -summarise(s["memory_random"]).mean > noise
    level = acc.mean >= summarise(vit).mean
    return ("yes" if costs and level else "no") + f" (knockout {'>' if costs else '≤'} 2 sd = {noise:.2f}; " \
        f"mean {'≥' if level else '<'} ViT)"


def main(argv: list[str] | None = None):
    def more(ap):
        ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated keys of {list(CONFIGS)}")

    argv, a, scale = R.parse(__doc__, argv, more)
    if a.full:
        raise SystemExit("memory_study.py: only the small scale exists so far (no --full)")
    keys = [k for k in a.configs.split(",") if k]
    bad = [k for k in keys if k not in CONFIGS]
    if bad:
        raise SystemExit(f"memory_study.py: unknown --configs {bad}; choose from {list(CONFIGS)}")
    table = runs(keys)
    vit = R.Run("vit-tiny", DATA)
    paths = R.ensure([s for r in [*table.values(), vit] for s in r.seeds(a.seeds)], scale, execute=not a.no_run,
                     root=a.runs_root, extra=R.extra_args(a), keep_best=True)
    R.require_some(paths, "memory study")
    vit_acc = R.values([R.final(paths[s]) for s in vit.seeds(a.seeds)])
    lines = ["| configuration | test acc | vs ViT | memory_random Δ | no_hopfield Δ | prior cosine | effective priors (of 8) | "
             "read spread ratio | memory earns its place |", "|---|---|---|---|---|---|---|---|---|"]
    lines.append(f"| ViT-tiny (reference) | {R.cell([R.final(paths[s]) for s in vit.seeds(a.seeds)])} | — | — | — | — | — | — | — |")
    cells = {"vit": {"acc": vit_acc}}
    for k, run in table.items():
        diags = [d for d in (diagnostics(paths[s]) for s in run.seeds(a.seeds) if paths[s] is not None) if d]
        s = summary(diags)
        s["acc"] = R.values([R.final(paths[x]) for x in run.seeds(a.seeds)])   # as every table: the last evaluation
        lines.append(f"| {CONFIGS[k][0]} | {R.cell([R.final(paths[x]) for x in run.seeds(a.seeds)])} | "
                     f"{R.versus(s['acc'], vit_acc)} | {_ms(s['memory_random'])} | {_ms(s['no_hopfield'])} | "
                     f"{_ms(s['prior_cosine'], 3)} | {_ms(s['effective_priors'])} | {_ms(s['read_spread'], 4)} | "
                     f"{earns(s, vit_acc)} |")
        cells[k] = {"label": CONFIGS[k][0], "fields": dict(CONFIGS[k][1]), **s}
    out = a.out / f"memory_study_{scale}.md"
    print(R.write_table(out, "Does the workspace memory earn its place? (AiT-tiny, Triangle)", lines, paths, scale, argv,
                        "memory_study.py",
                        "Test accuracy (%) at the last evaluation, mean ± sd over seeds (n). Knockout Δ (on each run's "
                        "best-validation checkpoint): accuracy with the knockout minus without, in points, mean ± sd over "
                        "the same seeds. Statistics averaged over the two "
                        "layers. Criterion: memory_random costs more than 2 sd of the configuration's accuracy and "
                        "its mean is at or above ViT-tiny's. vs ViT: the difference of means, with Welch's t-test (α = 0.05).", cells))
    return out


if __name__ == "__main__":
    main()
