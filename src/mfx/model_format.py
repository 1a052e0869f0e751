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
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfx.errors import ModelFormatError
from mfx.ids import MAX_ID_CHARS, IdMap
from mfx.labels import Classes

#: Version of this layout, stored as ``mfx.format``.
FORMAT_VERSION = 1

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

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
#: Tighter limits for the values that never hold more than a few numbers or words.
_VALUE_LIMITS = {
    "mfx.format": 64,
    "mfx.version": 256,
    "mfx.arch": 256,
    "mfx.n_rows": 64,
    "mfx.n_cols": 64,
    "mfx.folded": 64,
    "mfx.precision": 64,
    "mfx.classes": 1 << 20,
    "mfx.prior": 1 << 20,
    "mfx.metrics": 16 << 20,
}
#: Most bytes one id can take in the ``mfx.rows`` / ``mfx.cols`` JSON: MAX_ID_CHARS characters,
#: each escaped as a surrogate pair (12 bytes), the quotes and a separator with some spaces.
_ID_JSON_BYTES = MAX_ID_CHARS * 12 + 8
#: Nesting allowed in the JSON values (the id lists must be flat, depth 1).
_MAX_NESTING = 32
#: A fixed-width string table of ids may take this many characters whatever the ids ...
_ID_TABLE_SLACK = 1 << 24
#: ... and beyond it at most this many times the characters the ids really hold.
_ID_TABLE_RATIO = 8


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


def _check_size(meta: Mapping[str, str], key: str, limit: int, where: str) -> None:
    size = len(meta[key])  # characters; bytes are at least as many
    if size > limit:
        raise ModelFormatError(
            f"{where}: metadata {key} is {size:,} characters long, over the {limit:,} a valid "
            "model needs; refusing to parse it"
        )


def _nesting(text: str) -> int:
    """How deeply ``[`` and ``{`` nest outside JSON strings, found without parsing.

    Vectorised over blocks of the text, so it costs a fraction of ``json.loads`` and a bounded
    amount of memory whatever the size; it lets a deeply nested value be refused before the
    parser builds anything.
    """
    deepest = depth = 0
    inside = 0  # 1 while in a string
    block = 1 << 18
    start = 0
    while start < len(text):
        stop = min(len(text), start + block)
        while stop < len(text) and text[stop - 1] == "\\":
            stop += 1  # keep each escape in one block
        data = text[start:stop].encode("utf-8", "surrogatepass")
        start = stop
        if b'"' in data:
            # Drop escaped backslashes, then escaped quotes: every quote left delimits a string.
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        part = np.frombuffer(data, dtype=np.uint8)
        if part.size == 0:
            continue
        quotes = np.cumsum(part == 34, dtype=np.int32)
        outside = ((quotes + inside) & 1) == 0
        step = ((part == 91) | (part == 123)).astype(np.int8) - (
            (part == 93) | (part == 125)
        ).astype(np.int8)
        levels = depth + np.cumsum(np.where(outside, step, 0), dtype=np.int64)
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
        inside = (inside + int(quotes[-1])) & 1
    return deepest


