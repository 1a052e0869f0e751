"""Training with PyTorch: models, the trainer and checkpoints.

This package needs torch (``pip install 'mfx[train]'``); importing it without torch raises
:class:`mfx.errors.MissingDependencyError` with the install hint.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in the runtime-only environment
    from mfx.errors import MissingDependencyError

    raise MissingDependencyError("needs PyTorch: pip install 'mfx[train]'") from exc

from mfx.config import PRESETS, TrainConfig
from mfx.train.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_resume_state,
    save_checkpoint,
    snapshot_payload,
)
from mfx.train.models import ARCHITECTURES, MatrixFactorization, build_model
from mfx.train.trainer import TrainResult, fit, prepare_data, resolve_device, train

__all__ = [
    "ARCHITECTURES",
    "PRESETS",
    "Checkpoint",
    "MatrixFactorization",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "fit",
    "prepare_data",
    "load_checkpoint",
    "load_resume_state",
    "resolve_device",
    "save_checkpoint",
    "snapshot_payload",
    "train",
]
