"""The off switch a fast path of the models carries (``fused_write``, ``fused_read``)."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator


class Switch:
    """A thread-local switch: :attr:`off` inside :meth:`disabled`, on otherwise."""

    def __init__(self) -> None:
        self._state = threading.local()

    @property
    def off(self) -> bool:
        return getattr(self._state, "off", False)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Within the block the fast path is off (to compare, time or debug the plain path)."""
        old = self.off
        self._state.off = True
        try:
            yield
        finally:
            self._state.off = old