def _json(meta: Mapping[str, str], key: str, where: str, max_nesting: int = _MAX_NESTING) -> Any:
    text = meta[key]
    _check_size(meta, key, _VALUE_LIMITS.get(key, MAX_VALUE_BYTES), where)
    # Fewer brackets than the allowed depth cannot nest deeper (a flat id list has one), and
    # skipping the scan keeps the runtime from paging in numpy code it never needs otherwise.
    brackets = text.count("[") + text.count("{")
    depth = _nesting(text) if brackets > max_nesting else brackets
    if depth > max_nesting:
        wanted = "a flat JSON list" if max_nesting == 1 else f"at most {max_nesting} levels"
        raise ModelFormatError(
            f"{where}: metadata {key} nests {depth} levels deep, expected {wanted}; "
            "refusing to parse it"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{where}: metadata {key} is not valid JSON ({exc})"[:300]) from None


def _int(meta: Mapping[str, str], key: str, where: str) -> int:
    _check_size(meta, key, _VALUE_LIMITS.get(key, 64), where)
    try:
        value = int(meta[key])
    except ValueError:
        raise ModelFormatError(
            f"{where}: metadata {key}={meta[key][:40]!r} is not an integer"
        ) from None
    if value < 0:
        raise ModelFormatError(f"{where}: metadata {key} is negative")
    return value


def _ids(meta: Mapping[str, str], key: str, count: int, axis: str, where: str) -> IdMap:
    """The id list ``key``, checked against its declared ``count`` before and after parsing."""
    limit = 2 + count * _ID_JSON_BYTES
    if len(meta[key]) > limit:
        raise ModelFormatError(
            f"{where}: metadata {key} is {len(meta[key]):,} characters long, far more than "
            f"{count:,} ids can take; refusing to parse it"
        )
    values = _json(meta, key, where, max_nesting=1)
    if not isinstance(values, list):
        raise ModelFormatError(f"{where}: metadata {key} must be a JSON list of ids")
    if len(values) != count:
        n_key = "mfx.n_rows" if axis == "row" else "mfx.n_cols"
        raise ModelFormatError(
            f"{where}: metadata {n_key}={count} disagrees with the {len(values)} ids listed"
        )
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if values and (min(values) < _INT64_MIN or max(values) > _INT64_MAX):
            raise ModelFormatError(f"{where}: metadata {key} holds an id outside int64")
        arr = np.asarray(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)
    elif all(isinstance(v, str) for v in values):
        lengths = [len(v) for v in values]
        longest = max(lengths, default=0)
        if longest > MAX_ID_CHARS:
            raise ModelFormatError(
                f"{where}: metadata {key} holds an id of {longest:,} characters; at most "
                f"{MAX_ID_CHARS:,} are allowed"
            )
        # numpy keeps text ids at the width of the longest one, 4 bytes a character.
        width = longest * len(values)
        if width > max(_ID_TABLE_SLACK, _ID_TABLE_RATIO * sum(lengths)):
            raise ModelFormatError(
                f"{where}: metadata {key}: one id of {longest:,} characters among "
                f"{len(values):,} much shorter ones would need a {4 * width / 2**30:.1f} GiB "
                "table; refusing to load it"
            )
        arr = np.asarray(values, dtype=str)
    else:
        raise ModelFormatError(f"{where}: metadata {key} must hold only integers or only strings")
    try:
        return IdMap(arr, axis)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: metadata {key}: {exc}") from None


def decode_metadata(
    meta: Mapping[str, str], where: str = "model", *, file_bytes: int | None = None
) -> ModelInfo:
    """Validate and decode ``metadata_props``; :class:`ModelFormatError` says what is wrong.

    Sizes are checked before any JSON is parsed, so a hostile file cannot make the parser
    build more than a bounded multiple of the text it holds: each value has a size limit, the
    id lists may take at most a few kilobytes per declared id and must be flat lists, and
    ``file_bytes`` (the size of the ``.onnx`` file, when known) bounds the declared number of
    ids, since every id takes at least two bytes of the metadata.
    """
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
    for key in ("mfx.version", "mfx.arch", "mfx.folded", "mfx.precision"):
        if key in meta:
            _check_size(meta, key, _VALUE_LIMITS[key], where)
    n_rows = _int(meta, "mfx.n_rows", where)
    n_cols = _int(meta, "mfx.n_cols", where)
    if file_bytes is not None and 2 * (n_rows + n_cols) > file_bytes:
        raise ModelFormatError(
            f"{where}: metadata declares {n_rows:,} rows and {n_cols:,} columns, more ids than "
            f"a file of {file_bytes:,} bytes can list; refusing to load it"
        )
    classes_list = _json(meta, "mfx.classes", where, max_nesting=1)
    if not isinstance(classes_list, list) or not all(
        isinstance(c, (int, float, str)) and not isinstance(c, bool) for c in classes_list
    ):
        raise ModelFormatError(f"{where}: metadata mfx.classes must be a JSON list of labels")
    try:
        classes = Classes.from_list(classes_list)
    except (ValueError, OverflowError) as exc:
        raise ModelFormatError(f"{where}: metadata mfx.classes: {exc}") from None
    row_ids = _ids(meta, "mfx.rows", n_rows, "row", where)
    col_ids = _ids(meta, "mfx.cols", n_cols, "column", where)
    prior = _json(meta, "mfx.prior", where, max_nesting=1)
    if (
        not isinstance(prior, list)
        or len(prior) != len(classes)
        or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in prior)
    ):
        raise ModelFormatError(f"{where}: metadata mfx.prior must list one number per class")
    if not all(math.isfinite(p) and p >= 0 for p in prior) or sum(prior) <= 0:
        raise ModelFormatError(
            f"{where}: metadata mfx.prior must hold finite, non-negative frequencies with a "
            "positive sum"
        )
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
