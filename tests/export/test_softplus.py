"""expand_softplus: the literal graph's Softplus nodes become vectorised elementwise ops."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from mfx.export import export_onnx
from mfx.export.graphs import expand_softplus
from mfx.train.models import OrdinalProduct


def softplus_model(dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Softplus", ["x"], ["y"], name="sp")], "g",
        [helper.make_tensor_value_info("x", dtype, [None])],
        [helper.make_tensor_value_info("y", dtype, [None])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_values_match_softplus_everywhere():
    x = np.concatenate(
        [
            np.linspace(-60, 60, 20001, dtype=np.float32),
            np.array([-1e4, 1e4, -1e30, 1e30, 0.0, -0.0, np.inf, -np.inf], dtype=np.float32),
        ]
    )
    plain = softplus_model()
    fast = softplus_model()
    assert expand_softplus(fast) == 1
    onnx.checker.check_model(fast, full_check=True)
    assert "Softplus" not in {n.op_type for n in fast.graph.node}
    expected = torch.nn.functional.softplus(torch.from_numpy(x).double()).float().numpy()
    got = run(fast, x)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(run(plain, x), expected, rtol=2e-6, atol=2e-7)
    assert np.isnan(run(fast, np.array([np.nan], dtype=np.float32))).all()


def test_other_types_and_graphs_are_left_alone():
    half = softplus_model(TensorProto.FLOAT16)
    assert expand_softplus(half) == 0
    assert [n.op_type for n in half.graph.node] == ["Softplus"]
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
    )
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert expand_softplus(plain) == 0


def test_literal_ordinal_export_has_no_softplus(tmp_path, make_checkpoint):
    base = make_checkpoint(n_rows=30, n_cols=20, dim=4, n_classes=6, seed=2)
    torch.manual_seed(3)
    model = OrdinalProduct(30, 20, h=4, c=6)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 2.0)  # wide margins: both softplus tails are exercised
    checkpoint = dataclasses.replace(base, model=model.eval(), arch="ordinal")
    path = tmp_path / "ordinal.onnx"
    report = export_onnx(checkpoint, path, validation=None)
    assert report.parity.relative < 1e-5
    assert "Softplus" not in {n.op_type for n in onnx.load(path).graph.node}
