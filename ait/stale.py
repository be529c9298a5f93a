"""Does a finished run's number still come from today's code? A check by fingerprint.

    python -m ait.stale RUN [RUN ...]                    # run folders, or folders of runs
    python -m ait.stale paper_figures/results/runs/small

Every new ``ait.train`` run writes ``fingerprint.json``: its training losses at steps 1…3. The check
repeats those three steps from the run's saved settings with today's code (in a temporary folder)
and compares them: equal within ``rtol`` (default 1e-4, far above the thread-count rounding of a
CPU run and far below what a change to the model, the data or the optimiser does) means *current*;
otherwise the code now gives the run other numbers and the run is *stale*: train it again. A run
made before fingerprints existed is *unknown*; one whose data cannot be read here is *unchecked*.
Exit status: 0 when every run is current, 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import pathlib
import sys
import tempfile

from hopfieldkit.runs import RunError
from hopfieldkit.settings import SettingError


@dataclasses.dataclass(frozen=True)
class Verdict:
    run: pathlib.Path
    status: str                 # current | stale | unknown | unchecked
    recorded: list | None = None
    now: list | None = None
    detail: str = ""


def check(run: str | pathlib.Path, rtol: float = 1e-4) -> Verdict:
    """Repeat the fingerprint steps of ``run`` with the current code and compare (module docstring)."""
    from . import train as T

    run = pathlib.Path(run)
    fp = run / "fingerprint.json"
    if not fp.is_file():
        return Verdict(run, "unknown", detail="no fingerprint.json (made before fingerprints)")
    recorded = json.loads(fp.read_text())["train_loss"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg = dataclasses.replace(T.saved_config(run), out=str(pathlib.Path(tmp) / "run"), device="cpu")
            with contextlib.redirect_stderr(io.StringIO()):
                T.train(T.Plan(cfg, "new", len(recorded)), progress=False)
            now = json.loads((pathlib.Path(tmp) / "run" / "fingerprint.json").read_text())["train_loss"]
        except (RunError, SettingError) as exc:
            return Verdict(run, "unchecked", recorded, detail=str(exc).splitlines()[0])
    same = len(now) == len(recorded) and all(math.isclose(a, b, rel_tol=rtol) for a, b in zip(now, recorded))
    return Verdict(run, "current" if same else "stale", recorded, now)


def runs_in(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    """Run folders (those with a config.json) among ``paths`` and one level below them."""
    out = []
    for p in paths:
        if (p / "config.json").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(q for q in p.iterdir() if (q / "config.json").is_file())
        else:
            raise RunError(f"{p}: not a run folder or a folder of runs")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ait.stale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=pathlib.Path)
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    try:
        runs = runs_in(a.paths)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdicts = []
    for i, run in enumerate(runs, 1):
        v = check(run, a.rtol)
        verdicts.append(v)
        extra = v.detail or ("" if v.now is None else f"recorded {v.recorded[0]:.6f}…, now {v.now[0]:.6f}…")
        print(f"[{i}/{len(runs)}] {v.status:9s} {run}  {extra}", flush=True)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("current", "stale", "unknown", "unchecked")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0 if counts["current"] == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
