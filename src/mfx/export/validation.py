"""Labelled pairs to measure an export's accuracy on: a given file, or the checkpoint's own split.

A checkpoint records where its data came from (``source``) and the split settings
(``config["valid_fraction"]``, ``config["seed"]``) but not the validation pairs themselves.
:func:`rebuild_validation` re-reads the source and re-draws the split, then accepts the result
only if the torch model scores *exactly* the validation loss and accuracy the checkpoint
recorded, which a different file, layout or split (``--test``, a moved file) would not.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mfx.data import Ratings, RawRatings, read_ratings
from mfx.errors import DataError
from mfx.synthetic import DEFAULT_SOURCE

log = logging.getLogger(__name__)


def _as_pairs(ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([ratings.rows, ratings.cols], axis=1).astype(np.int64), ratings.labels


def load_validation(
    path: str | os.PathLike[str] | RawRatings, checkpoint: Any
) -> tuple[np.ndarray, np.ndarray, str]:
    """Pairs, class indices and source of a labelled ratings file, mapped with the checkpoint's ids.

    Ratings whose row or column the model has not seen are left out (logged).

    Raises
    ------
    DataError
        For a malformed file or labels that are not the checkpoint's classes.
    """
    raw = path if isinstance(path, RawRatings) else read_ratings(path)
    known = Ratings(
        np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
        checkpoint.row_ids, checkpoint.col_ids, checkpoint.classes,
    )
    ratings = known.like(raw, unknown="drop")
    if ratings.extra.get("unknown"):
        log.warning(
            "%s: left out %d rating(s) whose row or column the model has not seen",
            raw.source, ratings.extra["unknown"],
        )
    if not len(ratings):
        raise DataError(f"{raw.source}: no ratings with ids the model knows")
    pairs, labels = _as_pairs(ratings)
    return pairs, labels, raw.source


def rebuild_validation(checkpoint: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The checkpoint's validation split re-drawn from its source, or ``None`` (logged why)."""
    from mfx.train import prepare_data
    from mfx.train.trainer import evaluate

    config = checkpoint.config or {}
    metrics = checkpoint.metrics or {}
    fraction = config.get("valid_fraction")
    source = checkpoint.source
    if not fraction or "valid_accuracy" not in metrics or "valid_loss" not in metrics:
        log.info("checkpoint has no validation split to rebuild")
        return None
    if config.get("refit"):
        # The final model also learned from the validation ratings: scoring it there would
        # flatter it. The early-stopped model's figures are in the checkpoint's metrics.
        log.info("validation split not rebuilt: the model was refit on it (pass --valid-data)")
        return None
    if source == DEFAULT_SOURCE:
        data = None
    elif source and not source.startswith("builtin:") and Path(source).is_file():
        data = source
    else:
        log.info("validation split not rebuilt: source %r is not a readable file", source)
        return None
    log.info("rebuilding the validation split of %s", source)
    try:
        _, valid = prepare_data(
            data, classes=checkpoint.classes.to_list(), valid_fraction=float(fraction),
            seed=int(config.get("seed", 0)),
        )
    except (DataError, ValueError, OSError) as exc:
        log.info("validation split not rebuilt from %s: %s", source, exc)
        return None
    if (
        valid is None
        or valid.row_ids != checkpoint.row_ids
        or valid.col_ids != checkpoint.col_ids
        or valid.classes != checkpoint.classes
    ):
        log.info("validation split not rebuilt: %s no longer gives the checkpoint's ids", source)
        return None
    import torch

    pairs, labels = _as_pairs(valid)
    loss, accuracy = evaluate(checkpoint.model, torch.from_numpy(pairs), torch.from_numpy(labels))
    recorded_loss = float(metrics["valid_loss"])
    recorded_accuracy = float(metrics["valid_accuracy"])
    # Exact up to summation order (the model may have been evaluated on a GPU).
    if abs(accuracy - recorded_accuracy) > 1e-9 or abs(loss - recorded_loss) > 1e-4 * max(
        1.0, abs(recorded_loss)
    ):
        log.info(
            "validation split not rebuilt: the model scores accuracy %.6f / loss %.6f on it, "
            "the checkpoint recorded %.6f / %.6f (trained with --test or other options?)",
            accuracy, loss, recorded_accuracy, recorded_loss,
        )
        return None
    return pairs, labels, f"split rebuilt from {source}"
