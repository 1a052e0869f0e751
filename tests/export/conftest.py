"""Fixtures for the export tests: small models, trained once or built with random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

import torch  # noqa: E402

from mfx.config import TrainConfig  # noqa: E402
from mfx.data import Ratings  # noqa: E402
from mfx.ids import IdMap  # noqa: E402
from mfx.labels import Classes  # noqa: E402
from mfx.synthetic import planted_ratings  # noqa: E402
from mfx.train import Checkpoint, MatrixFactorization, fit, load_checkpoint, save_checkpoint  # noqa: E402


def random_checkpoint(
    n_rows: int = 37,
    n_cols: int = 23,
    dim: int = 3,
    n_classes: int = 5,
    seed: int = 0,
    scale: float = 1.0,
) -> Checkpoint:
    """A concat model with random weights and string row ids (so id order matters)."""
    torch.manual_seed(seed)
    model = MatrixFactorization(n_rows, n_cols, h=dim, c=n_classes)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, scale)
    model.eval()
    return Checkpoint(
        model=model,
        arch="concat",
        classes=Classes.from_list([0.5 * (k + 1) for k in range(n_classes)]),
        row_ids=IdMap(np.array([f"user{k:03d}" for k in range(n_rows)]), "row"),
        col_ids=IdMap(np.arange(n_cols, dtype=np.int64) * 10 + 7, "column"),
        config={},
        history={},
        metrics={"train_accuracy": 0.5, "valid_accuracy": 0.4},
        prior=list(np.full(n_classes, 1.0 / n_classes)),
        source="<random>",
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A checkpoint trained for a few epochs on small planted data (ids 0.., labels 1..5)."""
    raw, _ = planted_ratings(n_rows=60, n_cols=40, density=0.4, seed=1)
    train_data, valid_data = Ratings.from_raw(raw).split(0.15, seed=0)
    config = TrainConfig(
        arch="concat", dim=4, epochs=8, batch_size=128, lr=0.05, patience=None, device="cpu"
    )
    result = fit(train_data, valid_data, config)
    path = tmp_path_factory.mktemp("trained") / "model.pt"
    save_checkpoint(path, result)
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(trained) -> Checkpoint:
    return load_checkpoint(trained)


@pytest.fixture(scope="session")
def random_model() -> Checkpoint:
    return random_checkpoint()


@pytest.fixture(scope="session")
def make_checkpoint():
    """:func:`random_checkpoint`, for tests that need their own sizes or weights."""
    return random_checkpoint
