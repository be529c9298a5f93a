"""The runs behind the poster's tables, made with ``ait.train`` and read back from their metrics.

Each table script names its runs (:class:`Run`); :func:`ensure` trains the ones that are missing
(when allowed) and :func:`final` reads a finished run's last evaluation. A run that does not exist
is never given a number: tables print "not run" for it, and a table with no finished run at all is
an error.

Two scales:

- ``small`` (default, CPU, minutes): the ``-tiny`` models with the CPU defaults of ``ait.train``
  (Triangle on a 32-px canvas, 1500 steps; Sort-of-CLEVR 1500 steps), under ``results/runs/small``;
- ``full`` (``--full``, GPU): the poster's sizes with the paper's recipe (``ait.train`` defaults for
  non-tiny models), CIFAR from ``--data-dir``, under ``results/runs/full``.

Each run directory holds ``metrics.jsonl``, ``config.json`` (the resolved configuration) and
``command.txt`` (the command that reproduces it and the git revision it was made at).

Seeds: every table runs each configuration with ``--seeds N`` seeds (default 5 at the small scale,
1 at the full scale), seeds 0 … N−1; seed 0's folder has no suffix, seed s > 0 ends in ``__seed<s>``.
A cell is mean ± sd (n) over the seeds that exist (:func:`cell`), and whether two rows differ beyond
seed noise is Welch's two-sided t-test at α = 0.05 on the per-seed values (:func:`versus`,
``hopfieldkit.stats.welch``). Every table is written twice: Markdown for reading and a JSON twin with
each cell's per-seed values (:func:`write_table`).
"""
from __future__ import annotations

import dataclasses
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

from hopfieldkit.checkpoint import git_revision  # noqa: E402
from hopfieldkit.runs import write_json  # noqa: E402
from hopfieldkit.stats import summarise, welch  # noqa: E402

sys.path.insert(0, str(ROOT / "paper_figures"))
from learning_curves import read_run  # noqa: E402

RESULTS = ROOT / "paper_figures" / "results"


@dataclasses.dataclass(frozen=True)
class Run:
    """One ``ait.train`` run: a model key, a data key, and optional model / training fields."""

    model: str
    data: str
    overrides: tuple = ()            # (("self_attention", False), ...)
    train: tuple = ()                # (("max_steps", 1500), ...)
    tag: str = ""                    # distinguishes runs of the same model and data (ablations)
    seed: int = 0

    @property
    def name(self) -> str:
        return (f"{self.model}__{self.data}" + (f"__{self.tag}" if self.tag else "")
                + (f"__seed{self.seed}" if self.seed else ""))

    def seeds(self, n: int) -> list["Run"]:
        """This configuration at seeds 0 … n−1."""
        return [dataclasses.replace(self, seed=s) for s in range(n)]

    def args(self, out: pathlib.Path, data_dir: str | None = None) -> list[str]:
        """The ``python -m ait.train`` arguments of this run."""
        a = ["--model", self.model, "--data", self.data, "--out", str(out)] + (["--seed", str(self.seed)] if self.seed else [])
        for k, v in self.train:
            a += [f"--{k.replace('_', '-')}", str(v)]
        for k, v in self.overrides:
            a += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
        if data_dir and self.data.startswith("cifar"):
            a += ["--data-dir", data_dir]
        return a


def run_dir(run: Run, scale: str, root: pathlib.Path | None = None) -> pathlib.Path:
    return (root or RESULTS / "runs") / scale / run.name


def finished(path: pathlib.Path) -> bool:
    m = path / "metrics.jsonl"
    return m.is_file() and '"split": "test"' in m.read_text() and (path / "config.json").is_file()


def ensure(runs: list[Run], scale: str, *, execute: bool = True, data_dir: str | None = None,
           root: pathlib.Path | None = None, extra: list[str] = (), keep_best: bool = False) -> dict[Run, pathlib.Path | None]:
    """The directory of each finished run (None where it does not exist and cannot be made).
    Missing runs are trained when ``execute``; CIFAR runs need ``data_dir``. ``best.pt`` is kept for
    the plain AiT runs (the figures read them), and for every run with ``keep_best``."""
    from ait import train as T

    out = {}
    for run in runs:
        path = run_dir(run, scale, root)
        if not finished(path) and execute and (data_dir or not run.data.startswith("cifar")):
            args = run.args(path, data_dir) + list(extra)
            print(f"[poster_runs] training {run.name} ({scale}): python -m ait.train {' '.join(args)}", file=sys.stderr)
            # an unfinished earlier attempt is started again from nothing
            plan = T.parse_args(args + (["--overwrite"] if path.exists() else []))
            T.train(plan, progress=sys.stderr.isatty())
            shown = [str(x).replace(str(ROOT) + "/", "") for x in args]  # repository-relative paths
            (path / "command.txt").write_text(f"python -m ait.train {' '.join(shown)}\ngit revision: {git_revision()}\n")
            (path / "last.pt").unlink(missing_ok=True)  # the optimizer state is not needed for the figures
            if not keep_best and not (run.model.startswith("ait-") and not run.tag):  # the figures read plain AiT runs
                (path / "best.pt").unlink(missing_ok=True)
        out[run] = path if finished(path) else None
    return out


