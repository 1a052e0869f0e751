"""The readers: every supported layout gives the same triples."""

from __future__ import annotations

import numpy as np
import pytest

from mfx.data import load_ratings, read_ratings, sniff
from mfx.errors import DataError

TRIPLES = [(1, 10, 4.0), (1, 20, 3.5), (2, 10, 5.0), (3, 30, 0.5)]


def _as_tuples(raw):
    return [(r, c, float(v)) for r, c, v in zip(raw.rows.tolist(), raw.cols.tolist(), raw.labels)]


@pytest.mark.parametrize(
    "name, text",
    [
        ("plain.csv", "1,10,4.0\n1,20,3.5\n2,10,5.0\n3,30,0.5\n"),
        ("header.csv", "user,item,rating\n1,10,4.0\n1,20,3.5\n2,10,5.0\n3,30,0.5\n"),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n"
            "2,10,5.0,964982224\n3,30,0.5,964983815\n",
        ),
        (
            "u.data",
            "1\t10\t4.0\t881250949\n1\t20\t3.5\t891717742\n2\t10\t5\t878887116\n3\t30\t0.5\t1\n",
        ),
        (
            "ratings.dat",
            "1::10::4.0::978300760\n1::20::3.5::978302109\n2::10::5::1\n3::30::0.5::2\n",
        ),
        ("spaces.txt", "1 10 4.0\n1  20 3.5\n2 10 5.0\n3 30 0.5\n"),
        (
            "crlf_bom.csv",
            "\ufeffuser,item,rating\r\n1,10,4.0\r\n\r\n1,20,3.5\r\n2,10,5.0\r\n3,30,0.5\r\n",
        ),
        ("quoted.csv", '"user","item","rating"\n"1","10","4.0"\n1,20,3.5\n2,10,5.0\n3,30,0.5\n'),
    ],
)
def test_triples_layouts(write, name, text):
    raw = read_ratings(write(name, text))
    assert _as_tuples(raw) == TRIPLES


def test_explicit_format_overrides_detection(write):
    path = write("data.txt", "1\t10\t4\n2\t20\t5\n")
    assert sniff(path, "tsv").sep == "\t"
    raw = read_ratings(path, "udata")
    assert raw.rows.tolist() == [1, 2]


def test_string_ids_and_labels(write):
    path = write("likes.csv", "alice,matrix,like\nbob,matrix,dislike\nalice,up,dislike\n")
    data = load_ratings(path)
    assert data.row_ids.to_list() == ["alice", "bob"]
    assert data.col_ids.to_list() == ["matrix", "up"]
    assert data.classes.to_list() == ["dislike", "like"]
    np.testing.assert_array_equal(data.labels, [1, 0, 0])


def test_text_matrix_with_missing_cells(write):
    path = write("m.csv", "1,2,,4\n,3,1,2\n5,,1,1\n")
    raw = read_ratings(path)
    assert raw.layout.kind == "matrix"
    assert len(raw) == 9
    data = load_ratings(path)
    assert data.n_rows == 3 and data.n_cols == 4
    assert data.classes.to_list() == [1, 2, 3, 4, 5]


def test_npy_matrix_with_nan(tmp_path):
    matrix = np.array([[1.0, np.nan], [0.0, 5.0]])
    np.save(tmp_path / "m.npy", matrix)
    raw = read_ratings(tmp_path / "m.npy")
    assert _as_tuples(raw) == [(0, 0, 1.0), (1, 0, 0.0), (1, 1, 5.0)]


def test_npy_with_objects_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a numeric .npy matrix"):
        read_ratings(tmp_path / "o.npy")


def test_explicit_classes_keep_absent_class(write):
    data = load_ratings(write("r.csv", "1,1,1\n1,2,3\n"), classes=[0, 1, 2, 3, 4, 5])
    assert len(data.classes) == 6
    np.testing.assert_array_equal(data.class_counts(), [0, 1, 0, 1, 0, 0])


def test_test_data_mapped_with_training_maps(write):
    train = load_ratings(write("train.csv", "1,10,1\n2,20,2\n"))
    test_raw = read_ratings(write("test.csv", "2,10,1\n9,10,2\n"))
    with pytest.raises(
        DataError, match=r"1 rating\(s\) have a row or column id not in the training"
    ):
        train.like(test_raw)
    test = train.like(test_raw, unknown="drop")
    assert len(test) == 1 and test.extra["unknown"] == 1


def test_split_is_deterministic_and_disjoint():
    from mfx.data import Ratings
    from mfx.synthetic import planted_ratings

    data = Ratings.from_raw(planted_ratings()[0])
    a_train, a_valid = data.split(0.1, seed=3)
    b_train, b_valid = data.split(0.1, seed=3)
    np.testing.assert_array_equal(a_valid.rows, b_valid.rows)
    assert len(a_train) + len(a_valid) == len(data)


def test_twenty_thousand_lines_read_vectorised(write):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 500, 20_000)
    lines = "\n".join(f"{r},{c},{v}" for r, c, v in zip(rows, rows * 7 % 300, rows % 5))
    data = load_ratings(write("big.csv", lines + "\n"))
    assert len(data) == 20_000
    np.testing.assert_array_equal(data.row_ids.ids[data.rows], rows)
