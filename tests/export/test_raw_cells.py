"""Raw integer ids answered from the guarded class table: every id layout, every stranger.

The table path maps raw ids straight to a position in the table (``RawCells``) and relies on
guard cells, a clipped gather and offset tables to refuse what is not a known id; the graph
path looks every id up. Both must give the same labels, unknown masks and errors.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from mfx.errors import UnknownIdError
from mfx.export import additive_graph
from mfx.model_format import encode_metadata
from mfx.runtime import Predictor

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def write_folded(path, rows: list[int], cols: list[int], n_classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(len(rows), n_classes)).astype(np.float32)
    q = rng.normal(size=(len(cols), n_classes)).astype(np.float32)
    model = additive_graph(p, q)
    helper.set_model_props(
        model,
        encode_metadata(
            version="test",
            arch="concat",
            classes=list(range(n_classes)),
            rows=rows,
            cols=cols,
            prior=[1.0 / n_classes] * n_classes,
            folded=True,
        ),
    )
    onnx.save(model, path)
    return path


LAYOUTS = {
    # name: (row ids, column ids)
    "movielens": (list(range(1, 38)), [1, 2, 5, 9, 40, 41, 300, 1000, 1001, 1500]),
    "positions": (list(range(0, 11)), list(range(0, 13))),
    "both_contiguous_from_lo": (list(range(5, 16)), list(range(100, 113))),
    "sparse_rows_contiguous_cols": ([3, 8, 9, 20, 700], list(range(1, 14))),
    "both_sparse": ([3, 8, 9, 20, 700], [2, 4, 50, 51, 900]),
    "negative_rows": (list(range(-3, 6)), [1, 7, 30, 31, 64]),
    "huge_rows": (list(range(2**60, 2**60 + 6)), [1, 7, 30, 31, 64]),
    "huge_cols": (list(range(1, 8)), list(range(2**62, 2**62 + 9))),
}


def strangers(ids: list[int]) -> list[int]:
    lo, hi = min(ids), max(ids)
    near = [lo - 1, hi + 1, 0, -1, 1, 2**31, -(2**31), 2**62, -(2**62), I64_MIN, I64_MAX]
    return [v for v in near if v not in ids and I64_MIN <= v <= I64_MAX]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_raw_ids_from_the_table_match_the_graph(tmp_path, layout):
    rows, cols = LAYOUTS[layout]
    path = write_folded(tmp_path / f"{layout}.onnx", rows, cols)
    table = Predictor(path, class_table="eager", unknown="prior")
    graph = Predictor(path, class_table="off", unknown="prior")
    rng = np.random.default_rng(1)
    n = 5000
    r = np.array(rows)[rng.integers(len(rows), size=n)]
    c = np.array(cols)[rng.integers(len(cols), size=n)]
    want = graph.predict(r, c)
    np.testing.assert_array_equal(table.predict(r, c), want)
    assert table._raw is not None  # every layout here takes the shortcut ...
    general = table._indices
    table._indices = None  # ... so known ids never reach the general path
    np.testing.assert_array_equal(table.predict(r, c), want)
    table._indices = general
    for dtype in (np.int32, np.uint32, np.int16, ">i8", np.uint8, np.int8):
        if np.array_equal(r.astype(dtype).astype(np.int64), r) and np.array_equal(
            c.astype(dtype).astype(np.int64), c
        ):
            np.testing.assert_array_equal(table.predict(r.astype(dtype), c.astype(dtype)), want)
    # Every stranger, on either axis, at a few positions of a large batch.
    for axis, bad_values in ((0, strangers(rows)), (1, strangers(cols))):
        for value in bad_values:
            rr, cc = r.copy(), c.copy()
            (rr if axis == 0 else cc)[[7, 4000]] = value
            labels, unknown = table.predict(rr, cc, return_unknown=True)
            want_labels, want_unknown = graph.predict(rr, cc, return_unknown=True)
            np.testing.assert_array_equal(unknown, want_unknown)
            assert unknown.sum() == 2, (layout, axis, value)
            np.testing.assert_array_equal(labels, want_labels)


@pytest.mark.parametrize("layout", ["movielens", "sparse_rows_contiguous_cols", "positions"])
def test_strangers_are_named_as_by_the_graph(tmp_path, layout):
    rows, cols = LAYOUTS[layout]
    path = write_folded(tmp_path / f"{layout}.onnx", rows, cols)
    table = Predictor(path, class_table="eager")
    graph = Predictor(path, class_table="off")
    r = np.array([rows[0]] * 300)
    c = np.array([cols[-1]] * 300)
    for axis, bad_values in ((0, strangers(rows)), (1, strangers(cols))):
        for value in bad_values:
            rr, cc = r.copy(), c.copy()
            (rr if axis == 0 else cc)[123] = value
            with pytest.raises(UnknownIdError) as from_graph:
                graph.predict(rr, cc)
            with pytest.raises(UnknownIdError) as from_table:
                table.predict(rr, cc)
            assert str(from_table.value) == str(from_graph.value)
            assert "at position 123" in str(from_table.value)
            for dtype in (np.int32, np.int8):
                if np.iinfo(dtype).min <= value <= np.iinfo(dtype).max and all(
                    np.iinfo(dtype).min <= v <= np.iinfo(dtype).max for v in rows + cols
                ):
                    with pytest.raises(UnknownIdError, match="at position 123"):
                        table.predict(rr.astype(dtype), cc.astype(dtype))


@pytest.mark.parametrize(("n_classes", "dtype"), [(255, np.uint8), (256, np.uint16)])
def test_the_table_keeps_a_value_for_its_guard_cells(tmp_path, n_classes, dtype):
    rows, cols = list(range(1, 9)), [2, 3, 10, 11, 50]
    path = write_folded(tmp_path / "wide.onnx", rows, cols, n_classes=n_classes, seed=3)
    table = Predictor(path, class_table="eager")
    graph = Predictor(path, class_table="off")
    assert table.class_table.dtype == dtype and not table.class_table.flags.writeable
    guarded = table._table.guarded
    assert guarded[0] == guarded[-1] == np.iinfo(dtype).max == table._table.guard
    np.testing.assert_array_equal(guarded[1:-1], table.class_table.reshape(-1))
    r, c = np.repeat(rows, len(cols)), np.tile(cols, len(rows))
    np.testing.assert_array_equal(table.predict(r, c), graph.predict(r, c))
    with pytest.raises(UnknownIdError, match="row id 9 at position 40"):
        table.predict(np.append(r, 9), np.append(c, 2))
