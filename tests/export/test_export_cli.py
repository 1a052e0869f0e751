"""mfx-export as a user runs it: exit codes, the exact error line, nothing written on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import mfx.export.onnx_export as onnx_export
from mfx.cli.export import main
from mfx.model_format import decode_metadata
from mfx.train import MatrixFactorization as MfxModel


class MatrixFactorization(nn.Module):
    """The report's class, as the report wrote it."""

    def __init__(self, n, d, h=1, c=6):
        super().__init__()
        self.U = nn.Embedding(n, h)
        self.V = nn.Embedding(d, h)
        self.classifier = nn.Linear(2 * h, c)

    def forward(self, x):
        u = self.U(x[:, 0])
        v = self.V(x[:, 1])
        return self.classifier(torch.cat((u, v), 1))


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def report_state_dict(tmp_path):
    torch.manual_seed(3)
    model = MatrixFactorization(12, 9, h=1, c=6).eval()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_defaults_read_mfx_model_pt_and_write_mfx_model_onnx(tmp_path, trained, monkeypatch):
    shutil.copy(trained, tmp_path / "mfx-model.pt")
    monkeypatch.chdir(tmp_path)
    result = _invoke()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("wrote mfx-model.onnx (")
    assert (
        "concat, folded P[row] + Q[col], fp32, opset 20; 60 rows x 40 columns, 5 classes"
        in (lines[0])
    )
    assert lines[1].startswith("parity vs torch on 10,339 random pairs (batch 1, 2, 333, 10000)")
    assert "argmax agreement 100.00%" in lines[1]
    assert _files(tmp_path) == ["mfx-model.onnx", "mfx-model.pt"]


def test_literal_int8_with_options(tmp_path, trained):
    out = tmp_path / "m.onnx"
    result = _invoke(
        str(out),
        "--checkpoint",
        str(trained),
        "--no-fold",
        "--precision",
        "int8",
        "--opset",
        "17",
        "--force",
    )
    assert result.exit_code == 0, result.output
    assert "literal graph, int8, opset 17" in result.output
    assert _files(tmp_path) == ["m.onnx"]


def test_valid_data_file_and_none(tmp_path, trained):
    labelled = tmp_path / "valid.csv"
    labelled.write_text("0,0,1\n1,2,3\n59,39,5\n999,0,2\n")
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(trained), "--valid-data", str(labelled))
    assert result.exit_code == 0, result.output
    assert f"validation: 3 ratings ({labelled}): accuracy torch " in result.output
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(trained), "--valid-data", "none")
    assert result.exit_code == 0
    assert "validation: none" in result.output


def test_missing_valid_data_file(tmp_path, trained):
    missing = tmp_path / "valid.csv"
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(trained), "--valid-data", str(missing))
    assert result.exit_code == 2
    assert result.output == f"Error: {missing}: file not found; check the path\n"
    assert _files(tmp_path) == []


def test_cli_constants_mirror_the_library():
    from mfx.cli.export import PRECISIONS
    from mfx.export import DEFAULT_OPSET
    from mfx.export import PRECISIONS as LIBRARY

    assert PRECISIONS == LIBRARY
    help_text = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    assert f"ONNX opset  [default: {DEFAULT_OPSET}]" in help_text


def test_quiet_prints_nothing(tmp_path, trained):
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(trained), "-q")
    assert result.exit_code == 0
    assert result.output == ""


def test_missing_checkpoint(tmp_path):
    missing = tmp_path / "nope.pt"
    result = _invoke(str(tmp_path / "m.onnx"), "--checkpoint", str(missing))
    assert result.exit_code == 2
    assert result.output == f"Error: {missing}: checkpoint not found; train one with mfx-train\n"
    assert _files(tmp_path) == []


def test_non_mfx_checkpoint(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": [1, 2, 3]}, other)
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(other))
    assert result.exit_code == 2
    assert result.output == f"Error: {other}: not an mfx checkpoint\n"
    assert _files(tmp_path) == ["other.pt"]


def test_bare_state_dict_as_checkpoint_hints_at_state_dict(report_state_dict, tmp_path):
    _, path = report_state_dict
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(path))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {path}: not an mfx checkpoint; a bare state_dict can be exported with "
        "mfx-export --state-dict\n"
    )


def test_truncated_checkpoint(tmp_path, trained):
    bad = tmp_path / "bad.pt"
    data = trained.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {bad}: corrupt or not a torch checkpoint (")
    assert len(result.output.splitlines()) == 1


def test_missing_output_folder(tmp_path, trained):
    out = tmp_path / "missing" / "m.onnx"
    result = _invoke(str(out), "-c", str(trained))
    assert result.exit_code == 2
    assert result.output == f"Error: cannot write {out}: folder {out.parent} does not exist\n"


def test_output_is_a_folder(tmp_path, trained):
    result = _invoke(str(tmp_path), "-c", str(trained))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: cannot write {tmp_path}: it is a folder; give the .onnx file to write\n"
    )


