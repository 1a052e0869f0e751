"""Keep the C heap's freed blocks for reuse while training (glibc only; elsewhere a no-op).

A training step allocates and frees the same dozens of multi-megabyte temporaries every time.
glibc serves such blocks with ``mmap`` and returns them (or trims the heap) on ``free``, so
every step touches fresh pages and pays a page fault per 4 KiB: at batch 65,536 that was a
quarter of the step. Raising the mmap and trim thresholds keeps the memory in the heap, where
the next step reuses it; the process's peak memory is unchanged, as the same blocks come back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: Blocks below this come from the heap (glibc caps the mmap threshold at 32 MiB on 64-bit).
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30
_TOP_PAD = 64 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True when the C library took them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
