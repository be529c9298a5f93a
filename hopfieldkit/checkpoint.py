"""What a saved result needs: atomic writes (nothing is lost to a crash mid-write) and the git
revision of the code that made it."""
from __future__ import annotations

import os
import pathlib
import subprocess

import torch


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename over ``path``
    (a rename is atomic), so ``path`` always holds either the old or the new checkpoint in full."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def git_revision(path: str | os.PathLike = ".") -> str:
    """Short git revision of the checkout holding ``path``, or ``"unknown"`` outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