def test_unwritable_output_folder(tmp_path, trained, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    out = folder / "m.onnx"
    real_access = os.access
    # Root may write anywhere, so the refusal is simulated through the check export makes.
    monkeypatch.setattr(
        onnx_export.os,
        "access",
        lambda p, mode: False if os.fspath(p) == str(folder) else real_access(p, mode),
    )
    result = _invoke(str(out), "-c", str(trained))
    assert result.exit_code == 2
    assert result.output == f"Error: cannot write {out}: folder {folder} is not writable\n"
    assert _files(folder) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_read_only_folder_for_real(tmp_path, trained):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        out = folder / "m.onnx"
        result = _invoke(str(out), "-c", str(trained))
        assert result.exit_code == 2
        assert result.output == f"Error: cannot write {out}: folder {folder} is not writable\n"
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp8"], "--precision fp8: choose fp32, fp16, int8"),
        (["--opset", "9"], f"--opset 9: choose 13..{__import__('onnx').defs.onnx_opset_version()}"),
        (["--opset", "new"], "--opset 'new': not a whole number"),
        (["--classes", "0,1"], "--classes only applies with --state-dict"),
        (
            ["--state-dict", "w.pt"],
            "--state-dict needs --classes, the class values in index order (e.g. 0,1,2,3,4,5)",
        ),
        (
            ["--state-dict", "w.pt", "-c", "m.pt", "--classes", "0,1"],
            "give --checkpoint or --state-dict, not both",
        ),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, message):
    result = _invoke(str(tmp_path / "m.onnx"), *args)
    assert result.exit_code == 2
    assert result.output == f"Error: {message}\n"
    assert _files(tmp_path) == []


def test_failed_verification_exits_1_and_writes_nothing(tmp_path, trained, monkeypatch):
    original = MfxModel.folded_tables

    def corrupted(self):
        rows, cols = original(self)
        return rows, cols + 1.0 * (torch.arange(cols.shape[1]) == 0)

    monkeypatch.setattr(MfxModel, "folded_tables", corrupted)
    result = _invoke(str(tmp_path / "m.onnx"), "-c", str(trained))
    assert result.exit_code == 1
    assert result.output.startswith("Error: verification failed: max |logits - torch| ")
    assert result.output.endswith("over the tolerance 1e-04; nothing written\n")
    assert _files(tmp_path) == []


def test_state_dict_of_the_reports_class(report_state_dict, tmp_path):
    model, path = report_state_dict
    out = tmp_path / "report.onnx"
    result = _invoke(str(out), "--state-dict", str(path), "--classes", "0,1,2,3,4,5")
    assert result.exit_code == 0, result.output
    assert "12 rows x 9 columns, 6 classes" in result.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    pairs = np.array([[r, c] for r in range(12) for c in range(9)], dtype=np.int64)
    logits, probabilities, class_index = session.run(None, {"pairs": pairs})
    with torch.no_grad():
        expected = model(torch.from_numpy(pairs)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    np.testing.assert_array_equal(class_index, expected.argmax(1))
    info = decode_metadata(session.get_modelmeta().custom_metadata_map)
    assert info.classes.to_list() == [0, 1, 2, 3, 4, 5]
    assert info.row_ids.to_list() == list(range(12))
    assert info.col_ids.to_list() == list(range(9))
    assert info.prior.tolist() == pytest.approx([1 / 6] * 6)


def test_state_dict_class_count_must_match(report_state_dict, tmp_path):
    _, path = report_state_dict
    result = _invoke(str(tmp_path / "m.onnx"), "--state-dict", str(path), "--classes", "1,2,3")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {path}: the classifier has 6 outputs but 3 classes were given ([1, 2, 3])\n"
    )


def test_state_dict_must_be_the_reports_class(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"U.weight": torch.zeros(3, 2), "W": torch.zeros(2)}, path)
    result = _invoke(str(tmp_path / "m.onnx"), "--state-dict", str(path), "--classes", "0,1")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {path}: not a state_dict of the report's class (keys U.weight, V.weight, "
        "classifier.weight, classifier.bias): missing V.weight, classifier.weight, "
        "classifier.bias; unexpected W\n"
    )


def test_state_dict_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"U.weight": torch.zeros(2, 1), "model": nn.Linear(1, 1)}, path)
    result = _invoke(str(tmp_path / "m.onnx"), "--state-dict", str(path), "--classes", "0,1")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {path}: refused: the file holds Python objects")


def test_missing_torch_gives_the_install_hint(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from mfx.cli.export import main\n"
        f"main([{str(tmp_path / 'm.onnx')!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == "Error: mfx-export needs PyTorch: pip install 'mfx[train]'\n"
    assert _files(tmp_path) == []
