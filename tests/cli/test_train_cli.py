"""mfx-train as a user runs it: exit codes, the exact error line, nothing written on bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from mfx.cli.train import main  # noqa: E402

# name, file content, extra args, expected error line (after "Error: <path>: ")
BAD_INPUTS = [
    (
        "short.csv",
        "u,i,r\n1,2,3\n1,3\n2,2,4\n",
        [],
        "line 3: expected at least 3 fields (row, column, label), found 2",
    ),
    (
        "ragged.csv",
        "1,2,3,9\n1,3,3\n",
        [],
        "line 2: expected 4 fields like the first line, found 3",
    ),
    (
        "long.csv",
        "1,2,3\n1,3,4,5,6\n",
        [],
        "line 2: expected 3 fields like the first line, found 5; "
        "every line needs the same number of fields",
    ),
    ("empty_label.csv", "1,2,3\n1,3,\n2,2,4\n", [], "line 2: empty label"),
    ("nan_label.csv", "1,2,3\n1,3,nan\n2,2,4\n", [], "line 2: empty label"),
    ("inf_label.csv", "1,2,3\n1,3,inf\n2,2,4\n", [], "line 2: label inf is not finite"),
    (
        "outside.csv",
        "1,2,3\n\n1,3,9\n",
        ["--classes", "0,1,2,3,4,5"],
        "line 3: label 9 is not one of the classes [0, 1, 2, 3, 4, 5]",
    ),
    ("empty.csv", "", [], "file is empty; expected lines of row, column, label"),
    (
        "header_only.csv",
        "userId,movieId,rating\n",
        [],
        "has a header but no ratings; expected lines of row, column, label",
    ),
    (
        "one_class.csv",
        "1,2,3\n1,3,3\n",
        [],
        "need at least two distinct classes, found 1: [3]; "
        "a classifier cannot learn from one label",
    ),
    ("mixed.csv", "1,2,4\n1,3,good\n", [], "line 2: label 'good' is text, unlike the first label"),
    (
        "binary.csv",
        b"\x00\x01\x02garbage\x00",
        [],
        "looks like a binary file, not a text ratings file",
    ),
    ("missing.csv", None, [], "file not found; check the path"),
]


@pytest.mark.parametrize("name, content, args, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, name, content, args, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "model.pt"
    result = CliRunner().invoke(main, ["--data", str(path), "-o", str(out), "-q", *args])
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: {path}: {message}\n"
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if content is not None else [])


def test_folder_as_data_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["--data", str(tmp_path), "-q"])
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_default_data_trains_and_summarises(tmp_path):
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(main, ["-o", str(out), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "5 classes [1, 2, 3, 4, 5]" in result.output
    assert "300 rows x 200 columns" in result.output
    assert "valid accuracy" in result.output
    assert f"wrote {out}" in result.output
    assert out.exists()


def test_quiet_prints_nothing(tmp_path):
    result = CliRunner().invoke(main, ["-o", str(tmp_path / "m.pt"), "--epochs", "1", "-q"])
    assert result.exit_code == 0
    assert result.output == ""


def test_cuda_without_cuda_is_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(main, ["--device", "cuda", "-o", str(tmp_path / "m.pt"), "-q"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --device cuda: CUDA is not available")


def test_bad_option_value_is_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["--dim", "0", "-o", str(tmp_path / "m.pt")])
    assert result.exit_code == 2
    assert "dim must be at least 1" in result.output


def test_without_torch_prints_install_hint(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("no torch")
        sys.meta_path.insert(0, Block())
        from mfx.cli.train import main
        main(["-q"])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr == "Error: mfx-train needs PyTorch: pip install 'mfx[train]'\n"
    assert not (tmp_path / "mfx-model.pt").exists()


def test_python_m_mfx_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "mfx"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "mfx-train" in proc.stdout and "mfx-export" in proc.stdout
