"""Label values <-> class indices (numpy only).

Classes are the sorted distinct label values: integers (``0..5``), numbers (half stars
``0.5..5.0``) or strings (``like``, ``dislike``). The class index of a label is its position in
that sorted list, which is also the order of the model's logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfx.errors import DataError


def _as_label_value(value: Any) -> int | float | str:
    """A JSON-friendly label value: int when integral, else float, else str."""
    if isinstance(value, (str, np.str_)):
        return str(value)
    number = float(value)
    return int(number) if number.is_integer() else number


def parse_classes(text: str) -> list[int | float | str]:
    """Parse ``--classes 0,1,2`` (numbers) or ``--classes dislike,like`` (strings)."""
    parts = [p.strip() for p in text.split(",")]
    if any(p == "" for p in parts):
        raise DataError(f"--classes {text!r}: empty class value; give a comma-separated list")
    try:
        values: list[Any] = [float(p) for p in parts]
    except ValueError:
        values = parts
    out = [_as_label_value(v) for v in values]
    if len(set(out)) != len(out):
        raise DataError(f"--classes {text!r}: a class is listed twice")
    return out


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a hash table first, since labels have few distinct values."""
    try:
        import pandas as pd
    except ImportError:
        return np.unique(values)
    return np.sort(pd.unique(values.reshape(-1)))


#: Labels on a grid of halves spanning at most this many steps take the counting-table path.
_GRID_MAX_STEPS = 1 << 16
#: Labels are worked through in blocks of this many, so the temporaries stay in cache.
_BLOCK = 1 << 16


