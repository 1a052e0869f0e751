from __future__ import annotations

import numpy as np
import pytest
import torch

from mfx.config import TrainConfig
from mfx.data import Ratings
from mfx.synthetic import planted_ratings
from mfx.train import fit, train
from mfx.train.trainer import evaluate


def _clean_accuracy(result, clean_labels, valid_positions):
    model = result.model
    data = result.valid_data
    pairs = torch.from_numpy(np.stack([data.rows, data.cols], 1))
    with torch.no_grad():
        predicted = model(pairs).argmax(1).numpy()
    truth = data.classes.as_array()
    return float(np.mean(truth[predicted] == clean_labels[valid_positions]))


@pytest.mark.parametrize(
    "arch, bar",
    [
        # The report's additive model represents the planted pattern exactly.
        ("concat", 0.92),
        # The default (ordinal, L2-shrunk for sparse real data) gets most of it.
        ("ordinal", 0.87),
    ],
)
def test_recovers_planted_pattern(arch, bar):
    """On the built-in planted data, held-out cells match the noiseless labels."""
    raw, clean = planted_ratings()
    data = Ratings.from_raw(raw)
    order = np.random.default_rng(0).permutation(len(data))
    valid_positions = np.sort(order[:2000])
    train_positions = np.sort(order[2000:])
    config = (
        TrainConfig(refit=False)
        if arch == "ordinal"
        else TrainConfig(arch="concat", batch_size=1024, lr=0.01, l2=0.0, refit=False)
    )
    result = fit(data.subset(train_positions), data.subset(valid_positions), config)
    assert _clean_accuracy(result, clean, valid_positions) >= bar


def test_refit_learns_from_validation_too():
    result = train(None, TrainConfig(epochs=30))
    assert result.refit
    assert len(result.history["refit_train_loss"]) == result.best_epoch
    assert len(result.train_data) == 16073 + 1786  # training + validation
    assert result.metrics["valid_accuracy"] == pytest.approx(
        result.history["valid_accuracy"][result.best_epoch - 1]
    )


def test_same_seed_same_weights_bit_identical():
    config = TrainConfig(epochs=3)
    first = train(None, config)
    second = train(None, config)
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items()
    ):
        assert torch.equal(a, b), name
    other = train(None, TrainConfig(epochs=3, seed=1))
    assert not torch.equal(other.model.U.weight, first.model.U.weight)


def test_early_stopping_restores_best_epoch():
    result = train(None, TrainConfig(epochs=200, patience=2, lr=0.05, refit=False))
    assert result.epochs_run < 200
    best = result.best_epoch
    assert result.history["valid_loss"][best - 1] == min(result.history["valid_loss"])
    assert result.metrics["valid_loss"] == pytest.approx(result.history["valid_loss"][best - 1])


def test_report_preset_settings_and_classes(tmp_path):
    matrix = np.array([[0, 1, np.nan], [2, np.nan, 3], [1, 1, 0]], dtype=float)
    np.save(tmp_path / "m.npy", matrix)
    result = train(str(tmp_path / "m.npy"), preset="report", config=None)
    assert result.config.dim == 1 and result.config.batch_size == 16
    assert result.config.lr == 0.1 and result.config.epochs == 1000
    assert result.train_data.classes.to_list() == [0, 1, 2, 3, 4, 5]
    assert result.valid_data is None and result.epochs_run == 1000


def test_interrupt_keeps_best_model(monkeypatch):
    calls = []

    def interrupt(report):
        calls.append(report.epoch)
        if report.epoch == 3:
            raise KeyboardInterrupt

    result = train(None, TrainConfig(epochs=50), on_epoch=interrupt)
    assert result.interrupted and result.epochs_run == 3 and calls == [1, 2, 3]
    assert 1 <= result.best_epoch <= 3


def test_evaluate_matches_manual():
    result = train(None, TrainConfig(epochs=2))
    data = result.valid_data
    pairs = torch.from_numpy(np.stack([data.rows, data.cols], 1))
    labels = torch.from_numpy(data.labels)
    loss, acc = evaluate(result.model, pairs, labels, batch=7)
    with torch.no_grad():
        logits = result.model(pairs)
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == labels).float().mean()))
