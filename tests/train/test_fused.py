"""The fused ordinal step computes what autograd and SparseAdam compute, only faster."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from mfx.config import TrainConfig
from mfx.data import Ratings, RawRatings
from mfx.train import fit
from mfx.train.fused import FusedOrdinal, supports
from mfx.train.models import build_model

L2, LR = 0.05, 0.02


def _model(n_rows: int, n_cols: int, dim: int, n_classes: int, scale: float = 0.5) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("ordinal", n_rows, n_cols, dim, n_classes, sparse=True)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)
    return model


def _autograd_steps(model, batches):
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    optimizers = [
        torch.optim.SparseAdam(tables, lr=LR),
        torch.optim.Adam([model.first_cut, model.gaps], lr=LR),
    ]
    losses = []
    for rows, cols, labels in batches:
        for optimizer in optimizers:
            optimizer.zero_grad()
        logits, penalty = model.forward_with_penalty(torch.stack([rows, cols], 1))
        loss = nn.functional.cross_entropy(logits, labels)
        (loss + L2 * penalty).backward()
        for optimizer in optimizers:
            optimizer.step()
        losses.append(float(loss.detach()) * rows.shape[0])
    return losses


def _fused_steps(model, batches):
    fused = FusedOrdinal(model, lr=LR, l2=L2)
    adam = torch.optim.Adam([model.first_cut, model.gaps], lr=LR)
    losses = []
    for rows, cols, labels in batches:
        adam.zero_grad()
        losses.append(float(fused.step(rows, cols, labels)))
        adam.step()
    fused.write_back()
    return losses


def _batches(n_rows, n_cols, n_classes, size, count, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randint(0, n_rows, (size,), generator=generator),
            torch.randint(0, n_cols, (size,), generator=generator),
            torch.randint(0, n_classes, (size,), generator=generator),
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_steps_match_autograd_and_sparse_adam(n_classes):
    # Few rows and columns, so every batch repeats many of them.
    reference = _model(30, 20, 8, n_classes)
    fused_model = copy.deepcopy(reference)
    batches = _batches(30, 20, n_classes, size=257, count=6)
    expected = _autograd_steps(reference, batches)
    got = _fused_steps(fused_model, batches)
    assert got == pytest.approx(expected, rel=1e-5)
    for (name, want), (_, have) in zip(
        reference.state_dict().items(), fused_model.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(have.numpy(), want.numpy(), atol=2e-6, err_msg=name)


def test_extreme_scores_stay_finite_and_match():
    # Large factors push the scores far past the outer cut-points, where P(label) underflows
    # and the loss is large: the log-domain label term must still be exact.
    reference = _model(12, 9, 4, 10, scale=4.0)
    fused_model = copy.deepcopy(reference)
    batches = _batches(12, 9, 10, size=100, count=3, seed=3)
    expected = _autograd_steps(reference, batches)
    got = _fused_steps(fused_model, batches)
    assert np.all(np.isfinite(got))
    assert max(expected) > 20  # the test reaches the regime it is about
    assert got == pytest.approx(expected, rel=1e-5)
    for (name, want), (_, have) in zip(
        reference.state_dict().items(), fused_model.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(have.numpy(), want.numpy(), atol=1e-5, err_msg=name)


def test_state_round_trip_continues_identically():
    model = _model(30, 20, 8, 10)
    twin = copy.deepcopy(model)
    batches = _batches(30, 20, 10, size=64, count=4)
    fused = FusedOrdinal(model, lr=LR, l2=L2)
    for rows, cols, labels in batches[:2]:
        fused.step(rows, cols, labels)
    fused.write_back()
    state = copy.deepcopy(fused.state_dict())
    twin.load_state_dict(model.state_dict())
    resumed = FusedOrdinal(twin, lr=LR, l2=L2)
    resumed.load_state_dict(state)
    for rows, cols, labels in batches[2:]:
        assert torch.equal(fused.step(rows, cols, labels), resumed.step(rows, cols, labels))
    assert torch.equal(fused.rows, resumed.rows) and torch.equal(fused.cols, resumed.cols)


def test_only_the_ordinal_model_is_fused():
    assert supports(build_model("ordinal", 3, 3, 2, 4))
    for arch in ("concat", "product"):
        model = build_model(arch, 3, 3, 2, 4)
        assert not supports(model)
        with pytest.raises(TypeError, match="OrdinalProduct"):
            FusedOrdinal(model, lr=LR, l2=L2)


def _ratings(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, 60, n), rng.integers(0, 40, n)
    labels = np.clip(np.round((rows % 5 + cols % 3) / 1.5), 0, 4) + 1
    return Ratings.from_raw(RawRatings(rows, cols, labels.astype(float)))


def test_fit_fused_and_autograd_reach_the_same_model():
    train, valid = _ratings().split(0.2, seed=0)
    base = dict(epochs=4, batch_size=256, patience=None, refit=False, device="cpu")
    fused = fit(train, valid, TrainConfig(**base))
    slow = fit(train, valid, TrainConfig(fused=False, **base))
    assert fused.history["train_loss"] == pytest.approx(slow.history["train_loss"], rel=1e-4)
    assert fused.metrics["valid_accuracy"] == pytest.approx(slow.metrics["valid_accuracy"])
    for (name, want), (_, have) in zip(
        slow.model.state_dict().items(), fused.model.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(have.numpy(), want.numpy(), atol=1e-4, err_msg=name)


def test_fused_fit_is_deterministic():
    train, valid = _ratings(seed=1).split(0.2, seed=0)
    config = TrainConfig(epochs=2, batch_size=128, patience=None, refit=False, device="cpu")
    first = fit(train, valid, config).model.state_dict()
    second = fit(train, valid, config).model.state_dict()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def _snapshots(train, valid, config):
    states = []

    def keep(snapshot):
        states.append(copy.deepcopy(snapshot.resume))

    result = fit(train, valid, config, snapshot=keep)
    return result, states


@pytest.mark.parametrize("written_fused", [False, True], ids=["sparseadam-state", "fused-state"])
def test_resume_continues_on_the_path_that_wrote_the_state(written_fused):
    # A checkpoint from before the fused step holds SparseAdam's state and no "fused" setting
    # (so it now reads as fused=True); either way round, the run goes on as it started.
    train, valid = _ratings(seed=2).split(0.2, seed=0)
    base = dict(epochs=3, batch_size=256, patience=None, refit=False, device="cpu")
    written = TrainConfig(fused=written_fused, **base)
    whole, states = _snapshots(train, valid, written)
    resumed = fit(train, valid, TrainConfig(fused=not written_fused, **base), resume=states[0])
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_refit_keeps_the_batch_early_stopping_counted_epochs_in(monkeypatch):
    # Shrink the automatic batch's scale so that a small dataset straddles a power of two:
    # 1,200 ratings -> 960 training ones (batch 64) and 1,200 for the refit (batch 128).
    import mfx.config

    monkeypatch.setattr(mfx.config, "AUTO_STEPS_PER_EPOCH", 8)
    monkeypatch.setattr(mfx.config, "AUTO_BATCH_MIN", 16)
    config = TrainConfig(epochs=2, patience=None, refit=True, valid_fraction=0.2, device="cpu")
    train, valid = _ratings(seed=3, n=1200).split(0.2, seed=0)
    assert config.batch_for(len(train)) == 64 and config.batch_for(1200) == 128
    seen = []
    original = FusedOrdinal.step

    def counting(self, rows, cols, labels, sync=None):
        seen.append(rows.shape[0])
        return original(self, rows, cols, labels, sync)

    monkeypatch.setattr(FusedOrdinal, "step", counting)
    result = fit(train, valid, config)
    assert result.refit
    assert max(seen) == 64
    assert sum(seen) == 2 * len(train) + 2 * (len(train) + len(valid))
