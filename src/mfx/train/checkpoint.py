"""Checkpoints: one file of tensors and plain data, loaded with ``weights_only=True``.

Layout (a dict, ``format`` versioned by :data:`CHECKPOINT_FORMAT`)::

    mfx_checkpoint  int      layout version
    mfx_version     str
    arch            str      registry name
    shape           dict     n_rows, n_cols, dim, n_classes
    config          dict     TrainConfig as a dict
    state_dict      dict     tensors
    rows, cols      tensor (int64 ids) or list[str]   raw ids in index order
    classes         list     label values in class-index order
    prior           list     training class frequencies
    history         dict     per-epoch train_loss, valid_loss, valid_accuracy
    metrics         dict     final train/valid loss and accuracy
    best_epoch, epochs_run, interrupted, source, valid (split positions, optional)

Nothing in it needs unpickling of arbitrary objects; a file that does is refused.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import mfx
from mfx._files import atomic_path
from mfx.errors import CheckpointError
from mfx.ids import IdMap
from mfx.labels import Classes
from mfx.train.models import ARCHITECTURES, build_model

CHECKPOINT_FORMAT = 1


def _ids_to_payload(ids: IdMap) -> torch.Tensor | list[str]:
    return torch.from_numpy(ids.ids.copy()) if ids.kind == "int" else ids.to_list()


def _ids_from_payload(value: Any, axis: str) -> IdMap:
    if isinstance(value, torch.Tensor):
        return IdMap(value.numpy(), axis)
    return IdMap(np.asarray(list(value), dtype=str), axis)


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``model`` in eval mode plus what describes it."""

    model: nn.Module
    arch: str
    classes: Classes
    row_ids: IdMap
    col_ids: IdMap
    config: dict[str, Any]
    history: dict[str, list[float]]
    metrics: dict[str, float] = field(default_factory=dict)
    prior: list[float] = field(default_factory=list)
    source: str = ""
    version: str = ""
    best_epoch: int = 0
    epochs_run: int = 0
    path: str = ""

    @torch.no_grad()
    def predict_proba(self, rows: np.ndarray, cols: np.ndarray, batch: int = 1 << 16) -> np.ndarray:
        """Softmax probabilities ``[n, classes]`` (float32) for row and column indices."""
        pairs = torch.from_numpy(np.stack([np.asarray(rows), np.asarray(cols)], 1).astype(np.int64))
        parts = [
            torch.softmax(self.model(pairs[start : start + batch]), dim=1)
            for start in range(0, pairs.shape[0], batch)
        ]
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.classes)), np.float32)

    @property
    def rows(self) -> list[Any]:
        """Raw row ids in index order."""
        return self.row_ids.to_list()

    @property
    def cols(self) -> list[Any]:
        """Raw column ids in index order."""
        return self.col_ids.to_list()


def _payload(
    config: Any,
    train: Any,
    state_dict: dict[str, torch.Tensor],
    history: dict[str, list[float]],
    metrics: dict[str, float],
    *,
    best_epoch: int,
    epochs_run: int,
    interrupted: bool,
    refit: bool,
    run: dict[str, Any] | None,
) -> dict[str, Any]:
    """The checkpoint layout (see the module docstring) for a model trained on ``train``."""
    counts = train.class_counts().astype(np.float64)
    return {
        "mfx_checkpoint": CHECKPOINT_FORMAT,
        "mfx_version": mfx.__version__,
        "arch": config.arch,
        "shape": {
            "n_rows": train.n_rows,
            "n_cols": train.n_cols,
            "dim": config.dim,
            "n_classes": len(train.classes),
        },
        "config": config.to_dict(),
        "state_dict": state_dict,
        "rows": _ids_to_payload(train.row_ids),
        "cols": _ids_to_payload(train.col_ids),
        "classes": train.classes.to_list(),
        "prior": (counts / counts.sum()).tolist(),
        "history": {k: list(map(float, v)) for k, v in history.items()},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "best_epoch": int(best_epoch),
        "epochs_run": int(epochs_run),
        "interrupted": bool(interrupted),
        "refit": bool(refit),
        "source": str(train.source),
        "run": dict(run or {}),
    }


