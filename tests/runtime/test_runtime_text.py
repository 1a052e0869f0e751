"""Text-id look-ups through the vectorised hash table agree with a sorted search."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mfx.runtime._text as text_module
from mfx.runtime._text import TextIndex


def reference(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    position = np.searchsorted(ids, values)
    inside = np.minimum(position, ids.size - 1)
    return np.where((position < ids.size) & (ids[inside] == values), position, -1)


def test_known_unknown_and_odd_queries():
    rng = np.random.default_rng(0)
    ids = np.array(sorted({f"movie{k}" for k in rng.choice(200_000, 5000, replace=False)}))
    index = TextIndex(ids)
    queries = np.concatenate(
        [
            ids[rng.integers(0, ids.size, 30_000)],
            ["", "movie", "nope", "movie1234567890", ids[0] + "x", ids[-1][:-1], "Movie1"],
        ]
    )
    np.testing.assert_array_equal(index.lookup(queries), reference(ids, queries))
    # Wider and narrower query dtypes than the ids' own.
    wide = queries.astype("<U40")
    np.testing.assert_array_equal(index.lookup(wide), reference(ids, queries))
    narrow = np.array(["movie1", "m", ""], dtype="<U6")
    np.testing.assert_array_equal(index.lookup(narrow), reference(ids, narrow))
    assert index.lookup(np.array([], dtype="<U3")).shape == (0,)


def test_every_hash_colliding_still_finds_the_right_ids(monkeypatch):
    ids = np.array(sorted(["a", "b", "bb", "c", "ccc", "d", "été", "日本"]))
    monkeypatch.setattr(text_module, "_hash", lambda text: np.zeros(text.shape[0], np.uint64))
    index = TextIndex(ids)
    queries = np.array(["ccc", "a", "zz", "日本", "été", "b", "", "bb", "d"])
    np.testing.assert_array_equal(index.lookup(queries), reference(ids, queries))


def test_long_ids_beyond_the_hashed_words():
    base = "x" * 300
    ids = np.array(sorted([base + "a", base + "b", base + "c"]))
    index = TextIndex(ids)
    queries = np.array([base + "b", base + "d", base, base + "a"])
    np.testing.assert_array_equal(index.lookup(queries), reference(ids, queries))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(max_size=12), min_size=1, max_size=60, unique=True),
    st.lists(st.text(max_size=14), max_size=40),
)
def test_matches_sorted_search(ids, extra):
    ids_arr = np.array(sorted(ids))
    # numpy cannot hold trailing NUL characters in a <U array; such ids are not mfx ids.
    if any(s != str(v) for s, v in zip(sorted(ids), ids_arr)):
        return
    queries = np.array(list(ids_arr) + extra) if extra or ids else ids_arr
    index = TextIndex(ids_arr)
    np.testing.assert_array_equal(index.lookup(queries), reference(ids_arr, queries))


@pytest.mark.parametrize("n", [1, 2, 17, 10_000])
def test_sizes(n):
    ids = np.array(sorted(f"id{k:06d}" for k in range(n)))
    index = TextIndex(ids)
    np.testing.assert_array_equal(index.lookup(ids[::-1]), np.arange(n)[::-1])
