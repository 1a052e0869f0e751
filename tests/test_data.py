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


# The fast paths: each must give exactly what the general path gives.


def _general_classes(monkeypatch, labels, explicit=None):
    import mfx.labels

    with monkeypatch.context() as patch:
        patch.setattr(mfx.labels, "_half_steps", lambda labels: None)
        return _classes_or_error(labels, explicit)


def _classes_or_error(labels, explicit=None):
    from mfx.labels import Classes

    try:
        classes, index = Classes.fit(labels, explicit)
    except DataError as exc:
        return str(exc), getattr(exc, "position", None)
    return classes.to_list(), index.tolist(), index.dtype


@pytest.mark.parametrize(
    "labels",
    [
        np.array([4.0, 0.5, 5.0, 4.0, 3.5, 0.5, 5.0, 1.0] * 5),  # half stars, some absent
        np.arange(1, 11) * 0.5,  # every half star: the step is the class index
        np.array([3, 1, 2, 5, 1, 3] * 4),  # integer labels
        np.array([-1.5, 2.0, -1.5, 0.0, -0.0]),  # negative, and both zeros
        np.array([1.0, 2.0, 1.0], dtype=np.float32),
        np.array([0.1, 0.2, 0.1]),  # off the grid of halves: the general path
        np.array([1.0, np.nan, 2.0]),
        np.array([2.0, 2.0]),  # one class: refused either way
    ],
)
@pytest.mark.parametrize(
    "explicit", [None, [0, 1, 2, 3, 4, 5], [5, 4.5, 4, 3.5, 1, 0.5], ["a", "b"]]
)
def test_fast_label_mapping_matches_the_general_one(monkeypatch, labels, explicit):
    import mfx.labels

    monkeypatch.setattr(mfx.labels, "_BLOCK", 7)  # several blocks even for small arrays
    assert _classes_or_error(labels, explicit) == _general_classes(monkeypatch, labels, explicit)


def test_stars_and_small_integers_take_the_counting_table():
    from mfx.labels import _half_steps

    steps, base, span = _half_steps(np.array([4.0, 0.5, 5.0, 3.5]))
    assert (steps.tolist(), base, span) == ([7, 0, 9, 6], 1, 10)
    assert _half_steps(np.array([3, 1, 2])) is not None
    assert _half_steps(np.array([0.1, 0.2])) is None
    assert _half_steps(np.array([1.0, np.inf])) is None
    assert _half_steps(np.array(["1", "2"])) is None


def test_fast_label_mapping_names_the_first_label_outside_the_classes(monkeypatch):
    import mfx.labels

    monkeypatch.setattr(mfx.labels, "_BLOCK", 4)
    labels = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 7.0, 2.5, 9.0])
    got = _classes_or_error(labels, [1, 2])
    assert got == ("label 7 is not one of the classes [1, 2]", 6)
    assert got == _general_classes(monkeypatch, labels, [1, 2])


def _read_whole(monkeypatch, path):
    import mfx.data

    with monkeypatch.context() as patch:
        patch.setattr(mfx.data, "_read_plain_numbers", lambda layout, fh: None)
        return _read_or_error(path)


def _read_or_error(path):
    try:
        raw = read_ratings(path)
    except DataError as exc:
        return str(exc)
    return [(a.tolist(), a.dtype) for a in (raw.rows, raw.cols, raw.labels)]


@pytest.mark.parametrize(
    "name, lines, piecewise",
    [
        # MovieLens ratings.csv: header, timestamps; labels integral in the first pieces only.
        (
            "ratings.csv",
            ["userId,movieId,rating,timestamp"]
            + [f"{k % 7 + 1},{k * 31 % 97},{k % 5 + 1},9643{k:05d}" for k in range(12)]
            + [f"{k},{k},{k % 10 / 2 + 0.5},1" for k in range(20)],
            True,
        ),
        ("ratings.dat", [f"{k}::{k * 3}::{k % 5 + 1}::978300760" for k in range(25)], True),
        ("u.data", [f"{k}\t{k + 1}\t{k % 5 + 1}\t881250949" for k in range(25)], True),
        # The first lines are long, so the room they suggest is too small: the arrays grow.
        (
            "grow.csv",
            [f"{10**17 + k},{10**17 + k},5.0" for k in range(4)]
            + [f"{k},{k},1" for k in range(60)],
            True,
        ),
        # A text id, a short line, an empty label, a float id, one field too many after a
        # few clean pieces: the whole read takes over and reports them as it always has.
        ("text_id.csv", [f"{k},{k},1" for k in range(14)] + ["abc,3,1"], False),
        ("short.csv", [f"{k},{k},1,978300760" for k in range(14)] + ["7,7,1"], False),
        ("empty_label.csv", [f"{k},{k},1" for k in range(14)] + ["7,7,"], False),
        ("float_id.csv", [f"{k},{k},1" for k in range(14)] + ["7.5,7,1"], False),
        ("long.csv", [f"{k},{k},1" for k in range(14)] + ["7,7,1,1"], False),
    ],
)
def test_piecewise_read_matches_the_whole_read(monkeypatch, write, name, lines, piecewise):
    import mfx.data

    path = write(name, "\n".join(lines) + "\n")
    monkeypatch.setattr(mfx.data, "_PIECE_LINES", 3)
    with open(path, "rb") as fh:
        assert (mfx.data._read_plain_numbers(sniff(path), fh) is not None) == piecewise
    assert _read_or_error(path) == _read_whole(monkeypatch, path)


def test_over_long_line_deep_in_a_file_is_named(write):
    from mfx.data import _MAX_LINE_BYTES

    lines = "10,3,1\n" * 300_000  # 2 MiB before it, so the scan has crossed block edges
    path = write("long.csv", lines + "7" * (_MAX_LINE_BYTES + 1) + ",3,1\n10,3,1\n")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert (
        str(info.value)
        == f"{path}: line 300001: line is longer than 1 MiB; this is not a ratings file"
    )
    # A line of exactly the limit is still a line (here a very long id, refused as such).
    path = write("limit.csv", "10,3,1\r\n" + "7" * (_MAX_LINE_BYTES - 4) + ",3,1\r\n")
    with pytest.raises(DataError, match="line 2: row id is 1,048,572 characters long"):
        load_ratings(path)


def test_utf8_checked_across_block_edges(write):
    from mfx.data import _MAX_LINE_BYTES

    # An "é" (two bytes) cut by the edge of the first block is fine ...
    head = "user,item,rating\n"
    filler = "a,b,1\n" * ((_MAX_LINE_BYTES - len(head)) // 6)
    pad = _MAX_LINE_BYTES - len(head) - len(filler) - 1
    text = head + filler + "x" * pad + "é,b,2\nz,b,1\n"
    assert text.encode().index("é".encode()) == _MAX_LINE_BYTES - 1
    raw = read_ratings(write("cut.csv", text))
    assert raw.rows[-2] == "x" * pad + "é"
    # ... a byte that is not UTF-8 deep in the file, or a character cut by the file's end, is not.
    data = text.encode() + b"caf\xe9,b,1\n"
    path = write("latin1.csv", data)
    with pytest.raises(DataError, match=r"line \d+: not UTF-8 text") as info:
        read_ratings(path)
    assert info.value.line == data.count(b"\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_ratings(write("cut_end.csv", text.encode() + b"q,b,1\n\xc3"))
