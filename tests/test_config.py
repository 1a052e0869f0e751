"""Training settings: validation and the automatic batch size."""

from __future__ import annotations

import pytest

from mfx.config import PRESETS, TrainConfig


@pytest.mark.parametrize(
    ("n_ratings", "batch"),
    [
        (1, 4096),
        (90_752, 4096),  # ml-latest-small's training part: the tuned 4,096
        (1_048_575, 4096),
        (2_097_152, 8192),
        (4_194_303, 8192),
        (4_194_304, 16384),
        (18_000_000, 65536),  # the 20M benchmark: about 275 steps per epoch
        (10**9, 65536),
    ],
)
def test_automatic_batch_keeps_about_256_steps_between_bounds(n_ratings, batch):
    assert TrainConfig().batch_for(n_ratings) == batch


def test_an_explicit_batch_size_is_kept():
    assert TrainConfig(batch_size=100).batch_for(18_000_000) == 100
    assert TrainConfig(**PRESETS["report"]).batch_for(10**9) == 16


@pytest.mark.parametrize("bad", [0, -5])
def test_batch_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        TrainConfig(batch_size=bad)


def test_round_trip_through_a_dict():
    config = TrainConfig(batch_size=None, fused=False)
    assert TrainConfig(**config.to_dict()) == config