def _half_steps(labels: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """Each label as whole half-steps above the lowest (``2 * label - base``, int64), ``base``
    and the number of steps spanned; None when the labels are not on such a grid.

    Stars, half stars and small integers are: their distinct values and class indices then
    come from a counting table (a pass and a look-up) instead of hashing and sorting floats.
    """
    if labels.dtype.kind not in "iuf" or labels.ndim != 1 or labels.size == 0:
        return None
    lo, hi = float(labels.min()), float(labels.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or not (2 * lo).is_integer():
        return None  # NaN or inf somewhere, or the lowest label is off the grid
    if 2 * (hi - lo) >= _GRID_MAX_STEPS or max(abs(lo), abs(hi)) > 2.0**50:
        return None  # too wide a table, or too large for every half to be a float
    base = int(2 * lo)
    steps = np.empty(labels.size, dtype=np.int64)
    scratch = np.empty(min(labels.size, _BLOCK), dtype=np.float64)
    for start in range(0, labels.size, _BLOCK):
        block = labels[start : start + _BLOCK]
        twice = scratch[: block.size]
        np.multiply(block, 2.0, out=twice)
        np.subtract(twice, base, out=twice)
        whole = steps[start : start + block.size]
        whole[...] = twice  # truncates; the comparison says whether anything was cut
        if not bool((whole == twice).all()):
            return None  # a label that is not a multiple of one half
    return steps, base, int(2 * (hi - lo)) + 1


def _look_up_in_place(steps: np.ndarray, table: np.ndarray) -> int:
    """Replace each step by ``table[step]``, block by block; the first position that maps to
    a negative entry (-1 if none)."""
    scratch = np.empty(min(steps.size, _BLOCK), dtype=np.int64)
    for start in range(0, steps.size, _BLOCK):
        block = steps[start : start + _BLOCK]
        found = scratch[: block.size]
        np.take(table, block, out=found, mode="clip")  # steps are in range; unbuffered
        block[...] = found
        missing = np.flatnonzero(found < 0)
        if missing.size:
            return start + int(missing[0])
    return -1


@dataclass(frozen=True)
class Classes:
    """The ordered class values of a classifier."""

    values: tuple[int | float | str, ...]

    def __post_init__(self) -> None:
        if len(self.values) < 2:
            raise DataError(
                f"need at least two distinct classes, found {len(self.values)}: "
                f"{list(self.values)}; a classifier cannot learn from one label"
            )
        seen: set[Any] = set()
        for value in self.values:
            if isinstance(value, float) and not math.isfinite(value):
                raise DataError(f"class {value!r} is not a finite number")
            if value in seen:
                raise DataError(f"class {value!r} is listed twice")
            seen.add(value)

    @property
    def numeric(self) -> bool:
        """True when every class is a number, so expected values and MAE make sense."""
        return all(not isinstance(v, str) for v in self.values)

    def __len__(self) -> int:
        return len(self.values)

    def as_array(self) -> np.ndarray:
        """Class values as a numpy array (float64 for numbers, str for strings)."""
        if self.numeric:
            return np.asarray(self.values, dtype=np.float64)
        return np.asarray([str(v) for v in self.values])

    def to_list(self) -> list[int | float | str]:
        return list(self.values)

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> Classes:
        return cls(tuple(_as_label_value(v) for v in values))

    @classmethod
    def fit(
        cls, labels: np.ndarray, explicit: Sequence[Any] | None = None
    ) -> tuple[Classes, np.ndarray]:
        """Classes for ``labels`` (or the ``explicit`` list) and each label's class index.

        Raises ``DataError`` with ``.position`` set to the first offending element when a label
        is not among the explicit classes.
        """
        labels = np.asarray(labels)
        numeric_labels = labels.dtype.kind in "iuf"
        grid = _half_steps(labels)
        if grid is not None:
            fitted = cls._fit_grid(labels, *grid, explicit)
            if fitted is not None:
                return fitted
        if explicit is not None:
            classes = cls.from_list(explicit)
            if len(set(classes.values)) != len(classes.values):
                raise DataError("a class is listed twice in --classes")
        else:
            uniq = _distinct_sorted(labels if numeric_labels else labels.astype(str))
            classes = cls.from_list(uniq.tolist())
        table = classes.as_array()
        if classes.numeric and not numeric_labels:
            raise DataError("labels are text but the classes are numbers")
        values = labels.astype(np.float64) if classes.numeric else labels.astype(str)
        order = np.argsort(table, kind="stable")
        table = table[order]
        pos = np.searchsorted(table, values)
        pos_clipped = np.minimum(pos, len(table) - 1)
        found = table[pos_clipped] == values
        if not found.all():
            bad = int(np.flatnonzero(~found)[0])
            err = DataError(
                f"label {_as_label_value(values[bad])!r} is not one of the classes "
                f"{classes.to_list()}"
            )
            err.position = bad  # type: ignore[attr-defined]
            raise err
        return classes, order[pos_clipped].astype(np.int64)

    @classmethod
    def _fit_grid(
        cls,
        labels: np.ndarray,
        steps: np.ndarray,
        base: int,
        span: int,
        explicit: Sequence[Any] | None,
    ) -> tuple[Classes, np.ndarray] | None:
        """:meth:`fit` for labels on a grid of halves (see :func:`_half_steps`), reusing
        ``steps`` for the class indices.

        Gives what the general path gives, classes, indices and errors alike; None where that
        path has a case of its own (text classes for numeric labels).
        """
        if explicit is None:
            present = np.bincount(steps, minlength=span) > 0
            classes = cls.from_list([(k + base) / 2 for k in np.flatnonzero(present).tolist()])
            if bool(present.all()):
                return classes, steps  # every step is a class: the step is the index
            _look_up_in_place(steps, np.cumsum(present, dtype=np.int64) - 1)
            return classes, steps
        classes = cls.from_list(explicit)
        if len(set(classes.values)) != len(classes.values):
            raise DataError("a class is listed twice in --classes")
        if not classes.numeric:
            return None
        table = np.full(span, -1, dtype=np.int64)
        for position, value in enumerate(classes.values):
            slot = 2 * value - base
            if float(slot).is_integer() and 0 <= slot < span:
                table[int(slot)] = position
        bad = _look_up_in_place(steps, table)
        if bad >= 0:
            err = DataError(
                f"label {_as_label_value(labels[bad])!r} is not one of the classes "
                f"{classes.to_list()}"
            )
            err.position = bad  # type: ignore[attr-defined]
            raise err
        return classes, steps

    def values_of(self, indices: np.ndarray) -> np.ndarray:
        """Label values for class indices."""
        return self.as_array()[np.asarray(indices)]
