"""Precomputed answers for small matrices: every pair's class index, and raw-id offsets into it.

For a model with few rows and columns the whole ``n_rows x n_cols`` table of class indices is
smaller than many a model file (one byte a pair: 5.9 MB for ml-latest-small's 610 x 9,724), and
a prediction becomes one gather instead of an onnxruntime run. The table is filled by the
model's own session, so it holds exactly the graph's answers, ties included, for any
architecture and precision.

Raw integer ids reach a cell without being looked up and range-checked first
(:class:`RawCells`): the table has a guard cell before its first cell and after its last, which
hold a value no class index takes, and a clipped gather sends every position outside the table
to one of them. Checking the gathered classes for that value (one pass over bytes) then stands
for the range checks of the row ids.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: Marks an unknown id in :class:`FlatOffsets`; two of them still sum to a negative int64.
_MISSING = -(1 << 62)
#: Offset tables are built for id ranges of at most this many slots ...
_OFFSETS_MAX_SLOTS = 1 << 22
#: ... and at most this many times the number of ids (plus a little for tiny axes).
_OFFSETS_MAX_RATIO = 64
#: Largest offset a bias or a scaled row id may contribute: sums of two stay inside int64, and
#: an unknown id's share (``_MISSING``) keeps any sum negative.
_SHARE_LIMIT = 1 << 61


def table_dtype(n_classes: int) -> np.dtype | None:
    """The smallest unsigned type holding every class index and one value more (the guard
    cells' mark, its largest value), or None from 65,536 classes on."""
    if n_classes < 1 << 8:
        return np.dtype(np.uint8)
    if n_classes < 1 << 16:
        return np.dtype(np.uint16)
    return None


class ClassTable:
    """The class index of every (row, column) pair, filled piece by piece by a session.

    :attr:`values` is None until every cell is filled; then it is the read-only flat table,
    cell ``row * n_cols + col``, and :attr:`guarded` the same cells with a guard cell on each
    side (cell ``c`` at position ``c + 1``) holding :attr:`guard`, the dtype's largest value,
    which no class index reaches. Any number of threads may call :meth:`fill` at once: each
    claims its own range of cells under a lock and computes it outside the lock.
    """

    def __init__(self, n_rows: int, n_cols: int, dtype: np.dtype, n_classes: int) -> None:
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.n_classes = n_classes
        self.cells = n_rows * n_cols
        self.dtype = dtype
        self.guard = int(np.iinfo(dtype).max)
        if n_classes > self.guard:
            raise ValueError(f"{dtype} cannot hold {n_classes} class indices and a guard value")
        self.values: np.ndarray | None = None
        self.guarded: np.ndarray | None = None
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
                self._buffer = np.empty(self.cells + 2, dtype=self.dtype)
                self._buffer[0] = self._buffer[-1] = self.guard
            buffer = self._buffer
            start = self._claimed
            stop = min(self.cells, start + max(1, budget))
            self._claimed = stop
        try:
            for first in range(start, stop, step):
                last = min(stop, first + step)
                pairs = np.empty((last - first, 2), dtype=np.int64)
                np.divmod(
                    np.arange(first, last, dtype=np.int64),
                    self.n_cols,
                    out=(pairs[:, 0], pairs[:, 1]),
                )
                found = run(pairs)
                if found.shape != (last - first,) or (
                    found.size and (found.min() < 0 or found.max() >= self.n_classes)
                ):
                    raise ValueError(
                        f"the graph returned class indices outside 0..{self.n_classes - 1}"
                    )
                buffer[first + 1 : last + 1] = found
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            self._abandon()
            import logging  # only here: importing logging costs about 0.7 MB resident

            logging.getLogger(__name__).warning(
                "class-index table abandoned (%s); predictions use the graph", exc
            )
            return
        except BaseException:
            self._abandon()
            raise
        with self._lock:
            self._filled += stop - start
            if self._filled == self.cells and not self._failed:
                buffer.flags.writeable = False
                self.guarded = buffer
                self.values = buffer[1:-1]
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

    def __init__(self, ids: np.ndarray, stride: int, first: int, bias: int = 0) -> None:
        self.first = first
        self.stride = stride
        self.size = int(ids.size)
        # Ids lo, lo+1, ..., lo+n-1 need no table: (id - lo) * stride, checked in one pass.
        self.contiguous = int(ids[-1]) - int(ids[0]) == ids.size - 1
        self.lo = int(ids[0])
        self.table = np.zeros(0, dtype=np.int64)
        if not self.contiguous:
            self.table = np.full(int(ids[-1]) - first + 2, _MISSING, dtype=np.int64)
            self.table[ids - first] = np.arange(ids.size, dtype=np.int64) * stride + bias

    @classmethod
    def build(cls, ids: np.ndarray, stride: int, bias: int = 0) -> FlatOffsets | None:
        """The offsets of sorted int64 ``ids``, or None when their range is too sparse.

        A table's known entries are ``index * stride + bias`` (``|bias|`` at most 2**61); a
        contiguous axis has no table, and no bias.
        """
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
            or abs(bias) > _SHARE_LIMIT
        ):
            return None
        return cls(ids, stride, first, bias)

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


