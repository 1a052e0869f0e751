"""Keep the C heap's freed blocks for reuse while training (glibc only; elsewhere a no-op).

A training step allocates and frees the same dozens of multi-megabyte temporaries every time.
glibc serves such blocks with ``mmap`` and returns them (or trims the heap) on ``free``, so
every step touches fresh pages and pays a page fault per 4 KiB: at batch 65,536 that was a
quarter of the step. Raising the mmap and trim thresholds keeps the memory in the heap, where
the next step reuses it; the peak is unchanged, as the same blocks come back. When training
ends, the trim threshold and top pad go back to glibc's defaults and the free memory is handed
back to the system, so a process that goes on after training does not keep it. The mmap
threshold stays at 32 MiB, where glibc's own adjustment would take it for such blocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Iterator
from typing import Any

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: While training: blocks below 32 MiB (glibc's cap for the threshold) come from the heap,
#: which is trimmed only past 1 GiB of free memory at its top.
_TRAINING = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
#: glibc's defaults (mallopt(3)), restored afterwards.
_AFTERWARDS = ((_M_TRIM_THRESHOLD, 128 << 10), (_M_TOP_PAD, 128 << 10))


@functools.cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _set(libc: Any, settings: tuple[tuple[int, int], ...]) -> bool:
    results = [libc.mallopt(option, value) == 1 for option, value in settings]
    return all(results)


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Within the block, freed blocks stay in the heap; yields whether the C library agreed."""
    libc = _libc()
    if libc is None:
        yield False
        return
    applied = _set(libc, _TRAINING)
    try:
        yield applied
    finally:
        if applied:
            _set(libc, _AFTERWARDS)
            libc.malloc_trim(0)
