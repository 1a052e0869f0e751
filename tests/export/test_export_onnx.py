"""The exported graph: contract, parity with torch, metadata, opsets, reference evaluator."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator

import mfx
from mfx.export import FOLDED_FORMS, build_graph, export_onnx
from mfx.model_format import decode_metadata

OPSETS = (17, 20)
FORMS = {"folded": True, "literal": False}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, random_model):
    """(form, opset) -> (path, report) for the random model."""
    folder = tmp_path_factory.mktemp("exported")
    out = {}
    for form, fold in FORMS.items():
        for opset in OPSETS:
            path = folder / f"{form}-{opset}.onnx"
            out[form, opset] = path, export_onnx(random_model, path, fold=fold, opset=opset)
    return out


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _pairs(n_rows: int, n_cols: int, size: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pairs = np.stack([rng.integers(0, n_rows, size), rng.integers(0, n_cols, size)], 1)
    pairs[-1] = [n_rows - 1, n_cols - 1]
    pairs[0] = [0, 0]
    return pairs.astype(np.int64)


def _torch(model, pairs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(pairs)).numpy()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("opset", OPSETS)
def test_graph_declares_the_contract_with_a_named_batch_dim(exported, form, opset):
    path, report = exported[form, opset]
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ["pairs"]
    assert [o.name for o in model.graph.output] == ["logits", "probabilities", "class_index"]
    pairs = model.graph.input[0].type.tensor_type
    assert pairs.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param or d.dim_value for d in pairs.shape.dim] == ["batch", 2]
    dims = [
        [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        for o in model.graph.output
    ]
    assert dims == [["batch", 5], ["batch", 5], ["batch"]]
    types = [o.type.tensor_type.elem_type for o in model.graph.output]
    assert types == [onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
    assert report.folded is FORMS[form]
    assert report.opset == opset
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("opset", OPSETS)
def test_file_is_self_contained_and_passes_the_full_checker(exported, form, opset):
    path, report = exported[form, opset]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(path, load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name)) == [
        path.name
    ]
    assert not path.with_name(path.name + ".data").exists()
    assert report.external_data is None
    assert report.size_bytes == path.stat().st_size


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("size", [1, 2, 333, 5000])
def test_parity_with_torch(exported, random_model, form, size):
    path, _ = exported[form, 20]
    pairs = _pairs(37, 23, size)
    if size == 1:
        pairs = np.array([[36, 22]], dtype=np.int64)
    logits, probabilities, class_index = _session(path).run(None, {"pairs": pairs})
    expected = _torch(random_model.model, pairs)
    assert logits.dtype == np.float32 and logits.shape == (size, 5)
    assert class_index.dtype == np.int64 and class_index.shape == (size,)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        probabilities, torch.softmax(torch.from_numpy(expected), -1).numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(class_index, expected.argmax(1))


def test_report_parity_figures(exported):
    for form in FORMS:
        parity = exported[form, 20][1].parity
        assert parity.relative <= 1e-5
        assert parity.agreement == 1.0
        assert parity.batch_sizes == [1, 2, 333, 10_000]
        assert parity.pairs == 4 + 2 + 333 + 10_000


@pytest.mark.parametrize("form", FORMS)
def test_reference_evaluator_agrees_with_onnxruntime(exported, form):
    path, _ = exported[form, 20]
    pairs = _pairs(37, 23, 257, seed=3)
    ours = _session(path).run(None, {"pairs": pairs})
    reference = ReferenceEvaluator(onnx.load(path)).run(None, {"pairs": pairs})
    np.testing.assert_allclose(reference[0], ours[0], atol=1e-5)
    np.testing.assert_allclose(reference[1], ours[1], atol=1e-6)
    np.testing.assert_array_equal(reference[2], ours[2])


@pytest.mark.parametrize("form", FORMS)
def test_metadata_round_trip_through_onnxruntime(exported, random_model, form):
    path, _ = exported[form, 20]
    meta = _session(path).get_modelmeta().custom_metadata_map
    info = decode_metadata(meta, str(path))
    assert info.classes == random_model.classes
    assert info.row_ids == random_model.row_ids
    assert info.col_ids == random_model.col_ids
    assert info.row_ids.to_list()[:2] == ["user000", "user001"]
    assert info.col_ids.to_list()[:2] == [7, 17]
    assert info.prior == pytest.approx([0.2] * 5)
    assert info.metrics == {"train_accuracy": 0.5, "valid_accuracy": 0.4}
    assert info.arch == "concat"
    assert info.folded is FORMS[form]
    assert info.precision == "fp32"
    assert info.version == mfx.__version__


def test_trained_checkpoint_metadata_has_training_and_validation_metrics(tmp_path, trained):
    path = tmp_path / "trained.onnx"
    report = export_onnx(trained, path)
    info = decode_metadata(_session(path).get_modelmeta().custom_metadata_map)
    assert {"train_loss", "train_accuracy", "valid_loss", "valid_accuracy"} <= set(info.metrics)
    assert info.row_ids.to_list() == list(range(60))
    assert report.validation is None  # its data lived in memory: nothing to rebuild


def test_folded_graph_is_a_few_gathers_and_no_casts(exported):
    model = onnx.load(exported["folded", 20][0])
    ops = [n.op_type for n in model.graph.node]
    assert sorted(ops) == ["Add", "ArgMax", "Gather", "Gather", "Gather", "Gather", "Softmax"]
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    argmax = next(n for n in model.graph.node if n.op_type == "ArgMax")
    assert onnx.helper.get_attribute_value(softmax.attribute[0]) == -1
    assert {a.name: onnx.helper.get_attribute_value(a) for a in argmax.attribute} == {
        "axis": -1,
        "keepdims": 0,
    }
    tables = {t.name: tuple(t.dims) for t in model.graph.initializer if len(t.dims) == 2}
    assert tables == {"row_logits": (37, 5), "col_logits": (23, 5)}


def test_folded_tables_are_the_models(exported, random_model):
    model = onnx.load(exported["folded", 20][0])
    tables = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    with torch.no_grad():
        rows, cols = random_model.model.folded_tables()
    np.testing.assert_allclose(tables["row_logits"], rows.numpy(), atol=1e-5)
    np.testing.assert_allclose(tables["col_logits"], cols.numpy(), atol=1e-5)


def test_architecture_without_folded_form_exports_literally(monkeypatch, tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(n_rows=5, n_cols=4, dim=2, n_classes=3)
    monkeypatch.delitem(FOLDED_FORMS, "concat")
    _, folded = build_graph(checkpoint.model, "concat", fold=True)
    assert folded is False
    report = export_onnx(checkpoint, tmp_path / "m.onnx")
    assert report.folded is False
    meta = _session(tmp_path / "m.onnx").get_modelmeta().custom_metadata_map
    assert meta["mfx.folded"] == "false"


def test_checkpoint_path_and_loaded_checkpoint_give_the_same_graph(tmp_path, trained):
    from mfx.train import load_checkpoint

    a = export_onnx(trained, tmp_path / "a.onnx", validation=None)
    b = export_onnx(load_checkpoint(trained), tmp_path / "b.onnx", validation=None)
    assert a.size_bytes == b.size_bytes
    assert onnx.load(a.path).graph == onnx.load(b.path).graph


def test_unknown_precision_and_opset_are_refused_before_any_work(tmp_path, random_model):
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        export_onnx(random_model, tmp_path / "m.onnx", precision="fp8")
    with pytest.raises(ValueError, match="opset 9 is not supported"):
        export_onnx(random_model, tmp_path / "m.onnx", opset=9)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_is_checked_first(tmp_path, random_model):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(random_model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError):
        export_onnx(random_model, tmp_path)
