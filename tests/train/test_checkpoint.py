from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from mfx.config import TrainConfig
from mfx.errors import CheckpointError
from mfx.train import load_checkpoint, save_checkpoint, train


@pytest.fixture(scope="module")
def trained():
    return train(None, TrainConfig(epochs=2))


def test_round_trip_with_weights_only(tmp_path, trained):
    path = save_checkpoint(tmp_path / "m.pt", trained)
    payload = torch.load(path, weights_only=True)
    assert payload["mfx_checkpoint"] == 1
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.classes.to_list() == [1, 2, 3, 4, 5]
    assert loaded.rows == list(range(300)) and loaded.cols == list(range(200))
    assert loaded.config["dim"] == 32
    assert len(loaded.history["train_loss"]) == 2
    assert sum(loaded.prior) == pytest.approx(1.0)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_string_ids_survive(tmp_path):
    from mfx.data import RawRatings

    raw = RawRatings(
        np.array(["a", "b", "a", "c"]),
        np.array(["x", "x", "y", "y"]),
        np.array([1.0, 2.0, 2.0, 1.0]),
    )
    result = train(raw, TrainConfig(epochs=1, valid_fraction=0.0))
    loaded = load_checkpoint(save_checkpoint(tmp_path / "s.pt", result))
    assert loaded.rows == ["a", "b", "c"] and loaded.cols == ["x", "y"]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"mfx_checkpoint": 1, "payload": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused: the file holds Python objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_raw_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_corrupt_and_foreign_files(tmp_path, trained):
    good = save_checkpoint(tmp_path / "m.pt", trained)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a torch checkpoint"):
        load_checkpoint(truncated)
    text = tmp_path / "t.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt or not a torch checkpoint"):
        load_checkpoint(text)
    bare = tmp_path / "bare.pt"
    torch.save(trained.model.state_dict(), bare)
    with pytest.raises(CheckpointError, match="not an mfx checkpoint; a bare state_dict"):
        load_checkpoint(bare)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_failed_write_leaves_previous_file(tmp_path, trained, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", trained)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, trained)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
