"""The :class:`Predictor`: answers for (row, column) pairs from one mfx ONNX file.

Only numpy, onnxruntime and mfx's torch-free modules are imported here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import onnxruntime as ort

from mfx.errors import ModelFormatError, UnknownIdError
from mfx.ids import IdMap
from mfx.labels import Classes
from mfx.model_format import INPUT_NAME, ModelInfo
from mfx.runtime._load import load_model, model_path_text
from mfx.runtime._prune import prune_outputs
from mfx.runtime._table import ClassTable, FlatOffsets, RawCells, cell_layout, table_dtype
from mfx.runtime._text import TextIndex
from mfx.runtime.providers import ProviderSpec

if TYPE_CHECKING:
    from pathlib import Path

# Neither logging nor pathlib is imported at run time unless needed (a message to log, the
# `path` property): together they are about 1.3 MB of the runtime's resident memory.

#: Pairs per onnxruntime call. Measured on CPU (onnxruntime 1.32, one thread, 10 classes),
#: bare-session throughput is flat from 8 Ki to 1 Mi pairs for a 610 x 9,724 model, while for
#: a 100,000 x 50,000 model it dips at 32-64 Ki and is best from 256 Ki up; 256 Ki keeps a
#: chunk's temporaries (pairs, logits, probabilities) near 17 MB whatever the input length.
DEFAULT_CHUNK_SIZE = 262_144

#: ``unknown=`` policies for raw ids that were not in the training data.
UNKNOWN_POLICIES = ("error", "prior")

#: ``class_table=`` choices: see :class:`Predictor`.
CLASS_TABLE_CHOICES = ("auto", "eager", "off")

#: Largest class-index table (one byte a pair below 257 classes) a Predictor builds by default:
#: 32 MiB covers ml-latest-small (5.9 MB) and MovieLens 1M (6,040 x 3,706: 22 MB).
CLASS_TABLE_MAX_BYTES = 32 << 20

_LOGITS, _PROBABILITIES, _CLASS_INDEX = "logits", "probabilities", "class_index"
#: Signed integer dtype -> the unsigned one of its width (native byte order).
_UNSIGNED = {np.dtype(f"i{w}"): np.dtype(f"u{w}") for w in (1, 2, 4, 8)}
_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)
#: Axes with at most this many ids and no dense id table get a dict for scalar look-ups (about
#: 100 bytes an id); integer ids in a compact range use :meth:`IdMap.dense` (2 bytes a slot).
_SCALAR_TABLE_MAX = 1 << 18
#: Up to this many pairs, ids are mapped in plain Python: numpy's per-call overhead (a few
#: microseconds per operation) would otherwise exceed onnxruntime's own time for the run.
_SMALL_BATCH = 32
#: Pairs per numpy pass when answering from the class-index table: a piece's scratch arrays
#: (two int64 cell arrays and the class indices, 17 bytes a pair) stay in the core's L2 cache
#: and are reused. On an AMD EPYC core, 32 Ki ran best at batch 1 Mi (about 10% over 8 Ki and
#: over 256 Ki) and within 5% of the best at 64 Ki.
_TABLE_STEP = 1 << 15
#: In ``class_table="auto"``, each batched call that the graph answers also computes as many
#: table cells as it had pairs, but at least this many (so small calls still make progress).
_MIN_FILL = 1 << 12
#: Pairs per onnxruntime run while filling the table: as fast as larger runs, and the session's
#: memory arena (which keeps the most any run needed) stays small: filling ml-latest-small's
#: table peaked 5 MB above the final resident size, against 75 MB with runs of 256 Ki pairs.
_FILL_STEP = 1 << 14
#: A class_index-only copy of the graph is opened for models up to this size: it runs without
#: the Softmax that onnxruntime would otherwise compute for nothing, at the cost of a second
#: copy of the weights in memory.
_PRUNE_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class Prediction:
    """Results for one chunk of pairs, as yielded by :meth:`Predictor.iter_predict`.

    Attributes
    ----------
    start
        Position of the chunk's first pair in the whole input.
    unknown
        ``bool [n]``: True where the row or column id was not part of the training data and
        the answer is the training prior (only with ``unknown="prior"``).
    labels
        Predicted label values ``[n]``.
    class_index
        ``int64 [n]``: the predicted class' position in :attr:`Predictor.classes`.
    probabilities
        ``float32 [n, classes]`` when asked for, else None.
    logits
        ``float32 [n, classes]`` when asked for, else None.
    """

    start: int
    unknown: np.ndarray
    labels: np.ndarray
    class_index: np.ndarray
    probabilities: np.ndarray | None = None
    logits: np.ndarray | None = None

    @property
    def stop(self) -> int:
        """Position one past the chunk's last pair."""
        return self.start + len(self.unknown)

    def __len__(self) -> int:
        return len(self.unknown)


