"""Top-k recommendations against a brute-force numpy ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfx.errors import UnknownIdError
from mfx.runtime import Predictor, Recommendations
from mfx.runtime.predictor import _top_k

DATA = Path(__file__).resolve().parent.parent / "data"


def brute_force(ref, row: int, weights: np.ndarray, k: int, exclude=()) -> list[int]:
    scores = ref.probabilities(np.full(len(ref.cols), row), np.arange(len(ref.cols))) @ weights
    order = [int(j) for j in np.argsort(-scores, kind="stable") if int(j) not in set(exclude)]
    return order[:k]


def test_recommend_by_expected_label(stars_model, stars_ref):
    values = np.arange(1.0, 6.0)
    for row in (0, 7, 29):
        found = stars_model.recommend(row, k=5)
        assert isinstance(found, Recommendations)
        assert found.cols.tolist() == brute_force(stars_ref, row, values, 5)
        assert np.all(np.diff(found.scores) <= 0)
        np.testing.assert_allclose(
            found.scores, stars_model.expected(np.full(5, row), found.cols), rtol=1e-6
        )
        cols, scores = found  # unpacks like a tuple
        assert cols.shape == scores.shape == (5,)


def test_recommend_raw_ids_and_exclude(int_model, int_ref):
    values = 0.5 * np.arange(1, 11)
    full = int_model.recommend(20, k=9)
    assert full.cols.tolist() == int_ref.cols[brute_force(int_ref, 1, values, 9)].tolist()
    best = full.cols[:2].tolist()
    # Excluded columns never appear; unknown excluded ids are ignored.
    found = int_model.recommend(20, k=3, exclude=best + [123456])
    assert found.cols.tolist() == full.cols[2:5].tolist()
    assert int_model.recommend(20, k=3, exclude=best[0]).cols.tolist() == full.cols[1:4].tolist()
    # k larger than what remains: all of it.
    assert len(int_model.recommend(20, k=50, exclude=best)) == 2  # a NamedTuple of 2 arrays
    assert int_model.recommend(20, k=50, exclude=best).cols.size == 7


def test_recommend_by_label(int_model, int_ref, str_model, str_ref):
    values = 0.5 * np.arange(1, 11)
    at_least_4 = (values >= 4.0).astype(float)
    found = int_model.recommend(35, k=4, by=4.0)
    assert found.cols.tolist() == int_ref.cols[brute_force(int_ref, 2, at_least_4, 4)].tolist()
    # numeric classes accept the class as text (as the CLI passes it)
    assert int_model.recommend(35, k=4, by="4").cols.tolist() == found.cols.tolist()
    like = np.array([0.0, 1.0, 0.0])
    found = str_model.recommend("carol", k=3, by="like")
    assert found.cols.tolist() == str_ref.cols[brute_force(str_ref, 2, like, 3)].tolist()
    np.testing.assert_allclose(
        found.scores, str_model.predict_proba(["carol"] * 3, found.cols)[:, 1], rtol=1e-6
    )


def test_recommend_with_indices(stars_model, stars_ref):
    found = stars_model.recommend(3, k=4, exclude=[0, 1], index=True)
    assert found.cols.tolist() == brute_force(stars_ref, 3, np.arange(1.0, 6.0), 4, (0, 1))
    with pytest.raises(ValueError, match="column index 40 at position 0 is out of range"):
        stars_model.recommend(3, exclude=[40], index=True)
    with pytest.raises(ValueError, match="row index 30 at position 0 is out of range"):
        stars_model.recommend(30, index=True)


def test_recommend_errors(int_model, str_model):
    with pytest.raises(UnknownIdError, match="row id 11 at position 0"):
        int_model.recommend(11)
    with pytest.raises(ValueError, match=r"by='expected' .* needs numeric classes"):
        str_model.recommend("bob")
    with pytest.raises(ValueError, match=r"by='love': pass one of the classes"):
        str_model.recommend("bob", by="love")
    with pytest.raises(ValueError, match=r"by=4.2: pass 'expected' or one of the classes"):
        int_model.recommend(10, by=4.2)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        int_model.recommend(10, k=0)


def test_recommend_unknown_row_with_prior():
    predictor = Predictor(DATA / "tiny_int.onnx", unknown="prior")
    found = predictor.recommend(11, k=3)
    # Every column scores the prior's expected label; ties go to the lower index.
    assert found.cols.tolist() == predictor.col_ids.ids[:3].tolist()
    assert np.ptp(found.scores) == 0


@pytest.mark.parametrize("chunk_size", [1, 7, 40, 100, 65_536])
def test_recommend_many_matches_recommend(stars_ref, chunk_size):
    predictor = Predictor(DATA / "tiny_stars.onnx", chunk_size=chunk_size)
    rows = [0, 5, 5, 29, 12]
    exclude = [[1, 2], [], [3], None, range(30)]
    many = predictor.recommend_many(rows, k=6, exclude=exclude)
    assert len(many) == len(rows)
    for row, ex, found in zip(rows, exclude, many):
        one = predictor.recommend(row, k=6, exclude=ex if ex is not None else ())
        assert found.cols.tolist() == one.cols.tolist()
        np.testing.assert_allclose(found.scores, one.scores)
    with pytest.raises(ValueError, match="exclude needs one collection per row: 1 for 5 rows"):
        predictor.recommend_many(rows, exclude=[[1]])


def test_top_k_ties_go_to_lower_index():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0, 0.0])
    assert _top_k(scores, 2, None).tolist() == [1, 2]
    assert _top_k(scores, 4, None).tolist() == [1, 2, 4, 3]
    assert _top_k(scores, 10, None).tolist() == [1, 2, 4, 3, 0, 5]
    keep = np.array([True, False, True, True, True, True])
    assert _top_k(scores, 2, keep).tolist() == [2, 4]
