"""The report's experiment runs end to end (shortened to 40 epochs for CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "report.py"


def test_report_example(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--out", str(tmp_path), "--epochs", "40"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "report (Table 1)" in proc.stdout
    assert "torch and ONNX agree: accuracy, confusion and per-class figures identical: True" in (
        proc.stdout
    )
    for name in ("loss.png", "confusion.png", "true_vs_predicted.png", "report.onnx"):
        assert (tmp_path / name).stat().st_size > 0
