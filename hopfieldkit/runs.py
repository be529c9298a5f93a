"""A training run's folder: what ``ait.train`` and the library's example trainers share.

- :func:`prepare` decides, before anything is written, what happens to ``--out``: a new run, a
  resumed one, or a refusal (a folder that already holds a run is never restarted silently;
  ``overwrite=True`` deletes the run's own files first, and nothing else).
- :func:`save_checkpoint` / :func:`load_checkpoint`: atomic writes; loading uses
  ``torch.load(weights_only=True)``, so a checkpoint can hold tensors and plain values only and
  loading one never runs code from it; a truncated or corrupt file is a :class:`RunError`.
- :class:`Metrics`: ``metrics.jsonl``, appended one row per evaluation; on resume the rows past the
  checkpoint's step (written before a crash that lost the checkpoint) are dropped.
- :class:`Log`: a console line that also goes to ``log.txt`` in the run folder.
- :func:`provenance`: the command line, git revision, torch and Python versions for ``config.json``.

Every user error is a :class:`RunError` (one clear line, no traceback, from the entry points).
"""
from __future__ import annotations

import json
import os
import pathlib
import pickle
import platform
import shutil
import sys
import time
import zipfile
from typing import Any

import torch

from .checkpoint import git_revision, save_atomic

__all__ = ["RunError", "RUN_FILES", "prepare", "check_writable", "save_checkpoint", "load_checkpoint", "Metrics",
           "Log", "provenance", "write_json"]

RUN_FILES = ("config.json", "metrics.jsonl", "last.pt", "best.pt", "log.txt", "curve.png", "tb", "last.pt.tmp",
             "best.pt.tmp")


class RunError(Exception):
    """A user error in a run (bad folder, unreadable checkpoint or config): the entry points print
    its message as one line and exit with status 2."""


def check_writable(out: pathlib.Path) -> None:
    """Refuse an ``out`` that is a file, or a folder (or its nearest existing parent) that cannot be written."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RunError(f"--out {out}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunError(f"--out {out}: {probe} is not writable")


def holds_run(out: pathlib.Path) -> bool:
    return out.is_dir() and any((out / f).exists() for f in ("config.json", "metrics.jsonl", "last.pt"))


def prepare(out: str | os.PathLike, *, resume: bool, overwrite: bool) -> str:
    """What to do with the run folder ``out``: ``"new"`` or ``"resume"`` (nothing is written here
    except, with ``overwrite``, deleting the run files of :data:`RUN_FILES`)."""
    out = pathlib.Path(out)
    check_writable(out)
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other: continue the run, or delete it and start again")
    if resume:
        if not (out / "config.json").is_file():
            raise RunError(f"--resume: {out} holds no run (no config.json); start one without --resume")
        return "resume"
    if holds_run(out):
        if not overwrite:
            raise RunError(f"{out} already holds a run; continue it with --resume, or pass --overwrite to delete "
                           f"it and start again")
        for name in RUN_FILES:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    return "new"


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Atomic ``torch.save`` of tensors and plain values only (checked: a value that
    ``weights_only=True`` could not load back is refused here, not at load time)."""
    _check_plain(state, "checkpoint")
    save_atomic(state, path)


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, torch.Tensor) or obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} holds a {type(obj).__name__}; checkpoints hold tensors and plain values only")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """A checkpoint loaded with ``weights_only=True`` (no code runs); a clear :class:`RunError` for a
    missing, truncated, corrupt or code-carrying file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        blocked = [ln.strip() for ln in text.splitlines() if "GLOBAL" in ln or "Unsupported global" in ln]
        if blocked:  # the pickle names a function or class: executing it is what weights_only prevents
            raise RunError(f"{path} holds objects other than tensors and plain values; refusing to load it "
                           f"(unpickling it could run code): {blocked[0]}") from None
        raise RunError(f"{path} is not a readable checkpoint (corrupt, or not a torch file)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().split(".")[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{path} is not a readable checkpoint (truncated or corrupt: {first})") from None
    if not isinstance(state, dict):
        raise RunError(f"{path} is not a checkpoint of this program (a {type(state).__name__}, not a dict)")
    return state


class Metrics:
    """``metrics.jsonl``: one JSON row per evaluation, each with its ``step``."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a row cut by a crash mid-write
                continue
        return out

    def append(self, row: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def truncate(self, step: int) -> int:
        """Keep the rows with ``step ≤ step`` (atomically); returns how many were dropped."""
        rows = self.rows()
        keep = [r for r in rows if r.get("step", 0) <= step]
        dropped = len(rows) - len(keep)
        if self.path.is_file():
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
            os.replace(tmp, self.path)
        return dropped


class Log:
    """Console lines (stderr, whether or not it is a terminal) copied to ``log.txt`` in the run folder."""

    def __init__(self, path: str | os.PathLike | None = None, prefix: str = "", enabled: bool = True):
        self.path = None if path is None else pathlib.Path(path)
        self.prefix, self.enabled = prefix, enabled

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{self.prefix}{message}"
        print(line, file=sys.stderr, flush=True)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")


def provenance() -> dict:
    """What made a run: command line, git revision, torch and Python versions, host, start time."""
    return {"command": " ".join([pathlib.Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
            "git_revision": git_revision(pathlib.Path(__file__).parent), "torch": torch.__version__,
            "python": platform.python_version(), "host": platform.node(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON written atomically (temporary file + rename)."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)
