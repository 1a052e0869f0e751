"""Predictions against the numpy reference: raw ids, indices, scalars, chunks, unknown ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.errors import UnknownIdError
from mfx.labels import Classes
from mfx.runtime import Prediction, Predictor

DATA = Path(__file__).resolve().parent.parent / "data"


def model_path(name: str) -> Path:
    return DATA / f"{name}.onnx"


def random_pairs(ref, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(len(ref.rows), size=n), rng.integers(len(ref.cols), size=n)


@pytest.mark.parametrize("name", ["int", "str", "stars"])
@pytest.mark.parametrize("n", [1, 2, 7, 500])
def test_predictions_match_numpy_reference(request, name, n):
    predictor = request.getfixturevalue(f"{name}_model")
    ref = request.getfixturevalue(f"{name}_ref")
    r, c = random_pairs(ref, n, seed=n)
    raw_rows, raw_cols = ref.rows[r], ref.cols[c]
    logits = predictor.predict_logits(raw_rows, raw_cols)
    np.testing.assert_allclose(logits, ref.logits(r, c), rtol=1e-6, atol=1e-6)
    proba = predictor.predict_proba(raw_rows, raw_cols)
    assert proba.dtype == np.float32 and proba.shape == (n, len(ref.classes))
    np.testing.assert_allclose(proba, ref.probabilities(r, c), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    labels = predictor.predict(raw_rows, raw_cols)
    expected_labels = predictor.classes.values_of(ref.class_index(r, c))
    np.testing.assert_array_equal(labels, expected_labels)
    # Same answers from dense indices.
    np.testing.assert_array_equal(predictor.predict(r, c, index=True), labels)
    np.testing.assert_array_equal(predictor.predict_proba(r, c, index=True), proba)


def test_classes_and_sizes(int_model, str_model, stars_model, int_ref):
    assert int_model.classes == Classes.from_list([0.5 * k for k in range(1, 11)])
    assert str_model.classes.to_list() == ["dislike", "like", "meh"]
    assert (int_model.n_rows, int_model.n_cols) == (len(int_ref.rows), len(int_ref.cols))
    assert stars_model.n_rows == 30 and stars_model.n_cols == 40
    assert int_model.metadata.folded and int_model.metadata.precision == "fp32"
    assert int_model.raw_metadata["mfx.format"] == "1"
    assert int_model.providers == ("CPUExecutionProvider",)
    assert np.array_equal(int_model.row_ids.ids, int_ref.rows)
    assert "tiny_int.onnx" in repr(int_model)


def test_label_dtypes(int_model, str_model, stars_model):
    assert int_model.predict([10], [3]).dtype == np.float64  # half stars
    assert stars_model.predict([0], [0]).dtype == np.int64  # integer classes
    assert str_model.predict(["bob"], ["film:1"]).dtype.kind == "U"


def test_scalar_pairs_give_scalars(int_model, str_model, int_ref):
    label = int_model.predict(10, 3)
    assert np.ndim(label) == 0
    assert label == int_model.predict([10], [3])[0]
    assert int_model.predict_proba(10, 3).shape == (10,)
    assert int_model.predict_logits(10, 3).shape == (10,)
    assert np.ndim(int_model.expected(10, 3)) == 0
    assert int_model.predict(0, 0, index=True) == int_model.predict(10, 3)
    assert str_model.predict("bob", "film:2") in ("dislike", "like", "meh")
    # numpy scalars take the general path and agree with the fast path
    assert int_model.predict(np.int64(20), np.int64(1029)) == int_model.predict(20, 1029)
    np.testing.assert_array_equal(
        int_model.predict_proba(np.int32(20), 1029), int_model.predict_proba(20, 1029)
    )


def test_scalar_broadcasts_against_a_vector(int_model, int_ref):
    cols = int_ref.cols
    np.testing.assert_array_equal(
        int_model.predict(10, cols), int_model.predict(np.full(cols.size, 10), cols)
    )


def test_ids_as_text_and_floats(int_model, str_model):
    # Integer ids given as text or integral floats (as a CSV reader may produce).
    np.testing.assert_array_equal(
        int_model.predict(["10", " 20"], ["3", "1029"]), int_model.predict([10, 20], [3, 1029])
    )
    np.testing.assert_array_equal(
        int_model.predict(np.array([10.0, 20.0]), [3, 1029]), int_model.predict([10, 20], [3, 1029])
    )
    assert int_model.predict(10, 5 * 10**12) == int_model.predict([10], [5 * 10**12])[0]


def test_lookup_maps_raw_ids_once(int_model, str_model):
    r, c = int_model.lookup([10, 11, 1000], ["3", 3, 5 * 10**12])
    assert r.tolist() == [0, -1, 6] and c.tolist() == [0, 0, 8]
    assert int_model.lookup(35, 42) == (2, 2)
    r, c = str_model.lookup(["erin", "zed"], ["show:3", "film:1"])
    assert r.tolist() == [4, -1] and c.tolist() == [5, 0]
    r, c = int_model.lookup([20, 71], [1029, 10**9])
    np.testing.assert_array_equal(
        int_model.predict(r, c, index=True), int_model.predict([20, 71], [1029, 10**9])
    )
    with pytest.raises(ValueError, match="row id nan at position 0"):
        int_model.lookup([np.nan], [3])


def test_expected_is_probability_weighted_label(int_model, int_ref):
    r, c = random_pairs(int_ref, 50)
    values = np.array([0.5 * k for k in range(1, 11)])
    want = int_ref.probabilities(r, c) @ values
    got = int_model.expected(int_ref.rows[r], int_ref.cols[c])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_expected_needs_numeric_classes(str_model):
    with pytest.raises(ValueError, match=r"expected values need numeric classes.*'dislike'"):
        str_model.expected("bob", "film:1")


def test_empty_input(int_model):
    assert int_model.predict([], []).shape == (0,)
    assert int_model.predict_proba([], []).shape == (0, 10)
    labels, unknown = int_model.predict([], [], return_unknown=True)
    assert labels.shape == unknown.shape == (0,)


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunked_equals_unchunked(stars_ref, chunk_size):
    whole = Predictor(model_path("tiny_stars"), providers="cpu")
    chunked = Predictor(model_path("tiny_stars"), providers="cpu", chunk_size=chunk_size)
    r, c = random_pairs(stars_ref, 301, seed=chunk_size)
    for method in ("predict", "predict_proba", "predict_logits", "expected"):
        np.testing.assert_array_equal(
            getattr(chunked, method)(r, c, index=True), getattr(whole, method)(r, c, index=True)
        )
    np.testing.assert_array_equal(chunked.predict(r, c), whole.predict(r, c))


def test_large_input_in_default_chunks(stars_model, stars_ref):
    r, c = random_pairs(stars_ref, 3 * stars_model.chunk_size + 17, seed=5)
    labels = stars_model.predict(r, c)
    np.testing.assert_array_equal(labels, np.array([1, 2, 3, 4, 5])[stars_ref.class_index(r, c)])


def test_chunk_size_setting(stars_model):
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        Predictor(model_path("tiny_stars"), chunk_size=0)
    predictor = Predictor(model_path("tiny_stars"), chunk_size=10)
    predictor.chunk_size = 4
    assert predictor.chunk_size == 4


def test_iter_predict_yields_chunks(stars_model, stars_ref):
    r, c = random_pairs(stars_ref, 25, seed=9)
    parts = list(stars_model.iter_predict(r, c, proba=True, logits=True, chunk_size=10))
    assert [(p.start, p.stop, len(p)) for p in parts] == [(0, 10, 10), (10, 20, 10), (20, 25, 5)]
    assert all(isinstance(p, Prediction) for p in parts)
    np.testing.assert_array_equal(
        np.concatenate([p.labels for p in parts]), stars_model.predict(r, c)
    )
    np.testing.assert_array_equal(
        np.concatenate([p.probabilities for p in parts]), stars_model.predict_proba(r, c)
    )
    np.testing.assert_array_equal(
        np.concatenate([p.logits for p in parts]), stars_model.predict_logits(r, c)
    )
    np.testing.assert_array_equal(
        np.concatenate([p.class_index for p in parts]), stars_ref.class_index(r, c)
    )
    assert not any(p.unknown.any() for p in parts)
    plain = next(iter(stars_model.iter_predict(r, c)))
    assert plain.probabilities is None and plain.logits is None


def test_stream_counts_positions_across_chunks(int_model):
    chunks = [([10, 20], [3, 3]), ([35], [42]), ([36, 999], [99, 3])]
    parts = list(int_model.stream(chunks[:2]))
    assert [p.start for p in parts] == [0, 2]
    with pytest.raises(UnknownIdError, match="row id 999 at position 4 "):
        list(int_model.stream(chunks))


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "cols", "message"),
    [
        ([0, -1], [0, 0], "row index -1 at position 1 is out of range 0..6"),
        ([0, 7], [0, 0], "row index 7 at position 1 is out of range 0..6"),
        ([0, 0, 0], [1, 2, 9], "column index 9 at position 2 is out of range 0..8"),
        ([0.0, 1.5], [0, 0], "row index 1.5 at position 1 is not an integer"),
        ([0, 0], [np.nan, 0], "column index nan at position 0 is not an integer"),
        (["a"], [0], "row indices must be integers, got dtype <U1"),
        ([True], [0], "row indices must be integers, got booleans"),
        (np.array([2**63], dtype=np.uint64), [0], "out of range 0..6"),
    ],
)
def test_bad_indices_name_position_and_value(int_model, rows, cols, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        int_model.predict(rows, cols, index=True)


def test_negative_index_is_refused_not_wrapped(int_model):
    # onnxruntime's Gather would answer -1 with the last row.
    with pytest.raises(ValueError, match="row index -1 at position 0"):
        int_model.predict(-1, 0, index=True)


@pytest.mark.parametrize(
    ("rows", "cols", "message"),
    [
        ([10, 20], [3, 3, 3], "rows and cols differ in length: 2 rows, 3 cols"),
        ([[10, 20]], [3], r"rows must be a scalar or one-dimensional, got shape \(1, 2\)"),
        ([10], np.zeros((2, 2), dtype=np.int64), r"cols must be .*got shape \(2, 2\)"),
        ([10, np.nan], [3, 3], "row id nan at position 1 is not an integer"),
        ([10], [3.5], "column id 3.5 at position 0 is not an integer"),
        ([True], [3], "row ids must be integers or strings, got booleans"),
        ([[10], [20, 30]], [3, 3], "rows must be a scalar or a one-dimensional sequence"),
    ],
)
def test_bad_raw_ids(int_model, rows, cols, message):
    with pytest.raises(ValueError, match=message):
        int_model.predict(rows, cols)


def test_position_counts_across_chunks():
    predictor = Predictor(model_path("tiny_int"), chunk_size=2)
    with pytest.raises(ValueError, match="row index 99 at position 5 "):
        predictor.predict([0, 1, 2, 3, 4, 99], [0] * 6, index=True)
    with pytest.raises(UnknownIdError, match="column id 4 at position 3 "):
        predictor.predict([10] * 5, [3, 3, 3, 4, 3])


def test_unknown_ids_raise_by_default(int_model, str_model):
    with pytest.raises(UnknownIdError, match="row id 11 at position 1 is not part of the training"):
        int_model.predict([10, 11], [3, 3])
    with pytest.raises(UnknownIdError, match="column id 'film:9' at position 0"):
        str_model.predict_proba("bob", "film:9")
    with pytest.raises(UnknownIdError, match="row id 'x1' at position 0"):
        int_model.predict("x1", 3)  # text that is not an integer is an unknown integer id
    with pytest.raises(UnknownIdError) as info:
        int_model.predict(10, 4)
    assert (info.value.axis, info.value.value, info.value.position) == ("column", 4, 0)
    # UnknownIdError is a KeyError too, and says its message unquoted
    assert isinstance(info.value, KeyError) and str(info.value).startswith("column id 4")
    with pytest.raises(UnknownIdError, match="row id 12345678901234567890123"):
        int_model.predict(12345678901234567890123, 3)


def test_unknown_prior_policy(int_ref):
    predictor = Predictor(model_path("tiny_int"), unknown="prior", chunk_size=3)
    prior = np.asarray(predictor.metadata.prior)
    prior = prior / prior.sum()
    rows = [10, 11, 20, 35, 10, 10, 36]
    cols = [3, 3, 1029, 42, 8, 99, 17]  # (11, *) and (*, 8) are unknown
    want_unknown = np.array([False, True, False, False, True, False, False])
    proba, unknown = predictor.predict_proba(rows, cols, return_unknown=True)
    np.testing.assert_array_equal(unknown, want_unknown)
    np.testing.assert_allclose(proba[unknown], np.tile(prior, (2, 1)), rtol=1e-6)
    known = predictor.predict_proba(np.array(rows)[~unknown], np.array(cols)[~unknown])
    np.testing.assert_array_equal(proba[~unknown], known)
    logits = predictor.predict_logits(rows, cols)
    np.testing.assert_allclose(logits[unknown], np.tile(np.log(prior), (2, 1)), rtol=1e-6)
    labels, unknown2 = predictor.predict(rows, cols, return_unknown=True)
    np.testing.assert_array_equal(unknown2, want_unknown)
    assert labels[1] == labels[4] == 0.5 * (int(np.argmax(prior)) + 1)
    np.testing.assert_allclose(
        predictor.expected(rows, cols)[unknown], prior @ (0.5 * np.arange(1, 11)), rtol=1e-6
    )
    label, flag = predictor.predict(11, 3, return_unknown=True)
    assert flag and label == labels[1]
    assert predictor.predict(11, 3) == label
    parts = list(predictor.iter_predict(rows, cols))
    np.testing.assert_array_equal(np.concatenate([p.unknown for p in parts]), want_unknown)
    # Indices are never "unknown": out of range stays an error.
    with pytest.raises(ValueError, match="out of range"):
        predictor.predict(99, 0, index=True)


def test_unknown_policy_is_checked():
    with pytest.raises(ValueError, match="unknown='drop': choose 'error' or 'prior'"):
        Predictor(model_path("tiny_int"), unknown="drop")
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        Predictor(model_path("tiny_int"), threads=0)


def test_outputs_are_not_shared_between_calls(int_model):
    first = int_model.predict_proba([10, 20], [3, 3])
    first[:] = -1.0
    second = int_model.predict_proba([10, 20], [3, 3])
    assert (second >= 0).all()


@pytest.fixture(scope="module")
def stars_resized() -> Predictor:
    """A Predictor of its own, so the test may change its chunk size."""
    return Predictor(model_path("tiny_stars"), providers="cpu")


@settings(max_examples=40, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 39)), max_size=80),
    chunk_size=st.integers(1, 100),
)
def test_any_pairs_any_chunk_size_match_reference(stars_resized, stars_ref, pairs, chunk_size):
    stars_resized.chunk_size = chunk_size
    r = np.array([p[0] for p in pairs], dtype=np.int64)
    c = np.array([p[1] for p in pairs], dtype=np.int64)
    labels = stars_resized.predict(r, c, index=True)
    np.testing.assert_array_equal(labels, np.arange(1, 6)[stars_ref.class_index(r, c)])
    np.testing.assert_allclose(
        stars_resized.predict_proba(r, c, index=True),
        stars_ref.probabilities(r, c).reshape(-1, 5),
        atol=1e-6,
    )
