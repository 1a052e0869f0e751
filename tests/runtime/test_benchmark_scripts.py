"""benchmarks/inference.py and footprint.py run end to end (tiny settings; no figures checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"


def test_inference_benchmark_on_a_model_file(tmp_path):
    out = tmp_path / "inference.json"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "inference.py"),
            "--model", str(DATA / "tiny_int.onnx"), "--batches", "1,64,5000",
            "--calls", "50", "--rounds", "1", "--seconds", "0.001", "--json", str(out),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Predictor.predict, indices, table" in done.stdout
    found = json.loads(out.read_text())
    rows = found["results"]["5000"]
    assert rows["Predictor.predict, int ids, graph"]["bytes_per_pair"] > 0
    assert found["results"]["1"]["Predictor.predict, indices, table"]["calls"] >= 50


def test_footprint_probe_reads_its_own_memory():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import footprint
    finally:
        sys.path.pop(0)
    row = footprint._measure(
        "tiny", f"import mfx.runtime\nmfx.runtime.Predictor({str(DATA / 'tiny_int.onnx')!r})", 1
    )
    assert row["rss_mb"] > 10 and row["peak_mb"] >= row["rss_mb"] and row["wall_s"] > 0
