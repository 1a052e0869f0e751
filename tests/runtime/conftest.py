"""Fixtures for the runtime tests: the committed ONNX files in tests/data and a numpy reference.

Nothing here needs torch or onnx; ``tests/data/make_fixtures.py`` built the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mfx.runtime import Predictor

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class Reference:
    """The weights and ids a fixture was built from, and the answers they imply."""

    p: np.ndarray
    q: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    classes: list[str]

    def logits(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.p[r] + self.q[c]

    def probabilities(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        z = self.logits(r, c).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def class_index(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(r, c), axis=-1)


def model_path(name: str) -> Path:
    return DATA / f"{name}.onnx"


def load_reference(name: str) -> Reference:
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as z:
        return Reference(
            z["P"], z["Q"], z["rows"], z["cols"], [str(c) for c in z["classes"].tolist()]
        )


@pytest.fixture(scope="session")
def int_model() -> Predictor:
    """Non-contiguous integer ids, half-star classes 0.5..5.0."""
    return Predictor(model_path("tiny_int"), providers="cpu")


@pytest.fixture(scope="session")
def str_model() -> Predictor:
    """String ids, classes dislike/like/meh."""
    return Predictor(model_path("tiny_str"), providers="cpu")


@pytest.fixture(scope="session")
def stars_model() -> Predictor:
    """Ids 0..n-1, integer classes 1..5."""
    return Predictor(model_path("tiny_stars"), providers="cpu")


@pytest.fixture(scope="session")
def int_ref() -> Reference:
    return load_reference("tiny_int")


@pytest.fixture(scope="session")
def str_ref() -> Reference:
    return load_reference("tiny_str")


@pytest.fixture(scope="session")
def stars_ref() -> Reference:
    return load_reference("tiny_stars")
