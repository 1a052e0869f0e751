from __future__ import annotations

import numpy as np
import pytest

from mfx.errors import UnknownIdError
from mfx.ids import IdMap


def test_fit_integer_ids_sorted_with_inverse():
    raw = np.array([30, 10, 20, 10, 30])
    ids, index = IdMap.fit(raw)
    assert ids.to_list() == [10, 20, 30]
    np.testing.assert_array_equal(index, [2, 0, 1, 0, 2])
    np.testing.assert_array_equal(ids.ids[index], raw)


def test_fit_sparse_integer_ids_uses_sort_path():
    raw = np.array([10**15, -5, 7, 10**15])
    ids, index = IdMap.fit(raw)
    assert ids.to_list() == [-5, 7, 10**15]
    np.testing.assert_array_equal(index, [2, 0, 1, 2])


def test_fit_string_ids():
    raw = np.array(["bob", "alice", "bob", "carol"], dtype=object)
    ids, index = IdMap.fit(raw)
    assert ids.kind == "str"
    assert ids.to_list() == ["alice", "bob", "carol"]
    np.testing.assert_array_equal(index, [1, 0, 1, 2])


def test_lookup_marks_unknown_and_index_names_them():
    ids = IdMap(np.array([3, 5, 9]))
    np.testing.assert_array_equal(ids.lookup([9, 4, 3, 100, -1]), [2, -1, 0, -1, -1])
    with pytest.raises(
        UnknownIdError, match=r"2 row id\(s\) not part of the training data: 4, 100"
    ):
        ids.index([3, 4, 100])


def test_lookup_sparse_ids_by_searchsorted():
    ids = IdMap(np.array([1, 10**12]))
    assert ids._dense is None
    np.testing.assert_array_equal(ids.lookup([10**12, 2]), [1, -1])


def test_lookup_string_map_accepts_numbers_as_text():
    ids = IdMap(np.array(["1", "b"]), "column")
    np.testing.assert_array_equal(ids.lookup([1, "b", "z"]), [0, 1, -1])


def test_non_integral_float_id_is_value_error():
    ids = IdMap(np.array([1, 2]))
    with pytest.raises(ValueError, match="position 1 is 2.5"):
        ids.lookup(np.array([1.0, 2.5]))


def test_vectorised_on_millions():
    raw = np.random.default_rng(0).integers(0, 200_000, 2_000_000)
    ids, index = IdMap.fit(raw)
    np.testing.assert_array_equal(ids.ids[index], raw)
    np.testing.assert_array_equal(ids.lookup(raw), index)


@pytest.mark.parametrize("n", [1, 6, 7, 8, 50])
def test_dense_fit_in_blocks_matches_unique(monkeypatch, n):
    # Blocks of 7 ids: the last block is partial or full, and a repeat may straddle blocks.
    import mfx.ids

    monkeypatch.setattr(mfx.ids, "_FIT_BLOCK", 7)
    raw = np.random.default_rng(n).integers(-5, 30, n)
    ids, inverse = np.unique(raw, return_inverse=True)
    fitted, index = IdMap.fit(raw)
    assert fitted.ids.tolist() == ids.tolist()
    assert index.tolist() == inverse.reshape(-1).tolist()
