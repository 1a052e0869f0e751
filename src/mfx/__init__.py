"""mfx: matrix-factorization classifiers, from PyTorch training to ONNX on the edge.

Importing :mod:`mfx` is cheap: torch is only imported by :mod:`mfx.train` and :mod:`mfx.export`,
and :mod:`mfx.runtime` needs only numpy and onnxruntime.
"""

__version__ = "0.1.0"
