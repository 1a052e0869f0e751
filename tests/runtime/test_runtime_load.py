"""Load-time checks: missing, corrupt, foreign and unsafe files; execution providers."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mfx.errors import DeviceError, ModelFormatError
from mfx.runtime import Predictor, available_providers, cuda_available, resolve_providers
from mfx.runtime._scan import ScanError, scan_model

DATA = Path(__file__).resolve().parent.parent / "data"


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match=r"nope\.onnx: model file not found"):
        Predictor(tmp_path / "nope.onnx")
    with pytest.raises(ModelFormatError, match="is a folder, not an ONNX file"):
        Predictor(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="file is empty, not an ONNX model"):
        Predictor(path)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff" * 64,  # a varint that never ends
        b"not an onnx model at all, just text\n" * 3,
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    ],
)
def test_corrupt_bytes(tmp_path, content):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=r"corrupt\.onnx: not (a valid ONNX file|an ONNX)"):
        Predictor(path)


def test_truncated_model(tmp_path):
    data = (DATA / "tiny_int.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="corrupt or truncated"):
        Predictor(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_mfx", r"not an mfx model \(metadata mfx\.format, .* missing\); export it"),
        ("future_format", "mfx.format 99 is not supported"),
        ("wrong_input_name", r"the model's input is 'x' \(tensor\(int64\)\); an mfx model takes"),
        ("wrong_input_type", r"the model's input is 'pairs' \(tensor\(int32\)\)"),
        ("no_class_index", "the model has no output 'class_index'"),
        ("rows_short", r"fails on row index 6, column index 8 although its metadata lists 7 rows"),
        ("rows_extra", r"row table has more than the 7 rows its metadata \(mfx\.n_rows\) lists"),
    ],
)
def test_not_an_mfx_model(name, message):
    with pytest.raises(ModelFormatError, match=message):
        Predictor(DATA / f"{name}.onnx")


@pytest.mark.parametrize(
    ("name", "location"),
    [("escape_parent", "../escape.bin"), ("escape_absolute", "/etc/mfx-escape.bin")],
)
def test_external_data_outside_the_folder_is_refused(name, location, monkeypatch):
    opened = []
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: opened.append(a))
    with pytest.raises(ModelFormatError, match=f"points to external data at '{location}'"):
        Predictor(DATA / f"{name}.onnx")
    assert opened == []  # refused before onnxruntime saw the file


def test_external_data_beside_the_model_loads(tmp_path, int_model):
    inline = int_model.predict_proba([10, 1000], [3, 5 * 10**12])
    np.testing.assert_array_equal(
        Predictor(DATA / "tiny_ext.onnx").predict_proba([10, 1000], [3, 5 * 10**12]), inline
    )
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("tiny_ext.onnx", "tiny_ext.weights"):
        shutil.copy(DATA / name, folder / name)
    np.testing.assert_array_equal(
        Predictor(folder / "tiny_ext.onnx").predict_proba([10, 1000], [3, 5 * 10**12]), inline
    )


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_external_data_through_a_symlink_out_is_refused(tmp_path):
    outside = tmp_path / "outside.weights"
    shutil.copy(DATA / "tiny_ext.weights", outside)
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(DATA / "tiny_ext.onnx", folder / "tiny_ext.onnx")
    (folder / "tiny_ext.weights").symlink_to(outside)
    with pytest.raises(ModelFormatError, match="resolves to .*outside the model's folder"):
        Predictor(folder / "tiny_ext.onnx")


def test_missing_external_data_is_a_format_error(tmp_path):
    shutil.copy(DATA / "tiny_ext.onnx", tmp_path / "tiny_ext.onnx")
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load the model"):
        Predictor(tmp_path / "tiny_ext.onnx")


def test_scan_finds_metadata_and_external_refs():
    scan = scan_model((DATA / "tiny_ext.onnx").read_bytes())
    assert scan.has_graph and scan.metadata["mfx.n_rows"] == "7"
    assert sorted((ref.tensor, ref.location) for ref in scan.external) == [
        ("P", "tiny_ext.weights"),
        ("Q", "tiny_ext.weights"),
    ]
    assert scan_model((DATA / "tiny_int.onnx").read_bytes()).external == []
    assert scan_model((DATA / "not_mfx.onnx").read_bytes()).metadata == {}
    with pytest.raises(ScanError):
        scan_model(b"\x0a\xff\xff\xff\x0f")  # a length far past the end


# -- providers -------------------------------------------------------------------------------


def test_auto_and_cpu_resolve_to_what_exists():
    assert resolve_providers("cpu")[0] == ["CPUExecutionProvider"]
    auto = resolve_providers("auto")[0]
    assert auto == (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if cuda_available()
        else ["CPUExecutionProvider"]
    )
    assert "CPUExecutionProvider" in available_providers()


def test_auto_prefers_cuda_when_the_build_has_it(monkeypatch):
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert resolve_providers("auto")[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers("cuda")[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.skipif(cuda_available(), reason="this onnxruntime build has CUDA")
@pytest.mark.parametrize("providers", ["cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]])
def test_cuda_request_without_cuda_names_what_is_available(providers):
    with pytest.raises(DeviceError) as info:
        Predictor(DATA / "tiny_int.onnx", providers=providers)
    message = str(info.value)
    assert "CUDAExecutionProvider is not available (available: " in message
    assert "CPUExecutionProvider" in message and "onnxruntime-gpu" in message


def test_unknown_provider_names(monkeypatch):
    with pytest.raises(DeviceError, match="providers='gpu': choose auto, cpu, cuda"):
        resolve_providers("gpu")
    with pytest.raises(DeviceError, match="FooExecutionProvider is not available"):
        resolve_providers(["FooExecutionProvider"])
    with pytest.raises(DeviceError, match="listed twice"):
        resolve_providers(["CPUExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(DeviceError, match="list is empty"):
        resolve_providers([])


def test_explicit_provider_list_with_options():
    predictor = Predictor(DATA / "tiny_int.onnx", providers=[("CPUExecutionProvider", {})])
    assert predictor.providers == ("CPUExecutionProvider",)


def test_silently_dropped_provider_is_an_error(monkeypatch):
    # Pretend the build has CUDA: onnxruntime (CPU build) then drops it with only a warning.
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with pytest.raises(DeviceError, match="could not enable CUDAExecutionProvider and fell back"):
        with pytest.warns(UserWarning):
            Predictor(DATA / "tiny_int.onnx", providers="cuda")


def test_auto_falls_back_to_cpu_and_says_so(monkeypatch, caplog):
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with caplog.at_level(logging.WARNING, logger="mfx.runtime._load"):
        with pytest.warns(UserWarning):
            predictor = Predictor(DATA / "tiny_int.onnx", providers="auto")
    assert predictor.providers == ("CPUExecutionProvider",)
    assert "CUDAExecutionProvider is not usable here" in caplog.text


def test_threads_setting():
    predictor = Predictor(DATA / "tiny_int.onnx", threads=1)
    assert predictor.predict(10, 3) == Predictor(DATA / "tiny_int.onnx").predict(10, 3)
