"""Raw row/column ids <-> contiguous indices (numpy only).

An :class:`IdMap` holds the distinct raw ids of one axis, sorted ascending; an id's index is
its position. Ids are either all integers (``int64``) or all strings. Look-ups are vectorised:
integer ids within a compact range use a dense table (one gather; built at the first look-up,
in the narrowest integer type that holds the indices), others ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mfx.errors import DataError, UnknownIdError

#: Longest text id, in characters. numpy holds text ids at the width of the longest (4 bytes a
#: character, for every entry), so one absurd id would multiply the memory of a whole column;
#: the readers and the model loader refuse longer ones.
MAX_ID_CHARS = 1024

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: A dense id -> index table is built when the id range is at most this many slots ...
_DENSE_MAX_SLOTS = 1 << 25
#: ... and at most this many times the number of ids.
_DENSE_MAX_RATIO = 64


def _is_integer_array(values: np.ndarray) -> bool:
    return values.dtype.kind in "iu" or values.dtype == np.bool_


def _integral_floats(values: np.ndarray) -> bool:
    return (
        values.dtype.kind == "f"
        and bool(np.all(np.isfinite(values)))
        and bool(np.all(values == np.round(values)))
    )


#: Ids mapped per block by the counting path of :meth:`IdMap.fit` (8 MB of int64 scratch).
_FIT_BLOCK = 1 << 20


class IdMap:
    """Sorted distinct raw ids of one axis (rows or columns).

    Parameters
    ----------
    ids
        Distinct raw ids in index order (ascending): an integer array or an array of strings.
    axis
        ``"row"`` or ``"column"``, used in error messages.
    """

    def __init__(self, ids: np.ndarray | Sequence[Any], axis: str = "row") -> None:
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"{axis} ids must be one-dimensional, got shape {arr.shape}")
        if _is_integer_array(arr) or (arr.size == 0 and arr.dtype.kind == "f"):
            arr = arr.astype(np.int64)
            self.kind = "int"
        elif arr.dtype.kind in "US" or arr.dtype == object:
            arr = arr.astype(str)
            self.kind = "str"
        else:
            raise ValueError(f"{axis} ids must be integers or strings, got dtype {arr.dtype}")
        if arr.size > 1 and not bool(np.all(arr[1:] > arr[:-1])):
            raise ValueError(f"{axis} ids must be distinct and sorted ascending")
        self.ids = arr
        self.axis = axis
        # The dense table is built at the first look-up that needs it: a model loaded only to
        # answer indices, or text ids, never pays for it.
        self._dense: tuple[int, np.ndarray] | None = None
        self._dense_wanted = False
        if self.kind == "int" and arr.size:
            span = int(arr[-1]) - int(arr[0]) + 1
            self._dense_wanted = (
                span <= _DENSE_MAX_SLOTS and span <= _DENSE_MAX_RATIO * arr.size + 1024
            )

    def __len__(self) -> int:
        return int(self.ids.size)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IdMap)
            and self.kind == other.kind
            and np.array_equal(self.ids, other.ids)
        )

    def __repr__(self) -> str:
        return f"IdMap({self.axis}, {len(self)} {self.kind} ids)"

    @classmethod
    def fit(cls, raw: np.ndarray, axis: str = "row") -> tuple[IdMap, np.ndarray]:
        """Build the map from raw ids and return it with each id's index (vectorised)."""
        raw = np.asarray(raw)
        if raw.dtype.kind == "f" and _integral_floats(raw):
            raw = raw.astype(np.int64)
        if _is_integer_array(raw):
            raw = raw.astype(np.int64, copy=False)
            if raw.size == 0:
                return cls(raw, axis), raw
            lo, hi = int(raw.min()), int(raw.max())
            span = hi - lo + 1
            if span <= max(4 * raw.size, 1 << 20):
                return cls._fit_dense(raw, lo, span, axis)
            ids, inverse = np.unique(raw, return_inverse=True)
            return cls(ids, axis), inverse.astype(np.int64).reshape(-1)
        if raw.dtype.kind in "US" or raw.dtype == object:
            text = raw.astype(str)
            try:
                import pandas as pd  # hash-based factorize: much faster than sorting strings
            except ImportError:
                ids, inverse = np.unique(text, return_inverse=True)
                return cls(ids, axis), inverse.astype(np.int64).reshape(-1)
            codes, uniques = pd.factorize(text, sort=True)
            return cls(np.asarray(uniques, dtype=str), axis), codes.astype(np.int64)
        raise DataError(f"{axis} ids must be integers or strings, got values of type {raw.dtype}")

    @classmethod
    def _fit_dense(cls, raw: np.ndarray, lo: int, span: int, axis: str) -> tuple[IdMap, np.ndarray]:
        """Counting-sort style: mark the present ids; an id's index is a cumulative sum.

        Works through ``raw`` in blocks, so no array of ``raw``'s size is made besides the
        result (20 M ids: 160 MB less at the peak, and fewer fresh pages to fault in).
        """
        present = np.zeros(span, dtype=bool)
        block = _FIT_BLOCK
        scratch = np.empty(min(block, raw.size), dtype=np.int64)
        for start in range(0, raw.size, block):
            part = scratch[: min(block, raw.size - start)]
            np.subtract(raw[start : start + block], lo, out=part)
            present[part] = True
        ids = np.flatnonzero(present).astype(np.int64) + lo
        rank = np.cumsum(present, dtype=np.int64) - 1
        index = np.empty(raw.size, dtype=np.int64)
        for start in range(0, raw.size, block):
            part = scratch[: min(block, raw.size - start)]
            np.subtract(raw[start : start + block], lo, out=part)
            # Every offset is in range; "clip" makes take write straight into ``out``.
            np.take(rank, part, out=index[start : start + block], mode="clip")
        return cls(ids, axis), index

    def to_list(self) -> list[int] | list[str]:
        """Raw ids in index order, as JSON-friendly Python values."""
        return self.ids.tolist()

    def _coerce(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw ids as this map's dtype, and a mask of those that can be ids at all (None: all).

        Text that is not an integer, or an integer outside int64, cannot be an id of an integer
        map: it is unknown (not an error), like any other id the map does not hold.
        ``ValueError`` names a value that cannot be an id of any map (NaN, 2.5).
        """
        if self.kind == "str":
            if raw.dtype.kind == "f":
                bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)))
                if bad.size:
                    i = int(bad[0])
                    raise ValueError(
                        f"{self.axis} id at position {i} is {raw[i].item()!r}, not an id"
                    )
                raw = raw.astype(np.int64)
            return raw.astype(str), None
        if _is_integer_array(raw):
            if raw.dtype == np.uint64 and raw.size and int(raw.max()) > _INT64_MAX:
                fits = raw <= np.uint64(_INT64_MAX)
                return np.where(fits, raw, 0).astype(np.int64), fits
            return raw.astype(np.int64, copy=False), None
        if raw.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)))
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"{self.axis} id at position {i} is {raw[i].item()!r}; ids must be integers"
                )
            # Casting a float outside int64 is undefined (it often gives int64's minimum).
            fits = (raw >= -(2.0**63)) & (raw < 2.0**63)
            if not fits.all():
                return np.where(fits, raw, 0).astype(np.int64), fits
            return raw.astype(np.int64), None
        if raw.dtype.kind in "US" or raw.dtype == object:
            return _text_as_int64(_as_text(raw))
        raise ValueError(f"{self.axis} ids must be integers or strings, got dtype {raw.dtype}")

    def lookup(self, raw: Any) -> np.ndarray:
        """Indices of raw ids, ``-1`` where an id is unknown. Shape follows ``raw``."""
        arr = np.asarray(raw)
        values, fits = self._coerce(arr.reshape(-1))
        out = self._find(values)
        if fits is not None:
            out[~fits] = -1
        return out.reshape(arr.shape)

    def dense(self) -> tuple[int, np.ndarray] | None:
        """``(lo, table)`` with ``table[id - lo]`` the index of integer ``id`` (``-1``: unknown),
        for ids within a compact range; None for text ids and sparse ones. Built on first use."""
        dense = self._dense
        if dense is None and self._dense_wanted:
            arr = self.ids
            # The narrowest type that holds every index and -1 (int16 up to 32,767 ids: 2 bytes
            # a slot), which keeps the table, and the model's own, in cache longer.
            dtype = next(t for t in (np.int16, np.int32, np.int64) if arr.size <= np.iinfo(t).max)
            table = np.full(int(arr[-1]) - int(arr[0]) + 1, -1, dtype=dtype)
            table[arr - arr[0]] = np.arange(arr.size, dtype=dtype)
            # Two threads may build it at once; both build the same table, one is kept.
            dense = self._dense = (int(arr[0]), table)
        return dense

    def _find(self, values: np.ndarray) -> np.ndarray:
        if self.ids.size == 0:
            return np.full(values.shape, -1, dtype=np.int64)
        dense = self.dense()
        if dense is not None:
            lo, table = dense
            if values.size and int(values.min()) >= lo and int(values.max()) - lo < table.size:
                # Common case, every id in range: one gather, no masks.
                return np.take(table, values - lo).astype(np.int64)
            # Subtracting could wrap around int64 for ids far below lo; compare first.
            inside = (values >= lo) & (values < lo + table.size)
            out = np.full(values.shape, -1, dtype=np.int64)
            out[inside] = table[values[inside] - lo]
            return out
        pos = np.searchsorted(self.ids, values)
        pos = np.minimum(pos, self.ids.size - 1)
        return np.where(self.ids[pos] == values, pos, -1).astype(np.int64)

    def index(self, raw: Any) -> np.ndarray:
        """Indices of raw ids; ``UnknownIdError`` names the first unknown one."""
        out = self.lookup(raw)
        flat = out.reshape(-1)
        missing = np.flatnonzero(flat < 0)
        if missing.size:
            values = np.asarray(raw).reshape(-1)
            shown = ", ".join(repr(_py(values[i])) for i in missing[:5])
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise UnknownIdError(
                f"{missing.size} {self.axis} id(s) not part of the training data: {shown}{more}"
            )
        return out


def _as_text(raw: np.ndarray) -> np.ndarray:
    """A str array of ``raw`` (bytes decoded as UTF-8, undecodable ones replaced)."""
    if raw.dtype.kind == "S":
        return np.char.decode(raw, "utf-8", errors="replace")
    return raw.astype(str)


def _text_as_int64(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integers written as text (' 31', '+5', '-7'), and which entries were such integers."""
    stripped = np.char.strip(text)
    body = np.char.lstrip(stripped, "+-")
    length = np.char.str_len(body)
    ok = (np.char.str_len(stripped) - length <= 1) & (length > 0) & np.char.isdecimal(body)
    out = np.zeros(text.shape, dtype=np.int64)
    short = ok & (length <= 18)  # 18 digits always fit in int64
    if short.any():
        out[short] = stripped[short].astype(np.int64)
    for i in np.flatnonzero(ok & ~short).tolist():
        number = int(stripped[i])
        if _INT64_MIN <= number <= _INT64_MAX:
            out[i] = number
        else:
            ok[i] = False
    return out, ok


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