def checkpoint_payload(result: Any, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict that :func:`save_checkpoint` writes for a :class:`~mfx.train.TrainResult`.

    ``run`` records how the data was given (path, format, header, classes, test file), so
    ``mfx-train --resume`` can read it again.
    """
    state_dict = {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}
    return _payload(
        result.config,
        result.train_data,
        state_dict,
        result.history,
        result.metrics,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        interrupted=result.interrupted,
        refit=getattr(result, "refit", False),
        run=run,
    )


def snapshot_payload(
    snapshot: Any, train_data: Any, config: Any, run: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A checkpoint of a run in progress: the best model so far plus the state to resume from.

    It loads like any checkpoint (``load_checkpoint``) and is marked ``interrupted``; its
    ``resume`` entry holds the training state for :func:`mfx.train.fit`'s ``resume``.
    """
    history = snapshot.resume["history"]
    best_epoch = int(snapshot.resume["best_epoch"])
    metrics: dict[str, float] = {}
    if history.get("valid_loss") and best_epoch:
        metrics["valid_loss"] = float(history["valid_loss"][best_epoch - 1])
        metrics["valid_accuracy"] = float(history["valid_accuracy"][best_epoch - 1])
    if snapshot.phase == "refit":
        first = snapshot.resume["first"]
        history, best_epoch = first["history"], int(first["best_epoch"])
        metrics = {k: float(v) for k, v in first["metrics"].items()}
    payload = _payload(
        config,
        train_data,
        snapshot.state_dict,
        history,
        metrics,
        best_epoch=best_epoch,
        epochs_run=int(snapshot.resume["epoch"]),
        interrupted=True,
        refit=False,
        run=run,
    )
    payload["resume"] = snapshot.resume
    return payload


def load_resume_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw payload of a checkpoint that can be resumed; a clear error otherwise."""
    payload = _load_payload(path)
    if not isinstance(payload, dict) or "mfx_checkpoint" not in payload:
        raise CheckpointError(f"{path}: not an mfx checkpoint")
    if "resume" not in payload:
        raise CheckpointError(
            f"{path}: nothing to resume: this run finished (or saved no training state)"
        )
    return payload


def save_checkpoint(
    path: str | os.PathLike[str], result: Any, run: dict[str, Any] | None = None
) -> Path:
    """Write ``result`` (a TrainResult or a payload dict) atomically to ``path``."""
    payload = result if isinstance(result, dict) else checkpoint_payload(result, run)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _load_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{path}: checkpoint not found; train one with mfx-train")
    if p.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{path}: refused: the file holds Python objects that loading would execute, not "
            f"only tensors and plain data ({first[:160]}); an mfx checkpoint never does"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: corrupt or not a torch checkpoint ({first[:160]})"
        ) from None
    return payload


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load an mfx checkpoint safely (``weights_only=True``); the model comes in eval mode.

    Raises
    ------
    CheckpointError
        For a missing, corrupt, unsafe (pickled code) or non-mfx file.
    """
    payload = _load_payload(path)
    if not isinstance(payload, dict) or "mfx_checkpoint" not in payload:
        hint = (
            "; a bare state_dict can be exported with mfx-export --state-dict"
            if isinstance(payload, dict)
            and all(isinstance(v, torch.Tensor) for v in payload.values())
            else ""
        )
        raise CheckpointError(f"{path}: not an mfx checkpoint{hint}")
    version = payload["mfx_checkpoint"]
    if version != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint layout {version!r} is not supported by mfx {mfx.__version__} "
            f"(supports {CHECKPOINT_FORMAT})"
        )
    try:
        arch = payload["arch"]
        shape = payload["shape"]
        if arch not in ARCHITECTURES:
            raise CheckpointError(f"{path}: unknown architecture {arch!r}")
        model = build_model(
            arch,
            int(shape["n_rows"]),
            int(shape["n_cols"]),
            int(shape["dim"]),
            int(shape["n_classes"]),
        )
        model.load_state_dict(payload["state_dict"])
        model.eval()
        checkpoint = Checkpoint(
            model=model,
            arch=arch,
            classes=Classes.from_list(payload["classes"]),
            row_ids=_ids_from_payload(payload["rows"], "row"),
            col_ids=_ids_from_payload(payload["cols"], "column"),
            config=dict(payload.get("config", {})),
            history={k: list(v) for k, v in payload.get("history", {}).items()},
            metrics=dict(payload.get("metrics", {})),
            prior=list(payload.get("prior", [])),
            source=str(payload.get("source", "")),
            version=str(payload.get("mfx_version", "")),
            best_epoch=int(payload.get("best_epoch", 0)),
            epochs_run=int(payload.get("epochs_run", 0)),
            path=str(path),
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: damaged mfx checkpoint ({type(exc).__name__}: {exc})"[:300]
        ) from None
    if len(checkpoint.row_ids) != int(shape["n_rows"]) or len(checkpoint.col_ids) != int(
        shape["n_cols"]
    ):
        raise CheckpointError(f"{path}: id maps do not match the model's table sizes")
    if len(checkpoint.classes) != int(shape["n_classes"]):
        raise CheckpointError(f"{path}: class list does not match the model's outputs")
    return checkpoint
