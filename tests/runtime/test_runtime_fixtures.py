"""The committed fixtures are what tests/data/make_fixtures.py builds (skipped without onnx)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", DATA / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fixtures_match_a_rebuild(tmp_path):
    onnx = pytest.importorskip("onnx")
    written = _make_fixtures().build(tmp_path)
    assert written
    for path in written:
        committed = DATA / path.name
        assert committed.exists(), f"{path.name} is not committed; run make_fixtures.py"
        if path.suffix == ".onnx":
            fresh, old = (
                onnx.load(path, load_external_data=False),
                onnx.load(committed, load_external_data=False),
            )
            assert fresh.ir_version == old.ir_version
            assert list(fresh.opset_import) == list(old.opset_import)
            assert {p.key: p.value for p in fresh.metadata_props} == {
                p.key: p.value for p in old.metadata_props
            }
            assert fresh.graph.SerializeToString() == old.graph.SerializeToString(), path.name
        elif path.suffix == ".npz":
            fresh_arrays = np.load(path, allow_pickle=False)
            old_arrays = np.load(committed, allow_pickle=False)
            with fresh_arrays, old_arrays:
                assert sorted(fresh_arrays.files) == sorted(old_arrays.files)
                for key in fresh_arrays.files:
                    np.testing.assert_array_equal(fresh_arrays[key], old_arrays[key])
        else:
            assert path.read_bytes() == committed.read_bytes(), path.name
