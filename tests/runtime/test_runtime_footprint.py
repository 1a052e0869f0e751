"""``import mfx.runtime`` and a prediction pull in neither torch, onnx nor pandas (nor
numpy.random, about 5 MB of resident memory that the runtime does not need)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def test_runtime_imports_only_numpy_and_onnxruntime():
    script = textwrap.dedent(
        f"""
        import sys
        import mfx.runtime
        predictor = mfx.runtime.Predictor({str(DATA / "tiny_str.onnx")!r})
        predictor.predict("bob", "film:1")
        predictor.predict_proba(["bob", "carol"], ["film:1", "show:3"])
        predictor.recommend("bob", 2, by="like")
        predictor.predict(["bob"] * 100, ["film:1", "show:3"] * 50)  # vectorised text look-up
        heavy = sorted(
            name
            for name in (
                "torch", "onnx", "pandas", "mfx.data", "mfx.train", "mfx.export", "numpy.random"
            )
            if name in sys.modules
        )
        print(",".join(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported: {done.stdout.strip()}"
