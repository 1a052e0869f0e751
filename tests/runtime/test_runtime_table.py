"""The class-index table and the class_index-only graph give exactly the graph's answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mfx.errors import UnknownIdError
from mfx.runtime import CLASS_TABLE_MAX_BYTES, Predictor
from mfx.runtime._table import FlatOffsets

DATA = Path(__file__).resolve().parent.parent / "data"
NAMES = ["tiny_int", "tiny_str", "tiny_stars"]


def model_path(name: str) -> Path:
    return DATA / f"{name}.onnx"


def graph_classes(name: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """class_index straight from a bare onnxruntime session on the file."""
    session = ort.InferenceSession(str(model_path(name)), providers=["CPUExecutionProvider"])
    pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    return session.run(["class_index"], {"pairs": pairs})[0]


def all_pairs(n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(n_rows), n_cols), np.tile(np.arange(n_cols), n_rows)


@pytest.mark.parametrize("name", NAMES)
def test_eager_table_holds_every_graph_answer(name):
    predictor = Predictor(model_path(name), class_table="eager")
    table = predictor.class_table
    assert table is not None and table.shape == (predictor.n_rows, predictor.n_cols)
    assert table.dtype == np.uint8 and not table.flags.writeable
    rows, cols = all_pairs(predictor.n_rows, predictor.n_cols)
    np.testing.assert_array_equal(table.reshape(-1), graph_classes(name, rows, cols))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 5, 33, 1000, 40_000, 70_000])
def test_table_and_graph_predictions_are_identical(name, n):
    table = Predictor(model_path(name), class_table="eager")
    graph = Predictor(model_path(name), class_table="off")
    rng = np.random.default_rng(n)
    r, c = rng.integers(table.n_rows, size=n), rng.integers(table.n_cols, size=n)
    raw_rows, raw_cols = table.row_ids.ids[r], table.col_ids.ids[c]
    expected = graph.predict(r, c, index=True)
    want = table.classes.values_of(graph_classes(name, r, c))
    np.testing.assert_array_equal(expected, want)
    for predictor in (table, graph):
        np.testing.assert_array_equal(predictor.predict(r, c, index=True), expected)
        np.testing.assert_array_equal(predictor.predict(raw_rows, raw_cols), expected)
        np.testing.assert_array_equal(predictor.predict(list(raw_rows), list(raw_cols)), expected)
        np.testing.assert_array_equal(
            predictor.predict(r.astype(np.int32), c.astype(np.uint16), index=True), expected
        )
        np.testing.assert_array_equal(
            predictor.predict(r.astype(np.float64), c.astype(np.float32), index=True), expected
        )
        assert predictor.predict(raw_rows[0].item(), raw_cols[0].item()) == expected[0]
        assert predictor.predict(int(r[0]), int(c[0]), index=True) == expected[0]
        found = np.concatenate(
            [p.class_index for p in predictor.iter_predict(r, c, index=True, chunk_size=777)]
        )
        assert found.dtype == np.int64
        np.testing.assert_array_equal(table.classes.values_of(found), expected)


@pytest.mark.parametrize("name", ["tiny_int", "tiny_stars"])
def test_integer_id_dtypes_take_the_same_answers(name):
    table = Predictor(model_path(name), class_table="eager")
    graph = Predictor(model_path(name), class_table="off")
    rng = np.random.default_rng(5)
    r, c = rng.integers(table.n_rows, size=3000), rng.integers(table.n_cols, size=3000)
    raw_rows, raw_cols = table.row_ids.ids[r], table.col_ids.ids[c]
    expected = graph.predict(raw_rows, raw_cols)
    for dtype in (np.int64, ">i8", np.int32, ">i4", np.uint64, np.uint32, np.float64):
        if np.all(raw_cols == raw_cols.astype(dtype)):
            np.testing.assert_array_equal(
                table.predict(raw_rows.astype(dtype), raw_cols.astype(dtype)), expected
            )
    np.testing.assert_array_equal(table.predict(raw_rows.astype(str), raw_cols), expected)
    # tiny_stars' ids 0..n-1 take the one-gather offsets on both axes; tiny_int's columns
    # (up to 5e12) are too sparse for them and take the general look-up.
    assert table._rows._offsets is not None
    assert (table._cols._offsets is None) == (name == "tiny_int")


def test_unknown_ids_with_the_table():
    table = Predictor(model_path("tiny_int"), class_table="eager", unknown="prior")
    graph = Predictor(model_path("tiny_int"), class_table="off", unknown="prior")
    rows = np.array([10, 11, 20, -5, 1000, 1001, 2**62, 35] * 600)
    cols = np.array([3, 3, 4, 17, 5 * 10**12, 42, 3, -(2**62)] * 600)
    for predictor in (table, graph):
        labels, unknown = predictor.predict(rows, cols, return_unknown=True)
        assert unknown.tolist()[:8] == [False, True, True, True, False, True, True, True]
        prior_label = predictor.classes.values[int(np.argmax(predictor.metadata.prior))]
        assert np.all(labels[unknown] == prior_label)
    np.testing.assert_array_equal(
        table.predict(rows, cols, return_unknown=True)[0],
        graph.predict(rows, cols, return_unknown=True)[0],
    )
    strict = Predictor(model_path("tiny_int"), class_table="eager")
    with pytest.raises(UnknownIdError, match="row id 11 at position 1"):
        strict.predict(rows, cols)
    with pytest.raises(UnknownIdError, match="column id 4 at position 2"):
        strict.predict(rows[[0, 0, 2]], cols[[0, 0, 2]])


@pytest.mark.parametrize("dtype", ["<i8", ">i8", "<i4", ">i4", "i2", "i1", "<u8", ">u4", "u1"])
def test_every_integer_dtype_is_validated(dtype):
    for mode in ("eager", "off"):
        predictor = Predictor(model_path("tiny_stars"), class_table=mode)
        rows = np.arange(30).astype(dtype)
        cols = (np.arange(30) % 40).astype(dtype)
        np.testing.assert_array_equal(
            predictor.predict(rows, cols, index=True),
            predictor.predict(np.arange(30), np.arange(30) % 40, index=True),
        )
        too_big = np.array([0, 0, 40] + [0] * 40).astype(dtype)
        with pytest.raises(ValueError, match="column index 40 at position 2 is out of range"):
            predictor.predict(np.zeros(43, dtype=dtype), too_big, index=True)
        if np.dtype(dtype).kind == "i":
            negative = np.array([0, -1] + [0] * 40).astype(dtype)
            with pytest.raises(ValueError, match="row index -1 at position 1 is out of range"):
                predictor.predict(negative, np.zeros(42, dtype=dtype), index=True)


def test_bad_indices_are_named_as_without_the_table():
    for mode in ("eager", "off"):
        predictor = Predictor(model_path("tiny_stars"), class_table=mode)
        rows = np.zeros(100, dtype=np.int64)
        cols = np.zeros(100, dtype=np.int64)
        cols[57] = 40
        with pytest.raises(ValueError, match="column index 40 at position 57 is out of range"):
            predictor.predict(rows, cols, index=True)
        rows[3] = -1
        with pytest.raises(ValueError, match="row index -1 at position 3 is out of range"):
            predictor.predict(rows, cols, index=True)
        with pytest.raises(ValueError, match="not an integer"):
            predictor.predict(np.full(50, 0.5), np.zeros(50), index=True)
        with pytest.raises(ValueError, match="differ in length"):
            predictor.predict(np.zeros(50, int), np.zeros(49, int), index=True)
        assert predictor.predict([], [], index=True).shape == (0,)
        assert predictor.predict(np.zeros(0, int), np.zeros(0, int)).shape == (0,)
        with pytest.raises(ValueError, match="must be integers"):
            predictor.predict(np.array([], dtype=str), np.array([], dtype=str), index=True)
        # Object arrays never hold indices, even when their items are ints (small or large).
        for n in (1, 3, 100):
            objects = np.zeros(n, dtype=object)
            with pytest.raises(ValueError, match="must be integers, got dtype object"):
                predictor.predict(objects, np.zeros(n, dtype=int), index=True)
            with pytest.raises(ValueError, match="must be integers, got dtype object"):
                predictor.predict_proba(np.zeros(n, dtype=int), objects, index=True)
        with pytest.raises(ValueError, match="must be integers, got dtype object"):
            predictor.predict(np.array(0, dtype=object), 3, index=True)


def test_auto_fills_the_table_while_answering():
    auto = Predictor(model_path("tiny_stars"), class_table="auto")
    off = Predictor(model_path("tiny_stars"), class_table="off")
    assert auto.class_table is None
    rng = np.random.default_rng(0)
    calls = 0
    while auto.class_table is None:
        r, c = rng.integers(30, size=40), rng.integers(40, size=40)
        np.testing.assert_array_equal(
            auto.predict(r, c, index=True), off.predict(r, c, index=True)
        )
        calls += 1
        assert calls < 100
    # 1,200 cells, at least 4,096 a batched call: the first batched call completes it.
    assert calls == 1
    rows, cols = all_pairs(30, 40)
    np.testing.assert_array_equal(
        auto.class_table.reshape(-1), graph_classes("tiny_stars", rows, cols)
    )
    # Single pairs and small batches never fill it.
    single = Predictor(model_path("tiny_stars"))
    for k in range(50):
        single.predict(k % 30, k % 40, index=True)
        single.predict([1, 2, 3], [4, 5, 6], index=True)
    assert single.class_table is None


def test_auto_fills_in_pieces(monkeypatch):
    import mfx.runtime.predictor as module

    monkeypatch.setattr(module, "_MIN_FILL", 100)
    auto = Predictor(model_path("tiny_int"), class_table="auto")  # 7 x 9 = 63 cells
    off = Predictor(model_path("tiny_int"), class_table="off")
    r, c = np.arange(7).repeat(5)[:33], np.arange(9).repeat(4)[:33]
    assert auto._table.cells == 63
    auto.predict(r, c, index=True)  # 33 pairs: claims 100 cells, all 63
    assert auto.class_table is not None
    np.testing.assert_array_equal(auto.predict(r, c, index=True), off.predict(r, c, index=True))


def test_table_limits_and_choices():
    with pytest.raises(ValueError, match="class_table='eager'.*over class_table_max_bytes=100"):
        Predictor(model_path("tiny_stars"), class_table="eager", class_table_max_bytes=100)
    small = Predictor(model_path("tiny_stars"), class_table_max_bytes=100)
    assert small._table is None
    small.predict(np.zeros(5000, int), np.zeros(5000, int), index=True)
    assert small.class_table is None
    assert Predictor(model_path("tiny_stars"), class_table="off").class_table is None
    with pytest.raises(ValueError, match="class_table='sometimes'"):
        Predictor(model_path("tiny_stars"), class_table="sometimes")
    for bad in (-1, 1.5, True, "big"):
        with pytest.raises(ValueError, match="class_table_max_bytes"):
            Predictor(model_path("tiny_stars"), class_table_max_bytes=bad)
    assert CLASS_TABLE_MAX_BYTES == 32 << 20


def test_labels_only_calls_use_the_reduced_graph():
    graph = Predictor(model_path("tiny_int"), class_table="off")
    assert graph._class_session is None
    graph.predict(np.zeros(40, int), np.zeros(40, int), index=True)
    reduced = graph._class_session
    assert reduced is not None
    assert [o.name for o in reduced.get_outputs()] == ["class_index"]
    assert reduced.get_providers() == graph._session.get_providers()
    # Once the table is complete, the reduced graph is let go.
    eager = Predictor(model_path("tiny_int"), class_table="eager")
    assert eager._class_session is None
    eager.predict(np.zeros(40, int), np.zeros(40, int), index=True)
    assert eager._class_session is None


def test_threads_filling_the_table_agree_with_the_graph():
    off = Predictor(model_path("tiny_int"), class_table="off", unknown="prior")
    rng = np.random.default_rng(7)
    ids_r, ids_c = off.row_ids.ids, off.col_ids.ids
    jobs = []
    for k in range(300):
        n = int(rng.integers(1, 90))
        r = ids_r[rng.integers(ids_r.size, size=n)]
        c = ids_c[rng.integers(ids_c.size, size=n)]
        if k % 5 == 0:
            r = r.copy()
            r[0] = 11
        jobs.append((r, c))
    expected = [off.predict(r, c, return_unknown=True) for r, c in jobs]
    import mfx.runtime.predictor as module

    def answer(shared: Predictor, job: tuple[np.ndarray, np.ndarray]) -> tuple:
        return shared.predict(*job, return_unknown=True)

    for _ in range(3):
        shared = Predictor(model_path("tiny_int"), unknown="prior", chunk_size=8)
        saved = module._MIN_FILL
        module._MIN_FILL = 1  # many small claims from many threads
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                found = list(pool.map(answer, [shared] * len(jobs), jobs))
        finally:
            module._MIN_FILL = saved
        assert shared.class_table is not None
        for (want, want_unknown), (got, got_unknown) in zip(expected, found):
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(got_unknown, want_unknown)


def test_a_failing_fill_leaves_the_graph_answering(monkeypatch, caplog):
    predictor = Predictor(model_path("tiny_stars"), class_table="auto")

    def broken(pairs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(predictor, "_run_classes", broken)
    r, c = np.arange(30).repeat(2), np.arange(40).repeat(2)[:60]
    first = predictor.predict(r, c, index=True)
    assert predictor.class_table is None and "abandoned" in caplog.text
    monkeypatch.undo()
    np.testing.assert_array_equal(predictor.predict(r, c, index=True), first)
    assert predictor.class_table is None  # abandoned for good


def test_flat_offsets_send_every_stranger_to_an_unknown_slot():
    ids = np.array([1, 5, 6, 900], dtype=np.int64)
    offsets = FlatOffsets.build(ids, 10)
    assert offsets is not None and offsets.first == 0 and not offsets.contiguous
    values = np.array([1, 5, 6, 900, 0, 2, 901, 10**15, -1, -(2**63), 2**63 - 1])
    out = np.empty(values.size, dtype=np.int64)
    assert offsets.offsets(values, out)
    assert out[:4].tolist() == [0, 10, 20, 30]
    assert np.all(out[4:] < -(1 << 61))
    # Sparse ids from 0 (or negative) need a slot below them: the table starts one lower.
    for ids in (np.array([0, 3, 7]), np.array([-3, 0, 2])):
        offsets = FlatOffsets.build(ids, 1)
        assert offsets.first == ids[0] - 1
        probe = np.concatenate([ids, [ids[0] - 1, ids[-1] + 1, 1, -(2**63), 2**63 - 1]])
        out = np.empty(probe.size, dtype=np.int64)
        assert offsets.offsets(probe, out)
        assert out[: ids.size].tolist() == list(range(ids.size))
        assert np.all(out[ids.size :] < 0)
    assert FlatOffsets.build(np.array([0, 10**9]), 1) is None  # too sparse for a table
    assert FlatOffsets.build(np.zeros(0, dtype=np.int64), 1) is None


@pytest.mark.parametrize("lo", [0, 1, -5, 2**62, -(2**62)])
def test_contiguous_ids_need_no_table(lo):
    ids = np.arange(lo, lo + 7, dtype=np.int64)
    offsets = FlatOffsets.build(ids, 3)
    assert offsets.contiguous and offsets.table.size == 0
    out = np.empty(7, dtype=np.int64)
    assert offsets.offsets(ids, out)
    assert out.tolist() == [3 * k for k in range(7)]
    for stranger in (lo - 1, lo + 7, -(2**63), 2**63 - 1):
        values = np.array([lo, stranger, lo + 1], dtype=np.int64)
        assert not offsets.offsets(values, np.empty(3, dtype=np.int64))
    narrow = np.array([6, 0, 1], dtype=np.int32) + np.int32(lo) if abs(lo) < 9 else ids[[6, 0, 1]]
    found = np.empty(3, dtype=np.int64)
    assert offsets.offsets(narrow, found) and found.tolist() == [18, 0, 3]
    if abs(lo) > 9:  # int32 input against ids beyond int32: every value is a stranger
        assert not offsets.offsets(np.array([0, 1], dtype=np.int32), np.empty(2, np.int64))
