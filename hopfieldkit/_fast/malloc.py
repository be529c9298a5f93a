"""An opt-in allocator setting for the CPU: keep freed tensor memory in the process (glibc only).

torch allocates CPU tensors with ``posix_memalign``. Under glibc's defaults a buffer of a few MB
is either mapped fresh (above the mmap threshold) or handed back to the kernel when it is freed at
the top of the heap (above the trim threshold). Either way the next buffer of that size is
faulted in again page by page, and the kernel zeroes each page: for a descent whose every step
makes and frees buffers of a few MB, that can be a large share of the step time
(``benchmarks/results/tuning.md``).

:func:`retain_freed_memory` raises the two thresholds (``mallopt``), so buffers below
:data:`MMAP_THRESHOLD` come from the heap and up to :data:`TRIM_THRESHOLD` of freed memory stays
there for reuse, the way torch's CUDA caching allocator keeps device memory. It changes the whole
process, so hopfieldkit never calls it by itself: call it once in a script (the benchmarks do).
The cost: the process may keep up to 256 MB of freed memory mapped. Other C libraries (musl,
macOS, Windows) are left alone.
"""
from __future__ import annotations

import ctypes
import sys

MMAP_THRESHOLD = 32 << 20     # glibc's own ceiling for its dynamic threshold
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # <malloc.h>

_state: bool | None = None    # None: not tried yet; then whether the thresholds were set


def retain_freed_memory() -> bool:
    """Keep freed CPU buffers in the process for reuse (glibc's mmap and trim thresholds raised,
    once per process). Returns True if the thresholds are set, False where the C library is not
    glibc. A process-wide setting: call it from a script, not from library code."""
    global _state
    if _state is None:
        _state = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.gnu_get_libc_version        # glibc: other C libraries ignore or lack mallopt
                _state = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                          and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
            except (OSError, AttributeError):
                _state = False
    return _state


def retained() -> bool:
    """Whether :func:`retain_freed_memory` has set the thresholds in this process."""
    return bool(_state)
