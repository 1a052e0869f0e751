"""Serving mfx models with numpy and onnxruntime only (no torch, no onnx package).

>>> from mfx.runtime import Predictor
>>> predictor = Predictor("model.onnx")              # doctest: +SKIP
>>> predictor.predict(1, 31)                         # raw row id, raw column id  # doctest: +SKIP
>>> predictor.predict_proba([1, 2], [31, 1029])      # float32 [2, classes]  # doctest: +SKIP
>>> predictor.recommend(1, k=10, exclude=[31])       # (cols, scores)  # doctest: +SKIP

Labels for a small matrix come from a table of every pair's class index once it is filled
(``class_table="auto"``, the default, fills it as batched calls come; ``"eager"`` at load;
``"off"`` never), with exactly the graph's answers; see :class:`Predictor`.

The same code runs on the ``onnxruntime`` (CPU) and ``onnxruntime-gpu`` wheels; install one,
never both. ``Predictor(..., providers="cuda")`` insists on the GPU, ``"auto"`` uses it when
present, and :attr:`Predictor.providers` tells which one is in use.
"""

from __future__ import annotations

from mfx.runtime.predictor import (
    CLASS_TABLE_CHOICES,
    CLASS_TABLE_MAX_BYTES,
    DEFAULT_CHUNK_SIZE,
    UNKNOWN_POLICIES,
    Prediction,
    Predictor,
    Recommendations,
)
from mfx.runtime.providers import available_providers, cuda_available, resolve_providers

__all__ = [
    "CLASS_TABLE_CHOICES",
    "CLASS_TABLE_MAX_BYTES",
    "DEFAULT_CHUNK_SIZE",
    "UNKNOWN_POLICIES",
    "Prediction",
    "Predictor",
    "Recommendations",
    "available_providers",
    "cuda_available",
    "resolve_providers",
]
