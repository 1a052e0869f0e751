"""The project's exceptions: every failure a user can cause maps to one of these."""

from __future__ import annotations


class MfxError(Exception):
    """Base class for errors mfx reports to the user as one line."""


class DataError(MfxError, ValueError):
    """A ratings or pairs file (or array) is malformed; the message names file and line."""


class CheckpointError(MfxError):
    """A checkpoint is missing, corrupt, unsafe or not an mfx checkpoint."""


class ModelFormatError(MfxError):
    """An ONNX file is missing, corrupt, unsafe or not an mfx model."""


class UnknownIdError(MfxError, KeyError):
    """A raw row or column id was not part of the training data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VerificationError(MfxError):
    """An exported model does not compute what the torch model computes."""


class DeviceError(MfxError):
    """The requested compute device or execution provider is not available."""


class MissingDependencyError(MfxError):
    """An optional dependency (torch, onnx, matplotlib) is needed but not installed."""


class WorkerError(MfxError):
    """A worker process stopped (killed, out of memory, crashed) before finishing its chunk."""
