"""Interrupted runs resume to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import copy

import pytest
import torch
from click.testing import CliRunner

from mfx.cli import train as train_cli
from mfx.config import TrainConfig
from mfx.train import fit, load_checkpoint, prepare_data


def _run(config, stop_at=None, resume=None):
    train_data, valid_data = prepare_data(None, valid_fraction=config.valid_fraction, seed=0)
    snapshots = []

    def keep(snapshot):
        # The state refers to live tensors while training goes on: copy it (the CLI saves it).
        snapshots.append(copy.deepcopy(snapshot))

    def on_epoch(report):
        if stop_at is not None and (report.phase, report.epoch) == stop_at:
            raise KeyboardInterrupt

    result = fit(train_data, valid_data, config, on_epoch, snapshot=keep, resume=resume)
    return result, snapshots


@pytest.mark.parametrize(
    "stop_at", [("train", 4), ("refit", 3)], ids=["during training", "during the refit"]
)
def test_resume_gives_the_uninterrupted_weights(stop_at):
    config = TrainConfig(epochs=12, patience=3)
    reference, _ = _run(config)
    interrupted, snapshots = _run(config, stop_at=stop_at)
    assert interrupted.interrupted
    resumed, _ = _run(config, resume=snapshots[-1].resume)
    assert not resumed.interrupted and resumed.refit == reference.refit
    for key, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert resumed.history == reference.history


def test_cli_resume_after_ctrl_c(tmp_path, monkeypatch):
    data = tmp_path / "r.csv"
    data.write_text("".join(f"{i % 40},{(i * 7) % 30},{1 + i % 5}\n" for i in range(3000)))
    args = ["--data", str(data), "--epochs", "6", "--patience", "0", "-q"]
    runner = CliRunner()
    reference = tmp_path / "ref.pt"
    assert runner.invoke(train_cli.main, [*args, "-o", str(reference)]).exit_code == 0

    original = train_cli.EpochProgress.__call__

    def ctrl_c_at_epoch_3(self, report):
        original(self, report)
        if report.epoch == 3 and report.phase == "train":
            raise KeyboardInterrupt

    monkeypatch.setattr(train_cli.EpochProgress, "__call__", ctrl_c_at_epoch_3)
    out = tmp_path / "run.pt"
    stopped = runner.invoke(train_cli.main, [*args, "-o", str(out)])
    assert stopped.exit_code == 0, stopped.output
    assert f"continue with: mfx-train --resume {out}" in stopped.output
    assert load_checkpoint(out).epochs_run == 2  # the last snapshot, taken after epoch 2
    monkeypatch.setattr(train_cli.EpochProgress, "__call__", original)

    resumed = runner.invoke(train_cli.main, ["--resume", str(out), "-q"])
    assert resumed.exit_code == 0, resumed.output
    final, expected = load_checkpoint(out), load_checkpoint(reference)
    for key, value in expected.model.state_dict().items():
        assert torch.equal(final.model.state_dict()[key], value), key
    again = runner.invoke(train_cli.main, ["--resume", str(out), "-q"])
    assert again.exit_code == 2
    assert "nothing to resume" in again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "ref.pt", "run.pt"]