def final(path: pathlib.Path | None) -> dict | None:
    """The last evaluation of a finished run, with its parameter count; None for a missing run."""
    if path is None:
        return None
    run = read_run(path)                  # the same reader as learning_curves.py
    return {**run["rows"][-1], "parameters": run["config"]["parameters"], "rows": run["rows"], "config": run["config"]}


def values(results: list[dict | None], key: str = "acc") -> list[float]:
    """Per-seed values (in %) of ``key`` from the runs that exist."""
    return [100 * r[key] for r in results if r is not None and key in r]


def cell(results: list[dict | None] | dict | None, key: str = "acc") -> str:
    """mean ± sd (n) over the seeds that were run, in %; "not run" when none was."""
    v = values(results if isinstance(results, list) else [results], key)
    return str(summarise(v)) if v else "not run"


def versus(a: list[float], b: list[float]) -> str:
    """Δ = mean(a) − mean(b) and whether it exceeds seed noise (Welch's t, α = 0.05)."""
    if not a or not b:
        return "—"
    w = welch(a, b)
    delta = summarise(a).mean - summarise(b).mean
    if w.differs is None:
        return f"{delta:+.2f} (untested: n < 2)"
    return f"{delta:+.2f} ({'beyond' if w.differs else 'within'} seed noise, p = {w.p:.2g})"


def json_cells(results: list[dict | None], keys=("acc",)) -> dict:
    """A table cell for the JSON twin: per key, the per-seed values, their summary and the seeds run
    (a result's seed is its run's, or its own ``seed`` entry for a row computed without a run)."""
    out = {"seeds": [r["config"]["train"]["seed"] if "config" in r else r["seed"] for r in results if r is not None]}
    for key in keys:
        v = values(results, key)
        s = summarise(v) if v else None
        out[key] = {"values": v, "mean": s and s.mean, "sd": s and (None if s.n < 2 else s.sd), "n": len(v)}
    return out


def require_some(results: dict, what: str) -> None:
    if all(r is None for r in results.values()):
        raise FileNotFoundError(f"{what}: none of its runs exist; run the script without --no-run to train them")


def write_table(path: pathlib.Path, title: str, lines: list[str], runs: dict, scale: str, argv: list[str],
                script: str, notes: str = "", data: dict | None = None) -> str:
    """A Markdown table with its provenance (the command, the git revision, the runs it read) and its
    JSON twin beside it (``data``: the cells with their per-seed values)."""
    src = [f"- `{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in runs.values() if p is not None]
    text = (f"# {title}\n\nScale: **{scale}**. Command: `python paper_figures/{script} {' '.join(argv)}`. "
            f"Git revision: {git_revision()}.\n\n" + "\n".join(lines) + "\n\n" + (notes + "\n\n" if notes else "")
            + "Runs read (each with `command.txt`, `config.json`, `metrics.jsonl`):\n" + "\n".join(src) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    write_json(path.with_suffix(".json"), {"title": title, "scale": scale, "command": f"python paper_figures/{script} {' '.join(argv)}",
                                           "git_revision": git_revision(), "cells": data or {},
                                           "runs": sorted(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
                                                          for p in runs.values() if p is not None)})
    return text


def common_args(ap) -> None:
    ap.add_argument("--full", action="store_true", help="the poster's sizes and recipe (GPU, hours) instead of tiny CPU runs")
    ap.add_argument("--no-run", action="store_true", help="only read existing runs; train nothing")
    ap.add_argument("--data-dir", default=None, help="folder with the CIFAR files (CIFAR rows are skipped without it)")
    ap.add_argument("--runs-root", type=pathlib.Path, default=None, help="where runs live (default results/runs)")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "paper_figures",
                    help="folder for the table and figure (default runs/paper_figures, untracked; --out "
                         "paper_figures/results updates the committed files)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap every run's steps (smoke tests)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 5 small, 1 full)")


def parse(doc: str, argv: list[str] | None, more=None):
    """(argv, parsed arguments, scale) of a table script: the common options, plus ``more(parser)``."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap)
    if more is not None:
        more(ap)
    a = ap.parse_args(argv)
    if a.seeds is None:
        a.seeds = 1 if a.full else 5
    if a.seeds < 1:
        ap.error(f"--seeds must be at least 1, got {a.seeds}")
    return argv, a, "full" if a.full else "small"


def extra_args(a) -> list[str]:
    return [] if a.max_steps is None else ["--max-steps", str(a.max_steps), "--eval-every", str(max(1, a.max_steps // 2))]
