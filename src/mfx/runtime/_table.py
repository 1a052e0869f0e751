"""Precomputed answers for small matrices: every pair's class index, and raw-id offsets into it.

For a model with few rows and columns the whole ``n_rows x n_cols`` table of class indices is
smaller than many a model file (one byte a pair: 5.9 MB for ml-latest-small's 610 x 9,724), and
a prediction becomes one gather instead of an onnxruntime run. The table is filled by the
model's own session, so it holds exactly the graph's answers, ties included, for any
architecture and precision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

#: Marks an unknown id in :class:`FlatOffsets`; two of them still sum to a negative int64.
_MISSING = -(1 << 62)
#: Offset tables are built for id ranges of at most this many slots ...
_OFFSETS_MAX_SLOTS = 1 << 22
#: ... and at most this many times the number of ids (plus a little for tiny axes).
_OFFSETS_MAX_RATIO = 64


def table_dtype(n_classes: int) -> np.dtype | None:
    """The smallest unsigned type holding every class index, or None past 65,536 classes."""
    if n_classes <= 1 << 8:
        return np.dtype(np.uint8)
    if n_classes <= 1 << 16:
        return np.dtype(np.uint16)
    return None


class ClassTable:
    """The class index of every (row, column) pair, filled piece by piece by a session.

    :attr:`values` is None until every cell is filled; then it is the read-only flat table,
    cell ``row * n_cols + col``. Any number of threads may call :meth:`fill` at once: each
    claims its own range of cells under a lock and computes it outside the lock.
    """

    def __init__(self, n_rows: int, n_cols: int, dtype: np.dtype, n_classes: int) -> None:
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.n_classes = n_classes
        self.cells = n_rows * n_cols
        self.dtype = dtype
        self.values: np.ndarray | None = None
        self._buffer: np.ndarray | None = None
        self._claimed = 0
        self._filled = 0
        self._failed = False
        self._lock = threading.Lock()

    @property
    def pending(self) -> bool:
        """True while cells remain to be claimed (and no fill has failed)."""
        return self.values is None and not self._failed and self._claimed < self.cells

    def fill(self, budget: int, run: Callable[[np.ndarray], np.ndarray], step: int) -> None:
        """Compute up to ``budget`` more cells with ``run(pairs) -> class_index``.

        ``run`` is called on at most ``step`` pairs at a time. An error abandons the table (the
        predictor keeps using the graph); it is logged, and only interrupts are re-raised.
        """
        with self._lock:
            if self.values is not None or self._failed or self._claimed >= self.cells:
                return
            if self._buffer is None:
                self._buffer = np.empty(self.cells, dtype=self.dtype)
            buffer = self._buffer
            start = self._claimed
            stop = min(self.cells, start + max(1, budget))
            self._claimed = stop
        try:
            for first in range(start, stop, step):
                last = min(stop, first + step)
                pairs = np.empty((last - first, 2), dtype=np.int64)
                np.divmod(
                    np.arange(first, last, dtype=np.int64), self.n_cols,
                    out=(pairs[:, 0], pairs[:, 1]),
                )
                found = run(pairs)
                if found.shape != (last - first,) or (
                    found.size and (found.min() < 0 or found.max() >= self.n_classes)
                ):
                    raise ValueError(
                        f"the graph returned class indices outside 0..{self.n_classes - 1}"
                    )
                buffer[first:last] = found
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            self._abandon()
            log.warning("class-index table abandoned (%s); predictions use the graph", exc)
            return
        except BaseException:
            self._abandon()
            raise
        with self._lock:
            self._filled += stop - start
            if self._filled == self.cells and not self._failed:
                buffer.flags.writeable = False
                self.values = buffer
                self._buffer = None

    def _abandon(self) -> None:
        with self._lock:
            self._failed = True
            self._buffer = None


class FlatOffsets:
    """Raw integer id -> ``index * stride`` in one gather (a large negative number if unknown).

    With ``stride = n_cols`` for rows and ``1`` for columns, the two offsets of a pair sum to its
    cell in a :class:`ClassTable`, and a negative sum flags an unknown id. The table covers
    ``first .. max id + 1`` with ``first`` below the smallest id, so its two end slots are
    unknown ids and a clipped gather (no range checks) sends every id outside the range to
    one of them. It starts at id 0 when the ids are positive and that costs little, so most
    look-ups need no subtraction either. Contiguous ids (``lo .. lo + n - 1``, such as
    MovieLens user ids) need no table: ``(id - lo) * stride``, range-checked in one pass.
    """

    def __init__(self, ids: np.ndarray, stride: int, first: int) -> None:
        self.first = first
        self.stride = stride
        self.size = int(ids.size)
        # Ids lo, lo+1, ..., lo+n-1 need no table: (id - lo) * stride, checked in one pass.
        self.contiguous = int(ids[-1]) - int(ids[0]) == ids.size - 1
        self.lo = int(ids[0])
        self.table = np.zeros(0, dtype=np.int64)
        if not self.contiguous:
            self.table = np.full(int(ids[-1]) - first + 2, _MISSING, dtype=np.int64)
            self.table[ids - first] = np.arange(ids.size, dtype=np.int64) * stride

    @classmethod
    def build(cls, ids: np.ndarray, stride: int) -> FlatOffsets | None:
        """The offsets of sorted int64 ``ids``, or None when their range is too sparse."""
        if ids.size == 0:
            return None
        lo, hi = int(ids[0]), int(ids[-1])
        if hi - lo == ids.size - 1:
            return cls(ids, stride, lo)
        first = 0 if 1 <= lo <= hi - lo + 1024 else lo - 1
        span = hi - first + 2
        if (
            first < np.iinfo(np.int64).min + 1
            or span > _OFFSETS_MAX_SLOTS
            or span > _OFFSETS_MAX_RATIO * ids.size + 1024
        ):
            return None
        return cls(ids, stride, first)

    def offsets(self, values: np.ndarray, out: np.ndarray) -> bool:
        """Write the offsets of integer ``values`` (not uint64) into int64 ``out``.

        False (``out`` undefined) when contiguous ids meet a value outside their range: the
        caller then takes the general path, which names or patches the unknown id.
        """
        if self.contiguous:
            np.subtract(values, self.lo, out=out, dtype=np.int64)
            # Read as unsigned, an id below lo is huge: one pass checks both ends. (A value
            # whose subtraction wraps around cannot land inside: int64 values that agree
            # modulo 2**64 are equal.)
            if out.size and int(np.maximum.reduce(out.view(np.uint64))) >= self.size:
                return False
            if self.stride != 1:
                np.multiply(out, self.stride, out=out)
            return True
        if self.first:
            values = np.subtract(values, self.first, dtype=np.int64)
        self.table.take(values, out=out, mode="clip")
        return True
