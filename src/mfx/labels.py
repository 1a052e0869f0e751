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

    def values_of(self, indices: np.ndarray) -> np.ndarray:
        """Label values for class indices."""
        return self.as_array()[np.asarray(indices)]
