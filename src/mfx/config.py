"""Training settings (torch-free, so the CLI can show defaults without importing torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Registered architecture names; :data:`mfx.train.models.ARCHITECTURES` implements each.
ARCH_NAMES = ("concat", "product", "ordinal")


#: The automatic batch size (``TrainConfig.batch_size = None``): bounds and steps per epoch.
AUTO_BATCH_MIN, AUTO_BATCH_MAX, AUTO_STEPS_PER_EPOCH = 4096, 65536, 256


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    The defaults were chosen on ml-latest-small's training part (validation inside it only; see
    benchmarks/RESULTS.md): the ordinal model, h=32, lazy Adam (SparseAdam for the tables) at
    lr 0.02 and batch 4,096 (larger for large data, see :meth:`batch_for`), per-example L2
    0.05, early stopping with patience 3, then a refit on training + validation data for the
    best epoch count.

    ``fused`` (with ``sparse``) trains the ordinal model with :mod:`mfx.train.fused`'s
    closed-form step instead of autograd and SparseAdam: the same loss, gradients and lazy Adam
    update, several times faster. The other architectures always use autograd.
    """

    arch: str = "ordinal"
    dim: int = 32
    epochs: int = 40
    batch_size: int | None = None
    lr: float = 0.02
    weight_decay: float = 0.0
    l2: float = 0.05
    patience: int | None = 3
    valid_fraction: float = 0.1
    refit: bool = True
    sparse: bool = True
    fused: bool = True
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.arch not in ARCH_NAMES:
            raise ValueError(
                f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCH_NAMES)}"
            )
        for name in ("dim", "epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.l2 < 0 or self.weight_decay < 0:
            raise ValueError("l2 and weight_decay must not be negative")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")

    def batch_for(self, n_ratings: int) -> int:
        """The batch size for ``n_ratings`` training ratings.

        ``batch_size`` when set. Otherwise 4,096 (tuned on ml-latest-small) up to about a
        million ratings; beyond, the power of two that keeps about 256 steps per epoch, at most
        65,536: a step's fixed cost is then spread over more ratings, and on the
        20-million-rating benchmark data the larger batches reached the same or better
        validation accuracy per epoch (benchmarks/RESULTS.md).
        """
        if self.batch_size is not None:
            return self.batch_size
        steps = max(1, n_ratings // AUTO_STEPS_PER_EPOCH)
        size = 1 << (steps.bit_length() - 1)
        return min(max(size, AUTO_BATCH_MIN), AUTO_BATCH_MAX)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Named settings; ``report`` is the report's experiment exactly.
PRESETS: dict[str, dict[str, Any]] = {
    "report": dict(
        arch="concat",
        dim=1,
        epochs=1000,
        batch_size=16,
        lr=0.1,
        weight_decay=0.0,
        l2=0.0,
        patience=None,
        valid_fraction=0.0,
        refit=False,
        sparse=False,
    ),
}

#: The report's class count: labels 0..5.
REPORT_CLASSES = [0, 1, 2, 3, 4, 5]
