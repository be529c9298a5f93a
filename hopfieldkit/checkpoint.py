"""Atomic checkpoints: nothing a user trained is lost to a crash in the middle of a write."""
from __future__ import annotations

import os
import pathlib

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
