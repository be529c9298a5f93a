"""Theorems and capacity results of the papers, as functions.

Every function returns the quantity a theorem bounds or predicts, so tests can hold numerics
against it. Nothing here claims tightness: the tests hold numerics against each bound, never the
other way round (``docs/theory.md`` lists what is derived here beyond the papers). Every argument
is checked: a bad one raises a ``ValueError``/``TypeError`` that names it.

- :mod:`.modern`: the continuous modern Hopfield network, Ramsauer et al. (arXiv 2008.02217v3):
  separation, the well-separated condition, Lemmas A1–A9 and A10–A12, Theorems 3–5, A3, A4, A6, A7.
- :mod:`.dense`: dense associative memories (Krotov & Hopfield 2016, Demircigil et al. 2017).
- :mod:`.classical`: the pairwise network: Hebb's capacity, Gardner's bound, the bit-error rate,
  the Curie–Weiss overlap, and the Amit–Gutfreund–Sompolinsky (α, T) phase diagram.
"""
from .classical import *  # noqa: F401,F403
from .classical import __all__ as _classical
from .dense import *  # noqa: F401,F403
from .dense import __all__ as _dense
from .modern import *  # noqa: F401,F403
from .modern import __all__ as _modern

__all__ = _modern + _dense + _classical
