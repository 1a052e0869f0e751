"""Classification and rating metrics (numpy only)."""

from __future__ import annotations

import numpy as np


def accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of exact matches."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    if true.size == 0:
        return float("nan")
    return float(np.mean(true == predicted))


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]`` as int64 ``[n_classes, n_classes]``."""
    true = np.asarray(true, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def per_class(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class; 0 where undefined (no predictions)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the classes that occur in the true labels or the predictions."""
    confusion = np.asarray(confusion)
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    if not present.any():
        return float("nan")
    return float(per_class(confusion)["f1"][present].mean())


def log_loss(true: np.ndarray, probabilities: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true class."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(true, dtype=np.int64)
    if true.size == 0:
        return float("nan")
    picked = probabilities[np.arange(true.size), true]
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0))))


def mae(true_values: np.ndarray, predicted_values: np.ndarray) -> float:
    diff = np.asarray(true_values, dtype=np.float64) - np.asarray(
        predicted_values, dtype=np.float64
    )
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


def rmse(true_values: np.ndarray, predicted_values: np.ndarray) -> float:
    diff = np.asarray(true_values, dtype=np.float64) - np.asarray(
        predicted_values, dtype=np.float64
    )
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else float("nan")
