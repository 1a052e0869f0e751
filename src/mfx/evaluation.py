"""Evaluation figures for a classifier's predictions (numpy only).

:func:`evaluate` turns true class indices and predicted probabilities into an
:class:`Evaluation`: accuracy, macro-F1, per-class precision / recall / F1 / support, the
confusion matrix (rows: true label, columns: predicted label, like the report's Table 1),
log-loss, and for numeric labels MAE and RMSE of the predicted label and of the expected value.

``Evaluation.to_dict()`` is the ``mfx-eval --json`` schema (:data:`JSON_SCHEMA_VERSION`)::

    {
      "schema": 1,
      "model": str, "data": str,
      "n_pairs": int,            # pairs evaluated
      "n_unknown": int,          # pairs whose row or column id was not in training
      "unknown_policy": "error" | "prior" | "drop",
      "classes": [label, ...],   # class-index order
      "accuracy": float, "macro_f1": float, "log_loss": float,
      "per_class": [{"label": label, "precision": float, "recall": float, "f1": float,
                     "support": int}, ...],
      "confusion": [[int, ...], ...],   # [true][predicted]
      "mae_label": float | null, "rmse_label": float | null,        # numeric labels only
      "mae_expected": float | null, "rmse_expected": float | null
    }
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfx import metrics
from mfx.errors import DataError
from mfx.labels import Classes

JSON_SCHEMA_VERSION = 1


@dataclass
class Evaluation:
    """All figures of one evaluation; see the module docstring for the JSON form."""

    classes: Classes
    n_pairs: int
    accuracy: float
    macro_f1: float
    log_loss: float
    confusion: np.ndarray
    per_class: dict[str, np.ndarray]
    mae_label: float | None = None
    rmse_label: float | None = None
    mae_expected: float | None = None
    rmse_expected: float | None = None
    n_unknown: int = 0
    unknown_policy: str = "error"
    model: str = ""
    data: str = ""
    true_values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    predicted_values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON schema."""

        def number(value: float | None) -> float | None:
            return None if value is None or math.isnan(value) else float(value)

        labels = self.classes.to_list()
        return {
            "schema": JSON_SCHEMA_VERSION,
            "model": self.model,
            "data": self.data,
            "n_pairs": int(self.n_pairs),
            "n_unknown": int(self.n_unknown),
            "unknown_policy": self.unknown_policy,
            "classes": labels,
            "accuracy": number(self.accuracy),
            "macro_f1": number(self.macro_f1),
            "log_loss": number(self.log_loss),
            "per_class": [
                {
                    "label": label,
                    "precision": float(self.per_class["precision"][k]),
                    "recall": float(self.per_class["recall"][k]),
                    "f1": float(self.per_class["f1"][k]),
                    "support": int(self.per_class["support"][k]),
                }
                for k, label in enumerate(labels)
            ],
            "confusion": self.confusion.astype(int).tolist(),
            "mae_label": number(self.mae_label),
            "rmse_label": number(self.rmse_label),
            "mae_expected": number(self.mae_expected),
            "rmse_expected": number(self.rmse_expected),
        }

    def format_text(self) -> str:
        """A readable report: headline figures, per-class table, confusion matrix."""
        labels = [str(v) for v in self.classes.to_list()]
        correct = int(np.trace(self.confusion))
        lines = [
            f"pairs: {self.n_pairs}"
            + (
                f" ({self.n_unknown} with an unknown id, policy {self.unknown_policy})"
                if self.n_unknown
                else ""
            ),
            f"accuracy: {self.accuracy:.4f} ({correct} of {self.n_pairs} correct)",
            f"macro-F1: {self.macro_f1:.4f}",
            f"log-loss: {self.log_loss:.4f}",
        ]
        if self.mae_label is not None:
            lines.append(
                f"MAE / RMSE of the predicted label: {self.mae_label:.4f} / {self.rmse_label:.4f}"
            )
            lines.append(
                f"MAE / RMSE of the expected value:  {self.mae_expected:.4f} / "
                f"{self.rmse_expected:.4f}"
            )
        width = max(5, *(len(x) for x in labels))
        lines += ["", f"{'label':>{width}}  precision  recall      f1  support"]
        for k, label in enumerate(labels):
            lines.append(
                f"{label:>{width}}  {self.per_class['precision'][k]:9.4f}  "
                f"{self.per_class['recall'][k]:6.4f}  {self.per_class['f1'][k]:6.4f}  "
                f"{int(self.per_class['support'][k]):7d}"
            )
        lines += ["", "confusion matrix (rows: true label, columns: predicted label)"]
        cell = max(width, len(str(int(self.confusion.max(initial=0)))) + 1)
        lines.append(" " * (width + 3) + "".join(f"{x:>{cell}}" for x in labels))
        for k, label in enumerate(labels):
            row = "".join(f"{int(v):>{cell}}" for v in self.confusion[k])
            lines.append(f"{label:>{width}} | {row}")
        return "\n".join(lines)


