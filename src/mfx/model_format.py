"""The contract between ``mfx-export`` and ``mfx.runtime``: graph names and metadata (torch-free).

An mfx ONNX model has one input and three outputs:

* ``pairs``: int64 ``[batch, 2]`` (row index, column index); ``batch`` is a named dynamic
  dimension.
* ``logits``: float32 ``[batch, classes]``; ``probabilities``: float32 ``[batch, classes]``
  (softmax); ``class_index``: int64 ``[batch]`` (argmax).

Its ``metadata_props`` (see :data:`METADATA_KEYS`) carry everything a device needs to turn raw
ids into indices and class indices into label values, so the ``.onnx`` file is self-contained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfx.errors import ModelFormatError
from mfx.ids import IdMap
from mfx.labels import Classes

#: Version of this layout, stored as ``mfx.format``.
FORMAT_VERSION = 1

INPUT_NAME = "pairs"
OUTPUT_NAMES = ("logits", "probabilities", "class_index")
BATCH_DIM = "batch"

METADATA_KEYS = (
    "mfx.format",  # layout version (int)
    "mfx.version",  # mfx version that wrote the file
    "mfx.arch",  # architecture name
    "mfx.classes",  # JSON list of label values in class-index order
    "mfx.rows",  # JSON list of raw row ids in index order
    "mfx.cols",  # JSON list of raw column ids in index order
    "mfx.n_rows",  # int
    "mfx.n_cols",  # int
    "mfx.prior",  # JSON list: training class frequencies
    "mfx.metrics",  # JSON object: training and validation metrics
    "mfx.folded",  # "true" when the graph is the folded P[row] + Q[col] form
    "mfx.precision",  # fp32, fp16 or int8
)
REQUIRED_KEYS = METADATA_KEYS[:9]

#: No single metadata value may exceed this many bytes (guards against JSON bombs).
MAX_VALUE_BYTES = 512 << 20


@dataclass
class ModelInfo:
    """Decoded metadata of an mfx ONNX model."""

    format: int
    version: str
    arch: str
    classes: Classes
    row_ids: IdMap
    col_ids: IdMap
    prior: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)
    folded: bool = False
    precision: str = "fp32"

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_cols(self) -> int:
        return len(self.col_ids)


def encode_metadata(
    *,
    version: str,
    arch: str,
    classes: list[Any],
    rows: list[Any],
    cols: list[Any],
    prior: list[float],
    metrics: Mapping[str, Any] | None = None,
    folded: bool = False,
    precision: str = "fp32",
) -> dict[str, str]:
    """Metadata as the string map stored in ``metadata_props``."""
    return {
        "mfx.format": str(FORMAT_VERSION),
        "mfx.version": version,
        "mfx.arch": arch,
        "mfx.classes": json.dumps(list(classes)),
        "mfx.rows": json.dumps(list(rows), separators=(",", ":")),
        "mfx.cols": json.dumps(list(cols), separators=(",", ":")),
        "mfx.n_rows": str(len(rows)),
        "mfx.n_cols": str(len(cols)),
        "mfx.prior": json.dumps([float(p) for p in prior]),
        "mfx.metrics": json.dumps(dict(metrics or {})),
        "mfx.folded": "true" if folded else "false",
        "mfx.precision": precision,
    }


def _json(meta: Mapping[str, str], key: str, where: str) -> Any:
    text = meta[key]
    if len(text) > MAX_VALUE_BYTES:
        raise ModelFormatError(f"{where}: metadata {key} is {len(text)} bytes, over the limit")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{where}: metadata {key} is not valid JSON ({exc})"[:300]) from None


def _int(meta: Mapping[str, str], key: str, where: str) -> int:
    try:
        value = int(meta[key])
    except ValueError:
        raise ModelFormatError(
            f"{where}: metadata {key}={meta[key][:40]!r} is not an integer"
        ) from None
    if value < 0:
        raise ModelFormatError(f"{where}: metadata {key} is negative")
    return value


def _ids(values: Any, key: str, axis: str, where: str) -> IdMap:
    if not isinstance(values, list):
        raise ModelFormatError(f"{where}: metadata {key} must be a JSON list of ids")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        arr = np.asarray(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)
    elif all(isinstance(v, str) for v in values):
        arr = np.asarray(values, dtype=str)
    else:
        raise ModelFormatError(f"{where}: metadata {key} must hold only integers or only strings")
    try:
        return IdMap(arr, axis)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: metadata {key}: {exc}") from None


def decode_metadata(meta: Mapping[str, str], where: str = "model") -> ModelInfo:
    """Validate and decode ``metadata_props``; :class:`ModelFormatError` says what is wrong."""
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFormatError(
            f"{where}: not an mfx model (metadata {', '.join(missing)} missing); "
            "export it with mfx-export"
        )
    fmt = _int(meta, "mfx.format", where)
    if fmt != FORMAT_VERSION:
        raise ModelFormatError(
            f"{where}: mfx.format {fmt} is not supported (this mfx reads format {FORMAT_VERSION})"
        )
    classes_list = _json(meta, "mfx.classes", where)
    if not isinstance(classes_list, list) or not all(
        isinstance(c, (int, float, str)) and not isinstance(c, bool) for c in classes_list
    ):
        raise ModelFormatError(f"{where}: metadata mfx.classes must be a JSON list of labels")
    try:
        classes = Classes.from_list(classes_list)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: metadata mfx.classes: {exc}") from None
    row_ids = _ids(_json(meta, "mfx.rows", where), "mfx.rows", "row", where)
    col_ids = _ids(_json(meta, "mfx.cols", where), "mfx.cols", "column", where)
    for key, ids in (("mfx.n_rows", row_ids), ("mfx.n_cols", col_ids)):
        if _int(meta, key, where) != len(ids):
            raise ModelFormatError(
                f"{where}: metadata {key}={meta[key]} disagrees with the {len(ids)} ids listed"
            )
    prior = _json(meta, "mfx.prior", where)
    if (
        not isinstance(prior, list)
        or len(prior) != len(classes)
        or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in prior)
    ):
        raise ModelFormatError(f"{where}: metadata mfx.prior must list one number per class")
    metrics = _json(meta, "mfx.metrics", where) if "mfx.metrics" in meta else {}
    if not isinstance(metrics, dict):
        raise ModelFormatError(f"{where}: metadata mfx.metrics must be a JSON object")
    return ModelInfo(
        format=fmt,
        version=meta.get("mfx.version", ""),
        arch=meta.get("mfx.arch", ""),
        classes=classes,
        row_ids=row_ids,
        col_ids=col_ids,
        prior=np.asarray(prior, dtype=np.float64),
        metrics=metrics,
        folded=meta.get("mfx.folded", "false") == "true",
        precision=meta.get("mfx.precision", "fp32"),
    )
