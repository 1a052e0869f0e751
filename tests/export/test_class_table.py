"""The Predictor's class-index table equals the exported graph's answers: ties, every form and
precision, and raw ids on both axes."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper

from mfx.export import additive_graph, export_onnx
from mfx.ids import IdMap
from mfx.model_format import encode_metadata
from mfx.runtime import Predictor
from mfx.runtime._prune import prune_outputs
from mfx.train.models import OrdinalProduct


def graph_classes(path, n_rows: int, n_cols: int) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pairs = np.stack(
        [np.repeat(np.arange(n_rows), n_cols), np.tile(np.arange(n_cols), n_rows)], axis=1
    ).astype(np.int64)
    return session.run(["class_index"], {"pairs": pairs})[0]


def write_folded(path, p: np.ndarray, q: np.ndarray, rows: list, cols: list) -> None:
    model = additive_graph(p, q)
    n_classes = p.shape[1]
    helper.set_model_props(
        model,
        encode_metadata(
            version="test", arch="concat", classes=list(range(1, n_classes + 1)),
            rows=rows, cols=cols, prior=[1.0 / n_classes] * n_classes, folded=True,
        ),
    )
    onnx.save(model, path)


def test_ties_are_resolved_as_the_graph_does(tmp_path):
    # Small integers: many pairs have two or more exactly equal best logits.
    rng = np.random.default_rng(0)
    p = rng.integers(0, 3, size=(23, 5)).astype(np.float32)
    q = rng.integers(0, 3, size=(31, 5)).astype(np.float32)
    path = tmp_path / "ties.onnx"
    write_folded(path, p, q, list(range(1, 24)), [f"c{k:02d}" for k in range(31)])
    logits = p[:, None, :] + q[None, :, :]
    best = logits.max(axis=-1, keepdims=True)
    assert ((logits == best).sum(axis=-1) > 1).mean() > 0.3
    expected = graph_classes(path, 23, 31)
    # onnxruntime's ArgMax takes the first of equal maxima, as numpy does.
    np.testing.assert_array_equal(expected, np.argmax(logits, axis=-1).reshape(-1))
    predictor = Predictor(path, class_table="eager")
    np.testing.assert_array_equal(predictor.class_table.reshape(-1), expected)
    r, c = np.repeat(np.arange(23), 31), np.tile(np.arange(31), 23)
    labels = predictor.predict(r, c, index=True)
    np.testing.assert_array_equal(labels, expected + 1)
    raw = predictor.predict(r + 1, np.array([f"c{k:02d}" for k in c]))
    np.testing.assert_array_equal(raw, expected + 1)


@pytest.mark.parametrize(
    "form", [dict(), dict(fold=False), dict(precision="fp16"), dict(precision="int8")]
)
def test_table_matches_every_export_form(tmp_path, make_checkpoint, form):
    checkpoint = make_checkpoint(n_rows=41, n_cols=29, dim=4, n_classes=6, seed=3)
    path = tmp_path / "model.onnx"
    export_onnx(checkpoint, path, validation=None, force=True, **form)
    predictor = Predictor(path, class_table="eager")
    np.testing.assert_array_equal(
        predictor.class_table.reshape(-1), graph_classes(path, 41, 29)
    )
    # The class_index-only graph used to fill it computes the same too.
    reduced = prune_outputs(path.read_bytes(), ["class_index"])
    assert reduced is not None


def test_literal_ordinal_graph_answers_alike_at_every_batch(tmp_path, make_checkpoint):
    base = make_checkpoint(n_rows=50, n_cols=40, dim=4, n_classes=5, seed=1)
    torch.manual_seed(2)
    model = OrdinalProduct(50, 40, h=4, c=5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.7)
    checkpoint = dataclasses.replace(base, model=model.eval(), arch="ordinal")
    path = tmp_path / "ordinal.onnx"
    export_onnx(checkpoint, path, validation=None)
    table = Predictor(path, class_table="eager")
    graph = Predictor(path, class_table="off")
    np.testing.assert_array_equal(table.class_table.reshape(-1), graph_classes(path, 50, 40))
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 33, 500):
        r, c = rng.integers(50, size=n), rng.integers(40, size=n)
        np.testing.assert_array_equal(
            table.predict(r, c, index=True), graph.predict(r, c, index=True)
        )


def test_raw_ids_from_one_take_the_offset_tables(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(n_rows=37, n_cols=23, dim=3, n_classes=5, seed=4)
    rows = IdMap(np.arange(1, 38, dtype=np.int64), "row")  # 1..37, like MovieLens users
    cols = IdMap(np.sort(np.random.default_rng(1).choice(1000, 23, replace=False)) + 1, "column")
    checkpoint = dataclasses.replace(checkpoint, row_ids=rows, col_ids=cols)
    path = tmp_path / "ml-like.onnx"
    export_onnx(checkpoint, path, validation=None)
    table = Predictor(path, class_table="eager", unknown="prior")
    graph = Predictor(path, class_table="off", unknown="prior")
    rng = np.random.default_rng(2)
    r = rows.ids[rng.integers(37, size=5000)]
    c = cols.ids[rng.integers(23, size=5000)]
    r[::97] = 0  # unknown row ids
    c[::89] = 1002  # unknown column ids
    want, want_unknown = graph.predict(r, c, return_unknown=True)
    got, got_unknown = table.predict(r, c, return_unknown=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_unknown, want_unknown)
    known = ~want_unknown
    np.testing.assert_array_equal(table.predict(r[known], c[known]), want[known])
    # Rows 1..37 are contiguous (arithmetic, no table); the sparse columns get a table from 0.
    assert table._rows._offsets.contiguous and not table._cols._offsets.contiguous
    assert table._cols._offsets.first == 0
