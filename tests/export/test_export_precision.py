"""fp16 and int8 weights: smaller files that still pick torch's class."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from mfx.errors import VerificationError
from mfx.export import compress, export_onnx
from mfx.model_format import decode_metadata

FORMS = {"folded": True, "literal": False}


@pytest.fixture(scope="module")
def checkpoint(make_checkpoint):
    # Tables large enough that compressing them shows in the file size.
    return make_checkpoint(n_rows=400, n_cols=300, dim=8, n_classes=6, seed=2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint):
    folder = tmp_path_factory.mktemp("precision")
    out = {}
    for form, fold in FORMS.items():
        for precision in ("fp32", "fp16", "int8"):
            path = folder / f"{form}-{precision}.onnx"
            out[form, precision] = export_onnx(checkpoint, path, fold=fold, precision=precision)
    return out


def _run(path, pairs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pairs": pairs})


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_compressed_models_agree_with_torch(exported, checkpoint, form, precision):
    report = exported[form, precision]
    assert report.parity.agreement >= 0.99
    assert report.precision == precision
    rng = np.random.default_rng(5)
    pairs = np.stack([rng.integers(0, 400, 3001), rng.integers(0, 300, 3001)], 1)
    logits, probabilities, class_index = _run(report.path, pairs)
    assert logits.dtype == np.float32 and probabilities.dtype == np.float32
    with torch.no_grad():
        expected = checkpoint.model(torch.from_numpy(pairs)).numpy()
    assert (class_index == expected.argmax(1)).mean() >= 0.99
    bound = 2e-3 if precision == "fp16" else 2e-2
    assert np.abs(logits - expected).max() <= bound * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("form", FORMS)
def test_compressed_files_are_smaller(exported, form):
    sizes = {p: exported[form, p].size_bytes for p in ("fp32", "fp16", "int8")}
    assert sizes["fp32"] > sizes["fp16"] > sizes["int8"]
    weights = {
        p: sum(len(t.raw_data) for t in onnx.load(exported[form, p].path).graph.initializer)
        for p in sizes
    }
    assert weights["fp16"] < 0.55 * weights["fp32"]
    assert weights["int8"] < 0.5 * weights["fp32"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_compressed_graphs_pass_checker_and_reference(exported, form, precision):
    path = exported[form, precision].path
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(path)
    pairs = np.array([[0, 0], [399, 299], [17, 3]], dtype=np.int64)
    ours = _run(path, pairs)
    reference = ReferenceEvaluator(model).run(None, {"pairs": pairs})
    np.testing.assert_allclose(reference[0], ours[0], atol=1e-5)
    np.testing.assert_array_equal(reference[2], ours[2])
    meta = decode_metadata({p.key: p.value for p in model.metadata_props})
    assert meta.precision == precision


def test_fp16_tables_are_half_with_a_cast_after_each_lookup(exported):
    model = onnx.load(exported["folded", "fp16"].path)
    tables = [t for t in model.graph.initializer if len(t.dims) == 2]
    assert {t.data_type for t in tables} == {onnx.TensorProto.FLOAT16}
    produced_by = {out: n for n in model.graph.node for out in n.output}
    add = next(n for n in model.graph.node if n.op_type == "Add")
    for operand in add.input:
        cast = produced_by[operand]
        assert cast.op_type == "Cast"
        assert produced_by[cast.input[0]].op_type == "Gather"


def test_int8_tables_have_per_row_scales(exported):
    model = onnx.load(exported["folded", "int8"].path)
    by_name = {t.name: t for t in model.graph.initializer}
    assert by_name["row_logits_int8"].data_type == onnx.TensorProto.INT8
    assert tuple(by_name["row_logits_scale"].dims) == (400,)
    assert tuple(by_name["col_logits_scale"].dims) == (300,)
    assert "row_logits" not in by_name
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("DequantizeLinear") == 2 and "Cast" not in ops


def test_int8_below_opset_19_dequantizes_with_cast_and_mul(checkpoint, tmp_path):
    report = export_onnx(checkpoint, tmp_path / "m.onnx", precision="int8", opset=18)
    model = onnx.load(report.path)
    ops = [n.op_type for n in model.graph.node]
    assert "DequantizeLinear" not in ops and ops.count("Cast") == ops.count("Mul") == 2
    pairs = np.array([[0, 0], [399, 299], [17, 3]], dtype=np.int64)
    reference = ReferenceEvaluator(model).run(None, {"pairs": pairs})
    np.testing.assert_allclose(reference[0], _run(report.path, pairs)[0], atol=1e-5)
    assert report.parity.agreement >= 0.99


def test_compress_leaves_non_table_weights_of_int8_in_fp32(exported):
    model = onnx.load(exported["literal", "int8"].path)
    kinds = {t.data_type for t in model.graph.initializer if len(t.dims) == 2}
    assert kinds == {onnx.TensorProto.INT8, onnx.TensorProto.FLOAT}


def test_fp16_refuses_weights_beyond_its_range(make_checkpoint, tmp_path):
    checkpoint = make_checkpoint(n_rows=4, n_cols=3, dim=2, n_classes=3, scale=1e3)
    with pytest.raises(ValueError, match="beyond float16's range"):
        export_onnx(checkpoint, tmp_path / "m.onnx", precision="fp16")
    assert list(tmp_path.iterdir()) == []


def test_low_agreement_is_refused_unless_forced(tmp_path, checkpoint):
    path = tmp_path / "m.onnx"
    with pytest.raises(VerificationError, match=r"int8: argmax agreement .* below 101%"):
        export_onnx(checkpoint, path, precision="int8", min_agreement=1.01)
    assert list(tmp_path.iterdir()) == []
    report = export_onnx(checkpoint, path, precision="int8", min_agreement=1.01, force=True)
    assert report.forced and path.exists()


def test_compress_fp32_is_the_identity(exported):
    model = onnx.load(exported["folded", "fp32"].path)
    assert compress(model, "fp32") is model
