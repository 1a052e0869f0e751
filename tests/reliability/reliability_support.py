"""What the reliability tests share: fixture paths, the numpy reference, the stress scale.

``MFX_STRESS_SCALE`` sets the size of the heavy (``slow``) tests as a fraction of the sizes the
issue names: the default 0.1 keeps CI to a few minutes (16 threads x 1,000 calls, 100,000
calls for the memory check, 1,000,000 pairs through mfx-predict); ``MFX_STRESS_SCALE=1`` runs
them in full (16 x 10,000 calls, 1,000,000 calls, 10,000,000 pairs).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
INT_MODEL = DATA / "tiny_int.onnx"
STR_MODEL = DATA / "tiny_str.onnx"


def stress_scale() -> float:
    """The fraction of the full sizes to run, from ``MFX_STRESS_SCALE`` (default 0.1)."""
    text = os.environ.get("MFX_STRESS_SCALE", "0.1")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"MFX_STRESS_SCALE={text!r}: give a number such as 0.1 or 1") from None
    return min(max(value, 1e-4), 1.0)


def scaled(full: int, minimum: int = 1) -> int:
    """``full`` times the stress scale, at least ``minimum``."""
    return max(minimum, int(round(full * stress_scale())))


@dataclass(frozen=True)
class Reference:
    """The numpy form of a fixture model: ``logits = P[row] + Q[col]``."""

    p: np.ndarray
    q: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    classes: np.ndarray

    def class_index(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.argmax(self.p[r] + self.q[c], axis=-1)

    def probabilities(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        z = (self.p[r] + self.q[c]).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


def load_reference(name: str = "tiny_int") -> Reference:
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as z:
        return Reference(z["P"], z["Q"], z["rows"], z["cols"], z["classes"])


def python_command(module: str) -> list[str]:
    """``python -m <module>`` with this interpreter (works with src/ or an installed mfx)."""
    return [sys.executable, "-m", module]


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            resident = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident * os.sysconf("SC_PAGE_SIZE")
