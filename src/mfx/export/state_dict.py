"""A bare ``state_dict`` of the report's class, turned into a checkpoint that export accepts."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfx.errors import CheckpointError, DataError
from mfx.ids import IdMap
from mfx.labels import Classes
from mfx.train import Checkpoint, MatrixFactorization

#: The report's parameter names and their ranks.
REPORT_KEYS = {"U.weight": 2, "V.weight": 2, "classifier.weight": 2, "classifier.bias": 1}


def _load(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{path}: state_dict file not found")
    if p.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a state_dict file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: the file holds Python objects that loading would execute, not "
            "only tensors; save model.state_dict() itself"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or not a torch file ({first[:160]})") from None


def checkpoint_from_state_dict(
    path: str | os.PathLike[str], classes: Sequence[Any]
) -> Checkpoint:
    """A :class:`~mfx.train.Checkpoint` for a ``state_dict`` saved from the report's class.

    Sizes come from the tensors: ``U.weight`` is ``[n, h]``, ``V.weight`` ``[d, h]``,
    ``classifier.weight`` ``[c, 2h]``. Row and column ids are ``0..n-1`` and ``0..d-1``, the
    prior is uniform, and there are no training metrics.

    Parameters
    ----------
    path
        File written by ``torch.save(model.state_dict(), path)``; loaded with
        ``weights_only=True``.
    classes
        Label values in class-index order; there must be ``c`` of them.

    Raises
    ------
    CheckpointError
        For a missing, unsafe or corrupt file, or tensors that are not the report's class.
    DataError
        When ``classes`` does not list ``c`` distinct values.
    """
    state = _load(path)
    if isinstance(state, dict) and "mfx_checkpoint" in state:
        raise CheckpointError(f"{path}: is an mfx checkpoint; pass it with --checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state_dict (a dict of tensors)")
    missing = [k for k in REPORT_KEYS if k not in state]
    extra = sorted(set(state) - set(REPORT_KEYS))
    if missing or extra:
        detail = "; ".join(
            part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra[:5])}" if extra else "",
            ) if part
        )
        raise CheckpointError(
            f"{path}: not a state_dict of the report's class (keys U.weight, V.weight, "
            f"classifier.weight, classifier.bias): {detail}"
        )
    for key, rank in REPORT_KEYS.items():
        if state[key].ndim != rank or not state[key].is_floating_point():
            raise CheckpointError(
                f"{path}: {key} has shape {list(state[key].shape)} ({state[key].dtype}); "
                f"expected a {rank}-d float tensor"
            )
    n, h = state["U.weight"].shape
    d, h_cols = state["V.weight"].shape
    c, width = state["classifier.weight"].shape
    if h_cols != h or width != 2 * h or state["classifier.bias"].shape[0] != c or min(n, d) < 1:
        raise CheckpointError(
            f"{path}: inconsistent shapes: U {list(state['U.weight'].shape)}, V "
            f"{list(state['V.weight'].shape)}, classifier.weight [{c}, {width}], "
            f"classifier.bias {list(state['classifier.bias'].shape)}"
        )
    class_map = Classes.from_list(classes)
    if len(set(class_map.values)) != len(class_map):
        raise DataError(f"--classes {class_map.to_list()}: a class is listed twice")
    if len(class_map) != c:
        raise DataError(
            f"{path}: the classifier has {c} outputs but {len(class_map)} classes were given "
            f"({class_map.to_list()})"
        )
    model = MatrixFactorization(int(n), int(d), h=int(h), c=int(c))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return Checkpoint(
        model=model,
        arch="concat",
        classes=class_map,
        row_ids=IdMap(np.arange(n, dtype=np.int64), "row"),
        col_ids=IdMap(np.arange(d, dtype=np.int64), "column"),
        config={},
        history={},
        metrics={},
        prior=[1.0 / c] * c,
        source=str(path),
        path=str(path),
    )