class CellLayout(NamedTuple):
    """How the two axes' shares of a raw pair add up to its position in a guarded table."""

    #: Row ids ``lo .. lo + n_rows - 1`` with ``lo >= 0``: the row share is ``id * n_cols``.
    scaled_rows: bool
    #: Added to every known entry of the rows' offset table ...
    row_bias: int
    #: ... of the columns' offset table ...
    col_bias: int
    #: ... and to the sum, when neither axis has a table to carry it.
    extra: int


def cell_layout(row_ids: np.ndarray, col_ids: np.ndarray) -> CellLayout | None:
    """The :class:`CellLayout` of two sorted int64 id arrays, or None for an empty axis."""
    n_rows, n_cols = int(row_ids.size), int(col_ids.size)
    if not n_rows or not n_cols:
        return None
    lo = int(row_ids[0])
    rows_contiguous = int(row_ids[-1]) - lo == n_rows - 1
    cols_contiguous = int(col_ids[-1]) - int(col_ids[0]) == n_cols - 1
    scaled = rows_contiguous and 0 <= lo and (lo + n_rows) * n_cols <= _SHARE_LIMIT
    # The shares give row * n_cols + col (offset tables, contiguous columns) or, for scaled
    # rows, (row + lo) * n_cols + col; the guarded position is row * n_cols + col + 1.
    wanted = 1 - lo * n_cols if scaled else 1
    if not cols_contiguous:
        return CellLayout(scaled, 0, wanted, 0)
    if not rows_contiguous:
        return CellLayout(scaled, wanted, 0, 0)
    return CellLayout(scaled, 0, 0, wanted)


class RawCells:
    """Raw integer (row id, column id) pairs -> positions in :attr:`ClassTable.guarded`.

    Each axis maps an id to its share of the position with its :class:`FlatOffsets` (built with
    the biases of :func:`cell_layout`): one clipped gather for sparse ids, arithmetic and a
    range check for contiguous ones; an unknown id's share makes the sum negative. Scaled rows
    (ids ``lo .. lo + n_rows - 1``, ``lo >= 0``) are not range-checked: ``id * n_cols`` of a row
    id outside them lands before the first cell or after the last, where the clipped gather
    finds a guard cell, so the caller's look for the guard value in the gathered classes is
    their range check. One pass over the row ids still makes sure the product cannot wrap
    around (every id in ``0 .. 2**62 / n_cols``; a negative one is huge read as unsigned).
    """

    def __init__(
        self, layout: CellLayout, rows: FlatOffsets, cols: FlatOffsets, n_cols: int
    ) -> None:
        self.layout = layout
        self.rows = rows
        self.cols = cols
        self.n_cols = n_cols
        self._row_bound = (1 << 62) // n_cols
        # Per row-id dtype: the unsigned dtype to read it as, and the bound its values must
        # stay under (negative ids read as unsigned are at least 2**(bits - 1)).
        self._row_guards: dict[np.dtype, tuple[np.dtype, int]] = {}

    def cells(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, spare: np.ndarray) -> bool:
        """Write the guarded positions of integer ids (not uint64) into int64 ``out``, with
        ``spare`` (int64, same length) as scratch. False (``out`` undefined) when the shortcut
        does not apply (a row id beyond the bound, a contiguous axis' id outside it): the
        caller's general path names or patches the id."""
        if self.layout.scaled_rows:
            guard = self._row_guards.get(rows.dtype)
            if guard is None:
                dtype = rows.dtype
                limit = self._row_bound
                if dtype.kind == "i":
                    limit = min(limit, 1 << (8 * dtype.itemsize - 1))
                guard = self._row_guards[dtype] = (np.dtype(dtype.str.replace("i", "u")), limit)
            unsigned, limit = guard
            if rows.size and int(np.maximum.reduce(rows.view(unsigned))) >= limit:
                return False
            np.multiply(rows, self.n_cols, out=out, dtype=np.int64)
        elif not self.rows.offsets(rows, out):
            return False
        if not self.cols.offsets(cols, spare):
            return False
        np.add(out, spare, out=out)
        if self.layout.extra:
            np.add(out, self.layout.extra, out=out)
        return True