class Recommendations(NamedTuple):
    """Top-k columns for one row, best first: ``cols, scores = predictor.recommend(row)``."""

    cols: np.ndarray
    scores: np.ndarray


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _Axis:
    """One axis (rows or columns): raw id and index validation, vectorised and scalar."""

    def __init__(self, ids: IdMap, name: str, stride: int = 1) -> None:
        self.ids = ids
        self.name = name
        self.size = len(ids)
        self.kind = ids.kind
        self.stride = stride
        self._table: dict[Any, int] | None = None
        self._dense: tuple[int, np.ndarray, int] | None = None
        self._dense_tried = False
        self._offsets: FlatOffsets | None = None
        self._text: TextIndex | None = None
        self._offsets_tried = False
        self._lock = threading.Lock()
        # Ids lo, lo+1, ..., lo+n-1 (matrix positions, 1..n user ids): an id's index is
        # id - lo, found with a subtraction instead of a table look-up.
        self._first = int(ids.ids[0]) if self.kind == "int" and self.size else 0
        self._contiguous = bool(
            self.kind == "int" and self.size and int(ids.ids[-1]) - self._first == self.size - 1
        )

    # -- scalars (the batch-1 fast path) -------------------------------------------------

    def scalar(self, value: Any) -> int:
        """Index of a raw id of this axis' own Python type, ``-1`` when unknown."""
        if self._contiguous:
            offset = value - self._first
            return offset if 0 <= offset < self.size else -1
        dense = self._dense
        if dense is None and not self._dense_tried:
            found = self.ids.dense() if self.kind == "int" else None
            dense = self._dense = None if found is None else (*found, found[1].size)
            self._dense_tried = True
        if dense is not None:
            lo, slots, size = dense
            offset = value - lo
            return slots.item(offset) if 0 <= offset < size else -1
        table = self._table
        if table is not None:
            return table.get(value, -1)
        if self.size <= _SCALAR_TABLE_MAX:
            with self._lock:
                if self._table is None:
                    self._table = dict(zip(self.ids.ids.tolist(), range(self.size)))
            return self._table.get(value, -1)
        if self.kind == "int" and not _INT64_MIN <= value <= _INT64_MAX:
            return -1
        ids = self.ids.ids
        pos = int(np.searchsorted(ids, value))
        return pos if pos < self.size and ids[pos] == value else -1

    # -- arrays ----------------------------------------------------------------------------

    def flat_offsets(self, bias: int) -> FlatOffsets | None:
        """This axis' raw id -> cell share map (built at the first call, with ``bias`` on its
        table's entries); None for text ids and ids too sparse for a table."""
        if not self._offsets_tried:
            with self._lock:
                if not self._offsets_tried:
                    if self.kind == "int":
                        self._offsets = FlatOffsets.build(self.ids.ids, self.stride, bias)
                    self._offsets_tried = True
        return self._offsets

    def indices(self, values: np.ndarray, offset: int) -> np.ndarray:
        """Validated dense indices as int64; ``ValueError`` names the position and value."""
        kind = values.dtype.kind
        if kind == "f":
            self._check_integral(values, offset, "index")
        elif kind not in "iu":
            raise ValueError(f"{self.name} indices must be integers, got {_dtype_name(values)}")
        if values.size:
            if kind == "f":
                outside = values.min() < 0 or values.max() >= self.size
            else:
                # One pass instead of min() and max(): read as unsigned, a negative index is
                # huge, so the largest value is out of range whenever any value is.
                unsigned = values.view(
                    _UNSIGNED.get(values.dtype) or values.dtype.str.replace("i", "u")
                )
                outside = int(np.maximum.reduce(unsigned)) >= self.size
            if outside:
                bad = np.flatnonzero((values < 0) | (values >= self.size))[0]
                raise ValueError(
                    f"{self.name} index {_plain(values[bad])!r} at position {offset + int(bad)} "
                    f"is out of range 0..{self.size - 1}"
                )
        return values.astype(np.int64, copy=False)

    def lookup(self, values: np.ndarray, offset: int) -> np.ndarray:
        """Indices of raw ids as int64, ``-1`` where an id is unknown."""
        kind = values.dtype.kind
        if kind == "f":
            self._check_integral(values, offset, "id")
            # IdMap maps floats beyond int64 to unknown; casting them here would be undefined.
            # Half and single precision widen exactly (and compare with 2**63 without overflow).
            if values.dtype.itemsize < 8:
                values = values.astype(np.float64)
            return self.ids.lookup(values)
        if kind in "iu":
            if values.dtype == np.uint64 and values.size and values.max() > _INT64_MAX:
                out = np.full(values.shape, -1, dtype=np.int64)
                fits = values <= _INT64_MAX
                out[fits] = self.ids.lookup(values[fits].astype(np.int64))
                return out
            if self._contiguous:
                return self._lookup_contiguous(values)
            return self.ids.lookup(values)
        if kind in "USO":
            if self.kind == "str":
                text = values if kind == "U" else values.astype(str)
                return self._text_index().lookup(text.reshape(-1))
            return self._lookup_numeric_text(values)
        raise ValueError(f"{self.name} ids must be integers or strings, got {_dtype_name(values)}")

    def _text_index(self) -> TextIndex:
        index = self._text
        if index is None:
            with self._lock:
                if self._text is None:
                    self._text = TextIndex(self.ids.ids)
                index = self._text
        return index

    def _lookup_contiguous(self, values: np.ndarray) -> np.ndarray:
        first = self._first
        if values.size:
            low, high = int(values.min()), int(values.max())
            if low >= first and high < first + self.size:
                if first == 0:
                    return values.astype(np.int64, copy=False)
                return np.subtract(values, first, dtype=np.int64)
        out = np.subtract(values, first, dtype=np.int64)
        out[(values < first) | (out >= self.size)] = -1
        return out

    def _lookup_numeric_text(self, values: np.ndarray) -> np.ndarray:
        """Integer ids given as text ('31'); text that is not an integer is an unknown id."""
        text = np.char.strip(values.astype(str))
        body = np.char.lstrip(text, "+-")
        ok = np.char.isdigit(body) & (np.char.str_len(text) - np.char.str_len(body) <= 1)
        out = np.full(text.shape, -1, dtype=np.int64)
        if not ok.any():
            return out
        chosen = text[ok]
        try:
            numbers = chosen.astype(np.int64)
            found = self.ids.lookup(numbers)
        except (ValueError, OverflowError):  # out of int64 range or unusual digits
            found = np.array([self._one_text(t) for t in chosen.tolist()], dtype=np.int64)
        out[ok] = found
        return out

    def _one_text(self, text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            return -1
        return self.scalar(number) if _INT64_MIN <= number <= _INT64_MAX else -1

    def _check_integral(self, values: np.ndarray, offset: int, what: str) -> None:
        bad = ~np.isfinite(values) | (values != np.trunc(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{self.name} {what} {float(values[i])!r} at position {offset + i} "
                "is not an integer"
            )


def _dtype_name(values: np.ndarray) -> str:
    return "booleans" if values.dtype == np.bool_ else f"dtype {values.dtype}"


def _as_vector(values: Any, name: str) -> np.ndarray:
    try:
        arr = values if type(values) is np.ndarray else np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a scalar or a one-dimensional sequence ({exc})") from None
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or one-dimensional, got shape {arr.shape}")
    return arr


def _top_k(scores: np.ndarray, k: int, keep: np.ndarray | None) -> np.ndarray:
    """Indices of the ``k`` best scores: higher first, ties to the lower index."""
    pool = np.flatnonzero(keep) if keep is not None else None
    values = scores if pool is None else scores[pool]
    if k < values.size:
        part = np.argpartition(-values, k - 1)[:k]
        threshold = values[part].min()
        candidates = np.flatnonzero(values >= threshold)
        order = candidates[np.argsort(-values[candidates], kind="stable")][:k]
    else:
        order = np.argsort(-values, kind="stable")
    return order if pool is None else pool[order]


def _label_values(classes: Classes) -> np.ndarray:
    """What :meth:`Predictor.predict` returns: int64, float64 or str label values."""
    if not classes.numeric:
        return np.asarray([str(v) for v in classes.values])
    if all(isinstance(v, int) for v in classes.values):
        return np.asarray(classes.values, dtype=np.int64)
    return np.asarray(classes.values, dtype=np.float64)


class _Buffers:
    """Scratch arrays for answering up to ``size`` pairs from the class-index table."""

    def __init__(self, size: int, dtype: np.dtype) -> None:
        self.size = size
        self.cells = np.empty(size, dtype=np.int64)
        self.spare = np.empty(size, dtype=np.int64)
        self.found = np.empty(size, dtype=dtype)


class Predictor:
    """Predictions from an mfx ONNX model with numpy and onnxruntime only.

    Parameters
    ----------
    path
        The ``.onnx`` file written by ``mfx-export``. It is checked completely here: a
        missing, corrupt or foreign file, external data outside the model's folder, or tables
        that disagree with the metadata raise :class:`~mfx.errors.ModelFormatError` now, not at
        the first prediction.
    providers
        ``"auto"`` (CUDA when this onnxruntime build has ``CUDAExecutionProvider``, else CPU),
        ``"cpu"``, ``"cuda"`` or an ordered list of onnxruntime provider names. The same code
        runs with the ``onnxruntime-gpu`` wheel unchanged (install it *instead of*
        ``onnxruntime``, never both). Asking for a provider that is missing, or that
        onnxruntime silently drops while creating the session, raises
        :class:`~mfx.errors.DeviceError` naming what is available; :attr:`providers` reports
        what the session really uses.
    threads
        onnxruntime intra-op threads; None lets onnxruntime choose (one per physical core).
    unknown
        What a raw id that was not in the training data gets: ``"error"`` raises
        :class:`~mfx.errors.UnknownIdError` naming it; ``"prior"`` answers that pair with the
        training prior (probabilities = prior, logits = log prior, label = the prior's most
        frequent class). Pass ``return_unknown=True`` to a prediction method, or use
        :meth:`iter_predict`, to learn which pairs those were.
    chunk_size
        Pairs per onnxruntime call. Inputs of any length are processed in chunks of this
        size, so the temporary memory is bounded by the chunk, not by the input (the
        ``predict*`` methods still return whole results; :meth:`iter_predict` and
        :meth:`stream` hold one chunk's results at a time).
    class_table
        Whether labels (:meth:`predict`, and :meth:`iter_predict` without ``proba`` or
        ``logits``) may come from a precomputed table of every pair's class index,
        ``n_rows x n_cols`` bytes, filled by this model's own session, so its answers are the
        graph's exactly, ties included. A prediction is then one gather. ``"auto"`` (default):
        when the table fits ``class_table_max_bytes``, each batched call the graph answers
        (more than 32 pairs) also fills as many cells as it had pairs (at least 4,096), so no
        call takes much more than twice its time; once every cell is filled, the table
        answers. ``"eager"``: fill it now (about as long as predicting every pair once;
        ``ValueError`` when it exceeds ``class_table_max_bytes``). ``"off"``: always run the
        graph. Probabilities and logits always come from the graph.
    class_table_max_bytes
        Size limit of the table (default :data:`CLASS_TABLE_MAX_BYTES`, 32 MiB).

    Notes
    -----
    Rows and columns are raw ids (integers or strings, as in the training file) unless
    ``index=True``, when they are dense indices ``0..n_rows-1`` / ``0..n_cols-1``. Two
    scalars give a scalar answer; a scalar and a one-dimensional array are broadcast.

    :meth:`predict` returns label values: ``int64`` when every class is an integer, ``float64``
    for other numeric classes (half stars), ``str`` for text classes.

    One Predictor may be shared by any number of threads: onnxruntime's ``run`` is
    thread-safe and every call uses its own buffers; the table is filled in ranges that each
    thread claims under a lock, and is used only once complete.

    Labels-only calls that the graph answers run a copy of the graph reduced to
    ``class_index`` (onnxruntime would otherwise compute the ``Softmax`` as well), opened at
    the first such batched call for models up to 256 MiB and released once the table is
    complete.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        providers: str | Sequence[ProviderSpec] = "auto",
        threads: int | None = None,
        unknown: str = "error",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        class_table: str = "auto",
        class_table_max_bytes: int = CLASS_TABLE_MAX_BYTES,
    ) -> None:
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown={unknown!r}: choose 'error' or 'prior'")
        if class_table not in CLASS_TABLE_CHOICES:
            raise ValueError(f"class_table={class_table!r}: choose 'auto', 'eager' or 'off'")
        if (
            isinstance(class_table_max_bytes, bool)
            or not isinstance(class_table_max_bytes, (int, np.integer))
            or class_table_max_bytes < 0
        ):
            raise ValueError(
                f"class_table_max_bytes must be a non-negative integer, got "
                f"{class_table_max_bytes!r}"
            )
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.chunk_size = chunk_size
        self._path = model_path_text(path)
        self._unknown = unknown
        loaded = load_model(path, providers=providers, threads=threads)
        self._session = loaded.session
        self._info = loaded.info
        self._raw_metadata = loaded.metadata
        self._providers = tuple(loaded.providers)
        self._rows = _Axis(self._info.row_ids, "row", stride=len(self._info.col_ids))
        self._cols = _Axis(self._info.col_ids, "column")
        classes = self._info.classes
        self._labels = _label_values(classes)
        self._numeric = classes.as_array() if classes.numeric else None
        prior = np.clip(np.asarray(self._info.prior, dtype=np.float64), 0.0, None)
        total = prior.sum()
        prior = prior / total if total > 0 else np.full(len(classes), 1.0 / len(classes))
        self._prior_probabilities = prior.astype(np.float32)
        with np.errstate(divide="ignore"):
            self._prior_logits = np.log(prior).astype(np.float32)
        self._prior_class = int(np.argmax(prior))
        # Output-name lists are built once: the batch-1 path does nothing it need not.
        self._want_class = [_CLASS_INDEX]
        self._want_probabilities = [_PROBABILITIES]
        self._want_logits = [_LOGITS]
        self._class_session: Any = None
        self._class_session_tried = False
        # Built at the first batch of raw integer ids the table answers.
        self._raw: RawCells | None = None
        self._raw_tried = False
        self._class_session_lock = threading.Lock()
        self._table = self._plan_table(class_table, int(class_table_max_bytes))
        if class_table == "eager" and self._table is not None:
            self._table.fill(
                self._table.cells, self._run_classes, min(self._chunk_size, _FILL_STEP)
            )
            if self._table.values is None:
                raise ModelFormatError(
                    f"{self._path}: the class-index table could not be filled (see the log)"
                )
            self._release_class_session()

    # -- properties --------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The model file."""
        from pathlib import Path

        return Path(self._path)

    @property
    def classes(self) -> Classes:
        """The label values in class-index order (the order of probability columns)."""
        return self._info.classes

    @property
    def n_rows(self) -> int:
        """Number of known rows."""
        return self._rows.size

    @property
    def n_cols(self) -> int:
        """Number of known columns."""
        return self._cols.size

    @property
    def row_ids(self) -> IdMap:
        """Raw row ids in index order."""
        return self._info.row_ids

    @property
    def col_ids(self) -> IdMap:
        """Raw column ids in index order."""
        return self._info.col_ids

    @property
    def metadata(self) -> ModelInfo:
        """The decoded model metadata (classes, ids, prior, metrics, precision ...)."""
        return self._info

    @property
    def raw_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` as stored."""
        return dict(self._raw_metadata)

    @property
    def providers(self) -> tuple[str, ...]:
        """Execution providers the session actually uses, in priority order."""
        return self._providers

    @property
    def unknown(self) -> str:
        """The unknown-id policy, ``"error"`` or ``"prior"``."""
        return self._unknown

    @property
    def chunk_size(self) -> int:
        """Pairs per onnxruntime call."""
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int) -> None:
        self._chunk_size = _check_chunk_size(value)

    @property
    def class_table(self) -> np.ndarray | None:
        """The complete class-index table, read-only ``[n_rows, n_cols]``, or None (not built
        yet, too large, or ``class_table="off"``)."""
        table = self._table
        values = table.values if table is not None else None
        return None if values is None else values.reshape(table.n_rows, table.n_cols)

    def __repr__(self) -> str:
        return (
            f"Predictor({self._path!r}, {self.n_rows} rows x {self.n_cols} columns, "
            f"classes {self.classes.to_list()}, providers {list(self._providers)})"
        )

    # -- predictions -------------------------------------------------------------------------

    def predict(
        self, rows: Any, cols: Any, *, index: bool = False, return_unknown: bool = False
    ) -> Any:
        """Predicted label values for (row, column) pairs.

        Parameters
        ----------
        rows, cols
            Raw ids (scalars or one-dimensional, equal lengths), or indices with ``index=True``.
        index
            Treat ``rows``/``cols`` as dense indices instead of raw ids.
        return_unknown
            Also return a ``bool`` mask of pairs answered with the prior (``unknown="prior"``).

        Returns
        -------
        numpy.ndarray or scalar
            Label values (int64, float64 or str; see the class notes), a scalar for a scalar
            pair; with ``return_unknown``, a ``(labels, unknown)`` tuple.

        Raises
        ------
        ValueError
            Bad input: wrong dimensions, different lengths, non-integer or NaN ids, indices
            out of range; the message names the position and value.
        UnknownIdError
            A raw id unknown to the model, with ``unknown="error"``.
        """
        if not return_unknown:
            found = self._scalar_index(rows, cols, index)
            if found is not None:
                table = self._table
                values = table.values if table is not None else None
                if values is not None:
                    return self._labels[values[found[0] * self._cols.size + found[1]]]
                pair = np.array((found,), dtype=np.int64)
                session = self._class_session or self._session
                return self._labels[session.run(self._want_class, {INPUT_NAME: pair})[0][0]]
        rows_arr, cols_arr, scalar = self._prepare(rows, cols)
        result, unknown = self._labels_of(rows_arr, cols_arr, index)
        return self._finish(result, unknown, scalar, return_unknown)

    def predict_proba(
        self, rows: Any, cols: Any, *, index: bool = False, return_unknown: bool = False
    ) -> Any:
        """Class probabilities, ``float32 [n, classes]`` (``[classes]`` for a scalar pair).

        Columns follow :attr:`classes`. Parameters, errors and ``return_unknown`` as in
        :meth:`predict`.
        """
        if not return_unknown:
            found = self._scalar_index(rows, cols, index)
            if found is not None:
                pair = np.array((found,), dtype=np.int64)
                return self._session.run(self._want_probabilities, {INPUT_NAME: pair})[0][0]
        return self._apply(
            rows, cols, index, self._want_probabilities, lambda outs: outs[0], return_unknown
        )

    def predict_logits(
        self, rows: Any, cols: Any, *, index: bool = False, return_unknown: bool = False
    ) -> Any:
        """Logits (pre-softmax scores), ``float32 [n, classes]``; as :meth:`predict_proba`."""
        if not return_unknown:
            found = self._scalar_index(rows, cols, index)
            if found is not None:
                pair = np.array((found,), dtype=np.int64)
                return self._session.run(self._want_logits, {INPUT_NAME: pair})[0][0]
        return self._apply(
            rows, cols, index, self._want_logits, lambda outs: outs[0], return_unknown
        )

    def expected(
        self, rows: Any, cols: Any, *, index: bool = False, return_unknown: bool = False
    ) -> Any:
        """Probability-weighted mean label, ``float64 [n]`` (numeric classes only).

        Raises
        ------
        ValueError
            When the classes are text, besides the errors of :meth:`predict`.
        """
        values = self._numeric_classes("expected values")
        return self._apply(
            rows,
            cols,
            index,
            self._want_probabilities,
            lambda outs: outs[0] @ values,
            return_unknown,
        )

    def lookup(self, rows: Any, cols: Any) -> tuple[np.ndarray, np.ndarray]:
        """Dense indices of raw ids, ``-1`` where an id is unknown (never raises for those).

        Map ids once with this, then call the prediction methods with ``index=True``.

        Returns
        -------
        row_index, col_index
            ``int64`` arrays (scalars for a scalar pair).

        Raises
        ------
        ValueError
            Malformed ids (wrong dimensions or lengths, NaN, non-integer numbers).
        """
        rows_arr, cols_arr, scalar = self._prepare(rows, cols)
        r = self._rows.lookup(rows_arr, 0)
        c = self._cols.lookup(cols_arr, 0)
        return (r[0], c[0]) if scalar else (r, c)

    def iter_predict(
        self,
        rows: Any,
        cols: Any,
        *,
        proba: bool = False,
        logits: bool = False,
        index: bool = False,
        chunk_size: int | None = None,
    ) -> Iterator[Prediction]:
        """Predictions chunk by chunk, for inputs whose results need not be held at once.

        Parameters
        ----------
        rows, cols
            As in :meth:`predict` (one-dimensional).
        proba, logits
            Also fill :attr:`Prediction.probabilities` / :attr:`Prediction.logits`.
        index
            Dense indices instead of raw ids.
        chunk_size
            Pairs per chunk; default :attr:`chunk_size`.

        Yields
        ------
        Prediction
            Labels (and what was asked for) and the unknown mask of each chunk, in order.
        """
        rows_arr, cols_arr, _ = self._prepare(rows, cols)
        step = self._chunk_size if chunk_size is None else _check_chunk_size(chunk_size)
        return self._predictions(rows_arr, cols_arr, self._names(proba, logits), index, step, 0)

    def stream(
        self,
        chunks: Iterable[tuple[Any, Any]],
        *,
        proba: bool = False,
        logits: bool = False,
        index: bool = False,
    ) -> Iterator[Prediction]:
        """Predictions for a stream of ``(rows, cols)`` chunks (e.g. :func:`mfx.data.iter_pairs`).

        Yields one :class:`Prediction` per :attr:`chunk_size` slice of each input chunk;
        :attr:`Prediction.start` and the positions in error messages count from the start of
        the stream.
        """
        names = self._names(proba, logits)
        offset = 0
        for rows, cols in chunks:
            rows_arr, cols_arr, _ = self._prepare(rows, cols)
            yield from self._predictions(rows_arr, cols_arr, names, index, self._chunk_size, offset)
            offset += rows_arr.shape[0]

    # -- recommendations ---------------------------------------------------------------------

    def recommend(
        self,
        row: Any,
        k: int = 10,
        *,
        exclude: Any = (),
        by: Any = "expected",
        index: bool = False,
    ) -> Recommendations:
        """The ``k`` best columns for one row, scored over every column.

        Parameters
        ----------
        row
            A raw row id (or an index with ``index=True``).
        k
            How many columns to return (fewer when fewer remain after ``exclude``).
        exclude
            Columns never to return (e.g. those the row has rated); unknown raw ids are
            ignored.
        by
            ``"expected"``: the expected label (numeric classes). A class value ``v``: the
            probability of a label ``>= v`` for numeric classes, of exactly ``v`` for text
            classes.
        index
            ``row``, ``exclude`` and the returned columns are indices instead of raw ids.

        Returns
        -------
        Recommendations
            ``cols`` (raw ids, or indices) and ``scores`` (float64), best first; ties go to the
            lower column index.
        """
        return self.recommend_many([row], k, exclude=[exclude], by=by, index=index)[0]

    def recommend_many(
        self,
        rows: Any,
        k: int = 10,
        *,
        exclude: Sequence[Any] | None = None,
        by: Any = "expected",
        index: bool = False,
    ) -> list[Recommendations]:
        """:meth:`recommend` for several rows, scored in batched onnxruntime runs.

        ``exclude`` is None or one collection of columns per row.
        """
        weights = self._score_weights(by)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        rows_arr = _as_vector(rows, "rows").reshape(-1)
        if exclude is not None and len(exclude) != rows_arr.shape[0]:
            raise ValueError(
                f"exclude needs one collection per row: {len(exclude)} for {rows_arr.shape[0]} rows"
            )
        if index:
            row_idx = self._rows.indices(rows_arr, 0)
            unknown = None
        else:
            row_idx = self._rows.lookup(rows_arr, 0)
            unknown = row_idx < 0
            if unknown.any():
                if self._unknown == "error":
                    raise self._unknown_error(rows_arr, row_idx, None, None, 0)
                row_idx = np.where(unknown, 0, row_idx)
            else:
                unknown = None
        scores = self._score_rows(row_idx, weights)
        if unknown is not None:
            scores[unknown] = float(self._prior_probabilities @ weights)
        result = []
        for i in range(rows_arr.shape[0]):
            keep = self._exclude_mask(exclude[i] if exclude is not None else None, index)
            order = _top_k(scores[i], int(k), keep)
            cols = order if index else self._cols.ids.ids[order]
            result.append(Recommendations(cols, scores[i][order]))
        return result

    # -- internals ---------------------------------------------------------------------------

    def _scalar_index(self, row: Any, col: Any, index: bool) -> tuple[int, int] | None:
        """The indices of a plain, valid scalar pair, or None for the general path."""
        if index:
            if (
                type(row) is int
                and type(col) is int
                and 0 <= row < self._rows.size
                and 0 <= col < self._cols.size
            ):
                return row, col
            return None
        rows, cols = self._rows, self._cols
        if type(row) is not (int if rows.kind == "int" else str):
            return None
        if type(col) is not (int if cols.kind == "int" else str):
            return None
        r = rows.scalar(row)
        c = cols.scalar(col)
        if r < 0 or c < 0:
            return None  # the general path applies the unknown-id policy
        return r, c

    def _small_pairs(self, rows: np.ndarray, cols: np.ndarray, index: bool) -> np.ndarray | None:
        """The input tensor of a few valid, known pairs, or None for the vectorised path."""
        if index and (rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu"):
            # An object array of ints would pass the loop below; the vectorised path refuses
            # every dtype that does not hold indices (and checks integral floats).
            return None
        row_list, col_list = rows.tolist(), cols.tolist()
        if index:
            n_rows, n_cols = self._rows.size, self._cols.size
            for r, c in zip(row_list, col_list):
                if (
                    type(r) is not int
                    or type(c) is not int
                    or not (0 <= r < n_rows and 0 <= c < n_cols)
                ):
                    return None
            return np.array(list(zip(row_list, col_list)), dtype=np.int64)
        row_axis, col_axis = self._rows, self._cols
        row_type = int if row_axis.kind == "int" else str
        col_type = int if col_axis.kind == "int" else str
        found = []
        for r, c in zip(row_list, col_list):
            if type(r) is not row_type or type(c) is not col_type:
                return None
            i, j = row_axis.scalar(r), col_axis.scalar(c)
            if i < 0 or j < 0:
                return None
            found.append((i, j))
        return np.array(found, dtype=np.int64)

    def _prepare(self, rows: Any, cols: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        rows_arr = _as_vector(rows, "rows")
        cols_arr = _as_vector(cols, "cols")
        scalar = rows_arr.ndim == 0 and cols_arr.ndim == 0
        if rows_arr.ndim == 0:
            rows_arr = np.broadcast_to(rows_arr, cols_arr.shape if cols_arr.ndim else (1,))
        if cols_arr.ndim == 0:
            cols_arr = np.broadcast_to(cols_arr, rows_arr.shape)
        if rows_arr.shape != cols_arr.shape:
            raise ValueError(
                f"rows and cols differ in length: {rows_arr.shape[0]} rows, "
                f"{cols_arr.shape[0]} cols"
            )
        return rows_arr, cols_arr, scalar

    def _names(self, proba: bool, logits: bool) -> list[str]:
        return [_CLASS_INDEX] + ([_PROBABILITIES] if proba else []) + ([_LOGITS] if logits else [])

    def _indices(
        self, rows: np.ndarray, cols: np.ndarray, index: bool, offset: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Validated indices of one chunk (unknown ids as 0) and the mask of unknown pairs."""
        if index:
            return self._rows.indices(rows, offset), self._cols.indices(cols, offset), None
        r = self._rows.lookup(rows, offset)
        c = self._cols.lookup(cols, offset)
        unknown = None
        if r.size and (r.min() < 0 or c.min() < 0):
            unknown = (r < 0) | (c < 0)
            if self._unknown == "error":
                raise self._unknown_error(rows, r, cols, c, offset)
            r = np.where(r < 0, 0, r)
            c = np.where(c < 0, 0, c)
        return r, c, unknown

    def _run_chunk(
        self, rows: np.ndarray, cols: np.ndarray, names: list[str], index: bool, offset: int
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Validate one chunk, run it, patch unknown pairs; returns outputs and unknown mask."""
        n = rows.shape[0]
        session = self._classes_session(n) if names == self._want_class else self._session
        if 0 < n <= _SMALL_BATCH:
            pairs = self._small_pairs(rows, cols, index)
            if pairs is not None:
                return session.run(names, {INPUT_NAME: pairs}), None
        r, c, unknown = self._indices(rows, cols, index, offset)
        if n == 0:
            return [self._empty(name) for name in names], None
        pairs = np.empty((n, 2), dtype=np.int64)
        pairs[:, 0] = r
        pairs[:, 1] = c
        outs = session.run(names, {INPUT_NAME: pairs})
        if unknown is not None:
            for name, out in zip(names, outs):
                out[unknown] = self._prior_of(name)
        return outs, unknown

    def _class_chunk(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        index: bool,
        offset: int,
        values: np.ndarray | None,
        buffers: _Buffers | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Class indices of one chunk, from the complete table ``values`` or else the graph.

        From the table, a chunk of at most ``buffers.size`` pairs is answered in ``buffers``
        (the returned array is a view of ``buffers.found``).
        """
        if values is None:
            outs, unknown = self._run_chunk(rows, cols, self._want_class, index, offset)
            return outs[0], unknown
        n = rows.shape[0]
        n_cols = self._cols.size
        if 0 < n <= _SMALL_BATCH:
            pairs = self._small_pairs(rows, cols, index)
            if pairs is not None:
                return values.take(pairs[:, 0] * n_cols + pairs[:, 1]), None
        if buffers is None or buffers.size < n:
            buffers = _Buffers(n, values.dtype)
        cells, spare, found = buffers.cells[:n], buffers.spare[:n], buffers.found[:n]
        # Raw integer ids: each axis maps an id straight to its share of the pair's position in
        # the guarded table (a clipped gather for sparse ids, a multiply for contiguous rows)
        # instead of look-up, range checks and a multiply. The clipped gather sends an unknown
        # or out-of-range id to a guard cell, whose value no class takes; if one is found, the
        # general path below names or patches the id.
        if not index and n:
            raw = self._raw_cells(rows, cols)
            if raw is not None and raw.cells(rows, cols, cells, spare):
                table = self._table
                table.guarded.take(cells, out=found, mode="clip")
                if int(np.maximum.reduce(found)) != table.guard:
                    return found, None
        # Indices, or raw ids the shortcut cannot take: validated (an error names the
        # position), unknown ids patched or reported by policy.
        r, c, unknown = self._indices(rows, cols, index, offset)
        np.multiply(r, n_cols, out=cells)
        np.add(cells, c, out=cells)
        # Every cell is in range here; the gather checks again anyway (mode "raise", about 5% of
        # the call), as onnxruntime's Gather would: a slip in validation must fail, not answer.
        values.take(cells, out=found)
        if unknown is not None:
            found[unknown] = self._prior_class
        return found, unknown

    def _raw_cells(self, rows: np.ndarray, cols: np.ndarray) -> RawCells | None:
        """The raw-id -> guarded position map, where it applies to ids of these dtypes."""
        for dtype in (rows.dtype, cols.dtype):
            if dtype.kind not in "iu" or (dtype.kind == "u" and dtype.itemsize == 8):
                return None  # (uint64 indices do not cast to a gather's int64 safely)
        raw = self._raw
        if raw is None and not self._raw_tried:
            rows_axis, cols_axis = self._rows, self._cols
            layout = None
            if rows_axis.kind == "int" and cols_axis.kind == "int":
                layout = cell_layout(rows_axis.ids.ids, cols_axis.ids.ids)
            if layout is not None:
                row_offsets = rows_axis.flat_offsets(layout.row_bias)
                col_offsets = cols_axis.flat_offsets(layout.col_bias)
                if row_offsets is not None and col_offsets is not None:
                    raw = self._raw = RawCells(layout, row_offsets, col_offsets, cols_axis.size)
            self._raw_tried = True
        return raw

    def _labels_of(
        self, rows: np.ndarray, cols: np.ndarray, index: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Label values of every pair and the unknown mask (None when there are none)."""
        n = rows.shape[0]
        labels = self._labels
        table = self._table
        values = table.values if table is not None else None
        step = self._chunk_size if values is None else min(self._chunk_size, _TABLE_STEP)
        result = np.empty(n, dtype=labels.dtype)
        unknown = None
        buffers = _Buffers(min(n, step), values.dtype) if values is not None else None
        # At least one (possibly empty) chunk, so an empty input is still validated.
        for start in range(0, n or 1, step):
            stop = min(n, start + step)
            found, part = self._class_chunk(
                rows[start:stop], cols[start:stop], index, start, values, buffers
            )
            # Table entries were range-checked when filled; graph outputs are checked here.
            labels.take(found, out=result[start:stop], mode="raise" if values is None else "clip")
            if part is not None:
                if unknown is None:
                    unknown = np.zeros(n, dtype=bool)
                unknown[start:stop] = part
        if values is None:
            self._grow_table(n)
        return result, unknown

    def _finish(
        self, result: np.ndarray, unknown: np.ndarray | None, scalar: bool, return_unknown: bool
    ) -> Any:
        if scalar:
            result = result[0]
        if not return_unknown:
            return result
        if unknown is None:
            unknown = np.zeros(len(result) if not scalar else 1, dtype=bool)
        return result, (unknown[0] if scalar else unknown)

    # -- the class-index table and the class_index-only session --------------------------------

    def _plan_table(self, choice: str, limit: int) -> ClassTable | None:
        if choice == "off":
            return None
        n_rows, n_cols, n_classes = self._rows.size, self._cols.size, len(self.classes)
        dtype = table_dtype(n_classes)
        size = None if dtype is None else n_rows * n_cols * dtype.itemsize
        if size is None or size > limit:
            if choice == "eager":
                what = (
                    f"would take {size:,} bytes, over class_table_max_bytes={limit:,}"
                    if size is not None
                    else f"cannot index {n_classes} classes"
                )
                raise ValueError(
                    f"class_table='eager': the {n_rows} x {n_cols} class-index table {what}"
                )
            return None
        return ClassTable(n_rows, n_cols, dtype, n_classes)

    def _grow_table(self, n: int) -> None:
        """In ``class_table="auto"``: after a batched call the graph answered, fill about as
        many table cells as the call had pairs."""
        table = self._table
        if table is None or n <= _SMALL_BATCH or not table.pending:
            return
        table.fill(max(n, _MIN_FILL), self._run_classes, min(self._chunk_size, _FILL_STEP))
        if table.values is not None:
            self._release_class_session()

    def _run_classes(self, pairs: np.ndarray) -> np.ndarray:
        session = self._classes_session(pairs.shape[0])
        return session.run(self._want_class, {INPUT_NAME: pairs})[0]

    def _classes_session(self, n: int) -> Any:
        """The session for class_index-only runs of ``n`` pairs."""
        session = self._class_session
        if session is not None:
            return session
        if n <= _SMALL_BATCH or self._class_session_tried:
            return self._session
        with self._class_session_lock:
            if not self._class_session_tried:
                self._class_session = _class_index_session(self._session)
                self._class_session_tried = True
            return self._class_session or self._session

    def _release_class_session(self) -> None:
        """Once the table answers, the reduced graph's copy of the weights is not needed."""
        with self._class_session_lock:
            self._class_session = None
            self._class_session_tried = True

    def _empty(self, name: str) -> np.ndarray:
        if name == _CLASS_INDEX:
            return np.zeros(0, dtype=np.int64)
        return np.zeros((0, len(self.classes)), dtype=np.float32)

    def _prior_of(self, name: str) -> Any:
        if name == _CLASS_INDEX:
            return self._prior_class
        return self._prior_probabilities if name == _PROBABILITIES else self._prior_logits

    def _apply(
        self,
        rows: Any,
        cols: Any,
        index: bool,
        names: list[str],
        finish: Callable[[list[np.ndarray]], np.ndarray],
        return_unknown: bool,
    ) -> Any:
        rows_arr, cols_arr, scalar = self._prepare(rows, cols)
        n = rows_arr.shape[0]
        step = self._chunk_size
        if n <= step:
            outs, unknown = self._run_chunk(rows_arr, cols_arr, names, index, 0)
            result = finish(outs)
        else:
            result = None
            unknown = None
            for start in range(0, n, step):
                stop = min(n, start + step)
                outs, part_unknown = self._run_chunk(
                    rows_arr[start:stop], cols_arr[start:stop], names, index, start
                )
                part = finish(outs)
                if result is None:
                    result = np.empty((n,) + part.shape[1:], dtype=part.dtype)
                result[start:stop] = part
                if part_unknown is not None:
                    if unknown is None:
                        unknown = np.zeros(n, dtype=bool)
                    unknown[start:stop] = part_unknown
        return self._finish(result, unknown, scalar, return_unknown)

    def _predictions(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        names: list[str],
        index: bool,
        step: int,
        offset: int,
    ) -> Iterator[Prediction]:
        n = rows.shape[0]
        classes_only = names == self._want_class
        table = self._table
        for start in range(0, n, step):
            stop = min(n, start + step)
            values = table.values if table is not None and classes_only else None
            if classes_only:
                class_index, unknown = self._class_chunk(
                    rows[start:stop], cols[start:stop], index, offset + start, values
                )
                class_index = class_index.astype(np.int64, copy=False)
                found = {}
            else:
                outs, unknown = self._run_chunk(
                    rows[start:stop], cols[start:stop], names, index, offset + start
                )
                found = dict(zip(names, outs))
                class_index = found[_CLASS_INDEX]
            yield Prediction(
                start=offset + start,
                unknown=unknown if unknown is not None else np.zeros(stop - start, dtype=bool),
                labels=self._labels[class_index],
                class_index=class_index,
                probabilities=found.get(_PROBABILITIES),
                logits=found.get(_LOGITS),
            )
            if classes_only and values is None:
                self._grow_table(stop - start)

    def _unknown_error(
        self,
        rows: np.ndarray,
        r: np.ndarray,
        cols: np.ndarray | None,
        c: np.ndarray | None,
        offset: int,
    ) -> UnknownIdError:
        bad = r < 0 if c is None else (r < 0) | (c < 0)
        positions = np.flatnonzero(bad)
        first = int(positions[0])
        if r[first] < 0 or cols is None:
            axis, value = "row", _plain(rows[first])
        else:
            axis, value = "column", _plain(cols[first])
        more = (
            f"; {positions.size} pairs in this chunk have unknown ids" if positions.size > 1 else ""
        )
        err = UnknownIdError(
            f"{axis} id {value!r} at position {offset + first} is not part of the training "
            f"data{more} (unknown='prior' answers such pairs with the training prior)"
        )
        err.axis = axis  # type: ignore[attr-defined]
        err.value = value  # type: ignore[attr-defined]
        err.position = offset + first  # type: ignore[attr-defined]
        return err

    def _numeric_classes(self, what: str) -> np.ndarray:
        if self._numeric is None:
            raise ValueError(
                f"{what} need numeric classes; this model's classes are {self.classes.to_list()}"
            )
        return self._numeric

    def _score_weights(self, by: Any) -> np.ndarray:
        """Per-class weights w so that a pair's score is ``probabilities @ w``."""
        classes = self.classes
        values = classes.values
        if isinstance(by, str) and by == "expected" and by not in values:
            if self._numeric is None:
                raise ValueError(
                    "by='expected' ranks by the expected label, which needs numeric classes; "
                    f"this model's classes are {classes.to_list()}: pass one of them, e.g. "
                    f"by={values[0]!r}, to rank by its probability"
                )
            return self._numeric
        if self._numeric is not None:
            try:
                if isinstance(by, (bool, np.bool_)):
                    raise ValueError
                threshold = float(by)
            except (TypeError, ValueError):
                threshold = None
            if threshold is None or threshold not in self._numeric:
                raise ValueError(
                    f"by={by!r}: pass 'expected' or one of the classes {classes.to_list()}"
                )
            return (self._numeric >= threshold).astype(np.float64)
        label = str(by)
        if label not in values:
            raise ValueError(f"by={by!r}: pass one of the classes {classes.to_list()}")
        weights = np.zeros(len(values), dtype=np.float64)
        weights[values.index(label)] = 1.0
        return weights

    def _score_rows(self, row_idx: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Scores ``[len(row_idx), n_cols]`` in runs of at most :attr:`chunk_size` pairs."""
        n = self._cols.size
        step = self._chunk_size
        rows_per_run = max(1, step // n)
        cols_per_run = min(n, step)
        scores = np.empty((row_idx.shape[0], n), dtype=np.float64)
        for start in range(0, row_idx.shape[0], rows_per_run):
            group = row_idx[start : start + rows_per_run]
            for first in range(0, n, cols_per_run):
                cols = np.arange(first, min(n, first + cols_per_run), dtype=np.int64)
                pairs = np.empty((group.shape[0] * cols.shape[0], 2), dtype=np.int64)
                pairs[:, 0] = np.repeat(group, cols.shape[0])
                pairs[:, 1] = np.tile(cols, group.shape[0])
                proba = self._session.run(self._want_probabilities, {INPUT_NAME: pairs})[0]
                block = (proba @ weights).reshape(group.shape[0], cols.shape[0])
                scores[start : start + group.shape[0], first : first + cols.shape[0]] = block
        return scores

    def _exclude_mask(self, exclude: Any, index: bool) -> np.ndarray | None:
        if exclude is None:
            return None
        if isinstance(exclude, (str, bytes)):
            exclude = [exclude]
        elif not isinstance(exclude, np.ndarray):
            exclude = list(exclude) if np.ndim(exclude) else [exclude]
        values = _as_vector(exclude, "exclude").reshape(-1)
        if values.size == 0:
            return None
        if index:
            found = self._cols.indices(values, 0)
        else:
            found = self._cols.lookup(values, 0)
            found = found[found >= 0]
        keep = np.ones(self._cols.size, dtype=bool)
        keep[found] = False
        return keep


def _class_index_session(session: Any) -> Any | None:
    """A session like ``session`` on its graph reduced to ``class_index``; None if not possible.

    onnxruntime keeps the bytes a session was created from (``_model_bytes``), which are the
    very bytes the loader checked; a session opened from a path (external data) has none.
    """
    model = getattr(session, "_model_bytes", None)
    if not isinstance(model, bytes) or len(model) > _PRUNE_MAX_BYTES:
        return None
    reduced_model = prune_outputs(model, [_CLASS_INDEX])
    if reduced_model is None:
        return None
    providers = session.get_providers()
    options = session.get_provider_options()
    try:
        reduced = ort.InferenceSession(
            reduced_model,
            session.get_session_options(),
            providers=providers,
            provider_options=[options.get(name, {}) for name in providers],
        )
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        import logging

        logging.getLogger(__name__).debug(
            "no class_index-only session (%s); using the full graph", exc
        )
        return None
    reduced.disable_fallback()
    if list(reduced.get_providers()) != list(providers):
        return None
    return reduced


def _check_chunk_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {value!r}")
    return int(value)
