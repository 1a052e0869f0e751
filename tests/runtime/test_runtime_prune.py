"""The class_index-only copy of a graph: same answers, only that output, refused when unsafe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mfx.runtime._prune import _encode_varint, prune_outputs

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("name", ["tiny_int", "tiny_str", "tiny_stars", "tiny_ext"])
def test_pruned_graph_computes_the_same_class_index(name):
    data = (DATA / f"{name}.onnx").read_bytes()
    pruned = prune_outputs(data, ["class_index"])
    assert pruned is not None and len(pruned) < len(data)
    if name == "tiny_ext":
        # External data resolves beside the file: a session from bytes cannot load it.
        return
    full = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    reduced = ort.InferenceSession(pruned, providers=["CPUExecutionProvider"])
    assert [o.name for o in reduced.get_outputs()] == ["class_index"]
    assert full.get_modelmeta().custom_metadata_map == reduced.get_modelmeta().custom_metadata_map
    n_rows = int(full.get_modelmeta().custom_metadata_map["mfx.n_rows"])
    n_cols = int(full.get_modelmeta().custom_metadata_map["mfx.n_cols"])
    pairs = np.stack(
        [np.repeat(np.arange(n_rows), n_cols), np.tile(np.arange(n_cols), n_rows)], axis=1
    )
    np.testing.assert_array_equal(
        reduced.run(None, {"pairs": pairs})[0], full.run(["class_index"], {"pairs": pairs})[0]
    )


def test_pruning_keeps_other_outputs_on_request():
    data = (DATA / "tiny_int.onnx").read_bytes()
    both = prune_outputs(data, ["class_index", "logits"])
    session = ort.InferenceSession(both, providers=["CPUExecutionProvider"])
    assert sorted(o.name for o in session.get_outputs()) == ["class_index", "logits"]
    assert prune_outputs(data, ["logits", "probabilities", "class_index"]) is not None


def test_unprunable_inputs_give_none():
    data = (DATA / "tiny_int.onnx").read_bytes()
    assert prune_outputs(data, ["no_such_output"]) is None
    assert prune_outputs(data[: len(data) // 2], ["class_index"]) is None  # truncated
    assert prune_outputs(b"\x00\x01\x02", ["class_index"]) is None
    assert prune_outputs(b"", ["class_index"]) is None  # no graph at all
    # Two graph fields (protobuf would merge them): left alone.
    tag = bytes([(7 << 3) | 2]) + _encode_varint(0)
    assert prune_outputs(data + tag, ["class_index"]) is None


def test_varints_round_trip():
    from mfx.runtime._prune import _varint

    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1):
        encoded = _encode_varint(value)
        assert _varint(encoded, 0, len(encoded)) == (value, len(encoded))
