"""Values derived from tensors and kept between calls (packed copies of a pattern matrix, the
folded ET weights, M²), and the rules that keep them correct and bounded.

A kept value is served only while every tensor it was made from is unchanged. A tensor counts as
changed when it is another object, when its version counter moved (any in-place write through
autograd-visible ops), or when its contents differ from a fingerprint taken when the value was
made: a write through ``.data`` (``X.data.copy_(...)``, ``X.data[0] = ...``) moves no version
counter, so the fingerprint is what catches it. The fingerprint (exact integer sums of the bit
patterns, by row and by row position; one pass over the tensor) is checked on every call outside
:func:`hopfieldkit.descend` and once per ``descend`` call inside it (the tensors cannot change
while its loop runs).

Where values live:

- in the module that made them (an energy: ``owner``), one value per name, freed with the module;
- module-wide for plain function calls (``owner=None``, e.g. :func:`~hopfieldkit.lse_similarity`
  on a tensor): at most :data:`MAX_SHARED` entries, least recently used dropped first; each holds
  its source tensors only weakly and goes when they are freed.

:func:`clear_caches` drops all of them (and the softmax buffer pools inside packed copies).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Callable

import torch

from .._checks import check_session

MAX_SHARED = 8

_shared: OrderedDict = OrderedDict()   # (name, id of the first source) → _Entry
_owners: "weakref.WeakSet" = weakref.WeakSet()


class _Entry:
    __slots__ = ("key", "value", "refs", "prints", "session")

    def __init__(self, key, value, refs, prints, session):
        self.key, self.value, self.refs, self.prints, self.session = key, value, refs, prints, session


def fingerprint(t: torch.Tensor) -> tuple[int, int]:
    """Exact integer summary of ``t``'s contents: (Σ bits, Σ_i i · Σ_j bits_ij) over the rows of
    its bit patterns. Each row sum is taken in the integer type of the entries' width and wraps
    modulo 2^(8·width), so a change of any single entry always shows (the difference of two bit
    patterns is never a multiple of the modulus), and moving rows does too. One pass over ``t``,
    at the speed of a plain sum (accumulating in a wider type is far slower)."""
    t = t.detach()
    if t.numel() == 0:
        return (0, 0)
    kind = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}[t.element_size()]
    bits = t.contiguous().view(kind)
    rows = bits.reshape(-1, t.shape[-1] if t.dim() else 1).sum(-1, dtype=kind).to(torch.int64)
    pos = torch.arange(1, rows.numel() + 1, device=rows.device, dtype=torch.int64)
    return int(rows.sum()), int((rows * pos).sum())


def _key(sources: tuple) -> tuple:
    return tuple((id(t), t._version) for t in sources)


def _valid(entry: _Entry, key: tuple, sources: tuple) -> bool:
    if entry.key != key:
        return False
    session = check_session()
    if session is not None and entry.session == session:
        return True                        # checked already in this descend call
    if tuple(fingerprint(t) for t in sources) != entry.prints:
        return False
    entry.session = session
    return True


def cached(owner: object | None, name: str, sources: tuple, build: Callable, fits: Callable | None = None):
    """``build()``, kept under ``name`` in ``owner`` (or module-wide for ``owner=None``) until one
    of the ``sources`` tensors changes (module docstring) or ``fits(value)`` is False.

    In an owner, the sources are held with the value, so their ids cannot be reused by fresh
    tensors (a fresh f_LT(γ) every call is never served a stale copy). Module-wide entries hold
    them weakly and are dropped when one is freed, so no user tensor is kept alive by a cache."""
    key = _key(sources)
    if owner is None:
        slot = (name, key[0][0])          # one entry per name and live source: energies that sum
        hit = _shared.get(slot)           # two lse_similarity terms do not evict each other
        if (hit is None or any(r() is None for r in hit.refs) or not _valid(hit, key, sources)
                or (fits and not fits(hit.value))):
            def drop(_ref, slot=slot, key=key):
                e = _shared.get(slot)
                if e is not None and e.key == key:
                    _shared.pop(slot, None)
            hit = _Entry(key, build(), tuple(weakref.ref(t, drop) for t in sources),
                         tuple(fingerprint(t) for t in sources), check_session())
            _shared[slot] = hit
            while len(_shared) > MAX_SHARED:
                _shared.popitem(last=False)
        _shared.move_to_end(slot)
        return hit.value
    store = owner.__dict__.setdefault("_fast_cache", {})   # name → _Entry
    hit = store.get(name)
    if hit is None or not _valid(hit, key, sources) or (fits and not fits(hit.value)):
        hit = store[name] = _Entry(key, build(), sources, tuple(fingerprint(t) for t in sources), check_session())
        _owners.add(owner)
    return hit.value


def clear_caches() -> None:
    """Drop every value hopfieldkit keeps between calls: packed pattern copies, folded weights,
    cached constants, and their softmax buffer pools. Safe at any time: the next call rebuilds
    what it needs."""
    _shared.clear()
    for owner in list(_owners):
        owner.__dict__.pop("_fast_cache", None)
    _owners.clear()