def evaluate(
    true_index: np.ndarray,
    probabilities: np.ndarray,
    classes: Classes,
    *,
    n_unknown: int = 0,
    unknown_policy: str = "error",
    model: str = "",
    data: str = "",
) -> Evaluation:
    """Figures for true class indices against predicted probabilities ``[n, classes]``.

    The predicted class is the most probable one; the expected value (numeric labels) is the
    probability-weighted label.
    """
    true_index = np.asarray(true_index, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (true_index.size, len(classes)):
        raise ValueError(
            f"probabilities must have shape ({true_index.size}, {len(classes)}), "
            f"got {probabilities.shape}"
        )
    predicted = probabilities.argmax(axis=1)
    confusion = metrics.confusion_matrix(true_index, predicted, len(classes))
    result = Evaluation(
        classes=classes,
        n_pairs=int(true_index.size),
        accuracy=metrics.accuracy(true_index, predicted),
        macro_f1=metrics.macro_f1(confusion),
        log_loss=metrics.log_loss(true_index, probabilities),
        confusion=confusion,
        per_class=metrics.per_class(confusion),
        n_unknown=n_unknown,
        unknown_policy=unknown_policy,
        model=model,
        data=data,
    )
    if classes.numeric:
        values = classes.as_array()
        true_values, predicted_values = values[true_index], values[predicted]
        expected = probabilities @ values
        result.mae_label = metrics.mae(true_values, predicted_values)
        result.rmse_label = metrics.rmse(true_values, predicted_values)
        result.mae_expected = metrics.mae(true_values, expected)
        result.rmse_expected = metrics.rmse(true_values, expected)
        result.true_values, result.predicted_values = true_values, predicted_values
    else:
        result.true_values = true_index.astype(np.float64)
        result.predicted_values = predicted.astype(np.float64)
    return result


#: ``--unknown`` choices for test pairs whose row or column was not in training.
UNKNOWN_POLICIES = ("error", "prior", "drop")


def evaluate_model(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    format: str = "auto",
    header: bool | None = None,
    unknown: str = "error",
    providers: Any = "cpu",
) -> Evaluation:
    """Evaluate an ``.onnx`` file (through :mod:`mfx.runtime`, no torch) or a checkpoint.

    Test pairs with a row or column id not seen in training are counted and handled by
    ``unknown``: ``"error"`` refuses them (naming how many and the first few), ``"prior"``
    predicts the training class frequencies for them, ``"drop"`` leaves them out.
    """
    from mfx.data import describe_unseen, map_raw, read_ratings

    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}")
    scorer = _scorer(model, providers)
    raw = read_ratings(data, format, header)
    rows, cols, true_index, unseen = map_raw(raw, scorer.row_ids, scorer.col_ids, scorer.classes)
    n_unknown = int(unseen.sum())
    if n_unknown and unknown == "error":
        where, shown = describe_unseen(raw, unseen)
        raise DataError(
            f"{where}{n_unknown} of {len(raw)} pair(s) have a row or column id not in the "
            f"training data, first {shown}; pass --unknown prior or --unknown drop"
        )
    known = ~unseen
    probabilities = np.empty((len(raw), len(scorer.classes)), dtype=np.float64)
    if known.any():
        probabilities[known] = scorer.predict_proba(rows[known], cols[known])
    probabilities[unseen] = scorer.prior
    if unknown == "drop":
        probabilities, true_index = probabilities[known], true_index[known]
    return evaluate(
        true_index,
        probabilities,
        scorer.classes,
        n_unknown=n_unknown,
        unknown_policy=unknown,
        model=str(model),
        data=str(data),
    )


@dataclass
class _Scorer:
    classes: Classes
    row_ids: Any
    col_ids: Any
    prior: np.ndarray
    predict_proba: Any
    history: dict[str, list[float]] | None = None


def _scorer(model: str | os.PathLike[str], providers: Any) -> _Scorer:
    """Index-level probabilities from an ONNX file or a checkpoint, by file extension."""
    if str(model).lower().endswith(".onnx"):
        from mfx.runtime import Predictor

        predictor = Predictor(model, providers=providers)
        info = predictor.metadata
        return _Scorer(
            info.classes,
            info.row_ids,
            info.col_ids,
            np.asarray(info.prior, dtype=np.float64),
            lambda r, c: predictor.predict_proba(r, c, index=True),
        )
    from mfx.cli._common import import_train

    train = import_train("mfx-eval on a checkpoint")
    checkpoint = train.load_checkpoint(model)
    return _Scorer(
        checkpoint.classes,
        checkpoint.row_ids,
        checkpoint.col_ids,
        np.asarray(checkpoint.prior, dtype=np.float64),
        checkpoint.predict_proba,
        history=checkpoint.history,
    )
