"""Pictures of an evaluation and a training run (matplotlib, from the ``plot`` extra).

Each function writes one PNG atomically and returns its path:

* :func:`confusion_heatmap`: the confusion matrix, annotated with counts.
* :func:`true_vs_predicted`: the report's Figure 2 (x = sample index, y = label, a line joining
  each sample's true and predicted point); a large set is shown as a random sample, and the
  title says how many of how many.
* :func:`loss_curve`: the report's Figure 1, training (and validation) loss per epoch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfx._files import atomic_path
from mfx.errors import MissingDependencyError

#: At most this many samples are drawn in :func:`true_vs_predicted`.
MAX_SAMPLES = 200


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            "needs matplotlib for --plots: pip install 'mfx[plot]'"
        ) from None
    return plt


def require() -> None:
    """Fail early, before long work, when matplotlib is missing."""
    _pyplot()


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def confusion_heatmap(
    confusion: np.ndarray, labels: Sequence[Any], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Annotated heatmap: rows true label, columns predicted label."""
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), [str(v) for v in labels])
    ax.set_yticks(range(n), [str(v) for v in labels])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    threshold = confusion.max(initial=0) / 2
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(confusion[i, j])),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if confusion[i, j] > threshold else "black",
            )
    ax.set_title(title or "confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, Path(path))


def true_vs_predicted(
    true_values: np.ndarray,
    predicted_values: np.ndarray,
    path: str | os.PathLike[str],
    labels: Sequence[Any] | None = None,
    seed: int = 0,
) -> Path:
    """The report's Figure 2: true and predicted label per sample, joined by a line."""
    plt = _pyplot()
    n = len(true_values)
    shown = np.arange(n)
    if n > MAX_SAMPLES:
        shown = np.sort(np.random.default_rng(seed).choice(n, MAX_SAMPLES, replace=False))
    x = np.arange(shown.size)
    t, p = np.asarray(true_values)[shown], np.asarray(predicted_values)[shown]
    fig, ax = plt.subplots(figsize=(max(6.0, min(14.0, 0.06 * shown.size + 4)), 4))
    ax.vlines(x, np.minimum(t, p), np.maximum(t, p), colors="0.6", linewidth=0.8)
    ax.scatter(x, t, s=16, label="true", color="tab:blue", zorder=3)
    ax.scatter(x, p, s=16, label="predicted", color="tab:orange", marker="x", zorder=3)
    if labels is not None and all(not isinstance(v, str) for v in labels):
        ax.set_yticks([float(v) for v in labels], [str(v) for v in labels])
    elif labels is not None:
        ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    ax.set_xlabel("sample" + (" (random sample)" if n > MAX_SAMPLES else ""))
    ax.set_ylabel("rating")
    what = f"{shown.size} of {n} samples" if n > MAX_SAMPLES else f"{n} samples"
    ax.set_title(f"true vs predicted label, {what}")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, Path(path))


def loss_curve(history: dict[str, list[float]], path: str | os.PathLike[str]) -> Path:
    """The report's Figure 1: loss per epoch (training, and validation when recorded)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    train = history.get("train_loss", [])
    ax.plot(range(1, len(train) + 1), train, label="training loss")
    valid = history.get("valid_loss", [])
    if valid:
        ax.plot(range(1, len(valid) + 1), valid, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("loss per epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))
