"""Export to ONNX: graph folding, fp16/int8 weights, parity verification.

This package needs torch and onnx (``pip install 'mfx[train]'``); importing it without them
raises :class:`mfx.errors.MissingDependencyError` with the install hint.

>>> from mfx.export import export_onnx
>>> report = export_onnx("mfx-model.pt", "model.onnx", precision="fp16")  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in the runtime-only environment
    from mfx.errors import MissingDependencyError

    raise MissingDependencyError("needs PyTorch: pip install 'mfx[train]'") from exc
try:
    import onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in the runtime-only environment
    from mfx.errors import MissingDependencyError

    raise MissingDependencyError("needs onnx: pip install 'mfx[train]'") from exc

from mfx.export.graphs import (
    DEFAULT_OPSET,
    FOLDED_FORMS,
    MIN_OPSET,
    additive_graph,
    build_graph,
    literal_graph,
)
from mfx.export.onnx_export import EMBED_LIMIT, ExportReport, check_output, export_onnx
from mfx.export.precision import PRECISIONS, compress
from mfx.export.state_dict import checkpoint_from_state_dict
from mfx.export.verify import DEFAULT_BATCH_SIZES, Parity, ValidationFigures

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_OPSET",
    "EMBED_LIMIT",
    "FOLDED_FORMS",
    "MIN_OPSET",
    "PRECISIONS",
    "ExportReport",
    "Parity",
    "ValidationFigures",
    "additive_graph",
    "build_graph",
    "check_output",
    "checkpoint_from_state_dict",
    "compress",
    "export_onnx",
    "literal_graph",
]
