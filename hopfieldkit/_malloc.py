"""Keep freed CPU tensor memory in the process instead of returning it to the OS (glibc only).

torch allocates CPU tensors with ``posix_memalign``. Under glibc's defaults a buffer of a few MB
is either mapped fresh (above the mmap threshold) or handed back to the kernel when it is freed
at the top of the heap (above the trim threshold, twice the mmap threshold). Either way the next
buffer of that size is faulted in again page by page, and the kernel zeroes each page: measured
on the 2-core CI machine, a fresh 2 MB tensor cost 0.8 ms (2.5 GB/s), and page faults took 25–45 %
of a descent step of the ET energy (20 MB of 1–4 MB buffers a step) and of the blocked Hopfield
update, with 57 000 faults per step at N × d = 65536 × 512 before the buffers were pooled.

:func:`retain_freed_memory` sets the two thresholds once per process (``mallopt``): buffers below
:data:`MMAP_THRESHOLD` come from the heap, and up to :data:`TRIM_THRESHOLD` of freed memory stays
there for reuse, the way torch's CUDA caching allocator keeps device memory. ``descend`` calls it
for CPU states. The cost: the process may keep up to 256 MB of freed memory mapped. Set
``HOPFIELDKIT_MALLOPT=0`` in the environment to leave the allocator alone; other C libraries
(musl, macOS, Windows) are left alone anyway.
"""
from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20     # glibc's own ceiling for its dynamic threshold
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # <malloc.h>

_state: bool | None = None    # None: not tried yet; then whether the thresholds were set


def retain_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); True if they are set."""
    global _state
    if _state is None:
        _state = False
        if os.environ.get("HOPFIELDKIT_MALLOPT", "1") != "0" and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.gnu_get_libc_version        # glibc: other C libraries ignore or lack mallopt
                _state = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                          and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
            except (OSError, AttributeError):
                _state = False
    return _state
