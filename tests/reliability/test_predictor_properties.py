"""Property tests for Predictor input validation: never a wrong answer, never a crash.

Any rows/cols (Python scalars, lists, numpy arrays of any dtype and shape; known ids, unknown
ids, NaN, fractions, huge integers, text, bytes, booleans, None) either give exactly the numpy
reference's answer for ``tests/data/tiny_int.onnx`` (``P[row] + Q[col]`` from ``tiny_int.npz``)
or raise ``ValueError`` / ``UnknownIdError``. The oracle below states the documented meaning of
each input independently of the implementation; where two meanings are reasonable (a float in
an object array: the number, or its text) either answer is accepted, never a third.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_support import INT_MODEL, load_reference

from mfx.errors import UnknownIdError
from mfx.runtime import Predictor

REF = load_reference("tiny_int")
KNOWN_ROWS = REF.rows.tolist()
KNOWN_COLS = REF.cols.tolist()
CLASSES = np.asarray([float(c) for c in REF.classes])
INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")  # \d: any Unicode decimal digit, like int()

RAISE, UNKNOWN = "raise", "unknown"

DTYPES = [
    None, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble, np.complex128, np.bool_, np.str_,
    np.bytes_, object, "datetime64[s]", "timedelta64[s]",
]


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    return {
        policy: Predictor(INT_MODEL, providers="cpu", unknown=policy)
        for policy in ("error", "prior")
    }


def _values(known: list[int], size: int) -> st.SearchStrategy[Any]:
    ids = st.sampled_from(known)
    indices = st.integers(-2, size + 1)
    return st.one_of(
        ids, ids, ids, indices, indices,
        ids.map(float),
        ids.map(lambda v: v + 0.5),
        ids.map(str),
        ids.map(lambda v: f" +{v} "),
        ids.map(lambda v: str(v).encode()),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.text(max_size=4),
        st.binary(max_size=3),
        st.booleans(),
        st.none(),
    )


@st.composite
def _axis(draw, known: list[int], size: int, shape: tuple[int, ...] | None) -> Any:
    values = _values(known, size)
    form = draw(st.sampled_from(["scalar", "list", "array", "array"]))
    if form == "scalar" and shape in (None, ()):
        return draw(values)
    if shape is None:
        shape = draw(st.sampled_from([(), (0,), (1,), (2,), (5,), (2, 2), (3, 1)]))
    items = [draw(values) for _ in range(math.prod(shape))]
    if form in ("list", "scalar"):
        if not shape:
            return items[0]
        if len(shape) == 1:
            return items
        width = shape[1]
        return [items[k : k + width] for k in range(0, len(items), width)]  # nested lists
    dtype = draw(st.sampled_from(DTYPES))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.array(items, dtype=dtype).reshape(shape)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        assume(False)
    return arr


@st.composite
def pairs_inputs(draw):
    index = draw(st.booleans())
    shared = draw(st.sampled_from([None, (), (0,), (1,), (3,), (3,), (6,), (6,)]))
    rows = draw(_axis(KNOWN_ROWS, len(KNOWN_ROWS), shared))
    cols = draw(_axis(KNOWN_COLS, len(KNOWN_COLS), shared))
    return rows, cols, index


def _meanings(value: Any, kind: str, known: list[int], index: bool) -> set:
    """What one element may mean: {("id", position)}, {UNKNOWN} and/or {RAISE}."""
    size = len(known)

    def number(v: int) -> set:
        if index:
            return {("id", v)} if 0 <= v < size else {RAISE}
        return {("id", known.index(v))} if v in known else {UNKNOWN}

    def text(t: str) -> set:
        if index:
            return {RAISE}
        if INTEGER_TEXT.fullmatch(t):
            return number(int(t))
        return {UNKNOWN}

    if kind in "iu":
        return number(int(value))
    if kind == "f":
        v = float(value)
        if not math.isfinite(v) or v != math.floor(v):
            return {RAISE}
        return number(int(v))
    if kind == "U":
        return text(str(value))
    if kind == "S":
        try:
            return text(bytes(value).decode("ascii"))
        except UnicodeDecodeError:
            return {RAISE, UNKNOWN}
    if kind == "O":
        if index:
            return {RAISE}
        out = text(str(value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out |= _meanings(value, "i" if isinstance(value, int) else "f", known, index)
        if isinstance(value, bytes):
            out |= _meanings(value, "S", known, index)
        return out
    return {RAISE}  # booleans, complex, dates, durations, structured


def _expected(rows: Any, cols: Any, index: bool) -> tuple[list[list[set]], bool] | None:
    """Per pair, the set of acceptable meanings of its (row, col); None: the call must raise."""
    try:
        r = np.asarray(rows)
        c = np.asarray(cols)
    except ValueError:
        return None
    if r.ndim > 1 or c.ndim > 1:
        return None
    allowed = "iuf" if index else "iufUSO"
    if r.dtype.kind not in allowed or c.dtype.kind not in allowed:
        # A dtype that never holds ids: refusing it is right even for an empty array.
        return [[{RAISE}, {RAISE}]], False
    scalar = r.ndim == 0 and c.ndim == 0
    if r.ndim == 0:
        r = np.broadcast_to(r, c.shape if c.ndim else (1,))
    if c.ndim == 0:
        c = np.broadcast_to(c, r.shape)
    if r.shape != c.shape:
        return None
    pairs = []
    for rv, cv in zip(r.tolist() if r.dtype.kind != "S" else list(r), c.tolist()
                      if c.dtype.kind != "S" else list(c)):
        pairs.append([_meanings(rv, r.dtype.kind, KNOWN_ROWS, index),
                      _meanings(cv, c.dtype.kind, KNOWN_COLS, index)])
    return pairs, scalar


def _answers(row: set, col: set, policy: str) -> list[Any]:
    """The acceptable answers for one pair: ("pair", r, c), "prior" or RAISE."""
    out: list[Any] = []
    for a in row:
        for b in col:
            if RAISE in (a, b):
                out.append(RAISE)
            elif UNKNOWN in (a, b):
                out.append("prior" if policy == "prior" else RAISE)
            else:
                out.append(("pair", a[1], b[1]))
    return out


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=pairs_inputs(), policy=st.sampled_from(["error", "prior"]))
def test_any_input_predicts_correctly_or_raises(predictors, spec, policy):
    rows, cols, index = spec
    predictor = predictors[policy]
    expected = _expected(rows, cols, index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a stray RuntimeWarning is a bug too
            # ... except this known one, tracked by test_float_id_beyond_int64_is_unknown below.
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
            proba = predictor.predict_proba(rows, cols, index=index)
            labels = predictor.predict(rows, cols, index=index)
    except (ValueError, UnknownIdError):
        if expected is not None:
            pairs, _ = expected
            assert any(RAISE in _answers(r, c, policy) for r, c in pairs), (
                "refused an input whose every pair has an answer"
            )
        return
    assert expected is not None, f"answered an input that must be refused: {rows!r}, {cols!r}"
    pairs, scalar = expected
    assert (np.ndim(labels) == 0) == scalar and (np.ndim(proba) == 1) == scalar
    proba = np.asarray(proba, dtype=np.float64).reshape(len(pairs), len(CLASSES))
    labels = np.asarray(labels, dtype=np.float64).reshape(len(pairs))
    prior = predictor._prior_probabilities.astype(np.float64)
    for k, (r, c) in enumerate(pairs):
        choices = [a for a in _answers(r, c, policy) if a != RAISE]
        assert choices, f"pair {k} answered although it must be refused"
        matched = False
        for choice in choices:
            want = prior if choice == "prior" else REF.probabilities(choice[1], choice[2])
            label = CLASSES[int(np.argmax(prior))] if choice == "prior" else CLASSES[
                int(REF.class_index(choice[1], choice[2]))
            ]
            if np.allclose(proba[k], want, atol=1e-5) and labels[k] == label:
                matched = True
        assert matched, f"pair {k}: {proba[k]} / {labels[k]} is none of {choices}"


def test_float_id_beyond_int64_is_unknown(predictors):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnknownIdError):
            predictors["error"].predict([10.0], [2.0**63])
