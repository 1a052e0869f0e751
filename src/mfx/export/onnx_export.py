"""``export_onnx``: checkpoint in, one verified, self-contained ONNX file out.

The steps, each in its own module: build the graph (:mod:`mfx.export.graphs`, folded where the
architecture allows), compress the weights (:mod:`mfx.export.precision`), attach the metadata
of :mod:`mfx.model_format`, write the file under a temporary name, check and verify it
(:mod:`mfx.export.verify`), and only then rename it into place.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

import mfx
from mfx._files import atomic_path
from mfx.data import Ratings, RawRatings
from mfx.errors import ModelFormatError, VerificationError
from mfx.export.graphs import DEFAULT_OPSET, build_graph, check_opset
from mfx.export.precision import check_precision, compress
from mfx.export.validation import load_validation, rebuild_validation
from mfx.export.verify import (
    DEFAULT_BATCH_SIZES,
    Parity,
    ValidationFigures,
    check_contract,
    check_table_sizes,
    compare_random,
    compare_ratings,
)
from mfx.model_format import decode_metadata, encode_metadata
from mfx.train import Checkpoint, load_checkpoint

log = logging.getLogger(__name__)

#: Above this many bytes of weights and metadata the tensors go to an external data file: a
#: protobuf message cannot exceed 2 GiB, and the graph itself needs some room.
EMBED_LIMIT = (2 << 30) - (64 << 20)


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how well it matches the torch model."""

    path: Path
    size_bytes: int
    arch: str
    folded: bool
    precision: str
    opset: int
    n_rows: int
    n_cols: int
    n_classes: int
    parity: Parity
    validation: ValidationFigures | None
    tolerance: float
    min_agreement: float
    #: Written although an agreement figure was below ``min_agreement`` (``force=True``).
    forced: bool = False
    #: The external data file, only for models over :data:`EMBED_LIMIT`.
    external_data: Path | None = None
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        """File size plus the external data file, if any."""
        extra = self.external_data.stat().st_size if self.external_data else 0
        return self.size_bytes + extra


def _checkpoint(checkpoint: Checkpoint | str | os.PathLike[str]) -> Checkpoint:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    return load_checkpoint(checkpoint)


def check_output(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a file can be written there; an ``OSError`` says why not.

    Checked before any work, so a typo in the folder does not cost an export.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "it is a folder; give the .onnx file to write", str(target)
        )
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(errno.ENOENT, f"folder {folder} {reason}", str(target))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"folder {folder} is not writable", str(target))
    return target


def _metadata(checkpoint: Checkpoint, folded: bool, precision: str) -> dict[str, str]:
    n_classes = len(checkpoint.classes)
    prior = list(checkpoint.prior)
    if len(prior) != n_classes:
        prior = [1.0 / n_classes] * n_classes
    return encode_metadata(
        version=mfx.__version__,
        arch=checkpoint.arch,
        classes=checkpoint.classes.to_list(),
        rows=checkpoint.row_ids.to_list(),
        cols=checkpoint.col_ids.to_list(),
        prior=prior,
        metrics=checkpoint.metrics,
        folded=folded,
        precision=precision,
    )


def _payload_bytes(model: onnx.ModelProto) -> int:
    """Bytes of weights and metadata: what decides whether the file can hold them."""
    tensors = sum(len(t.raw_data) for t in model.graph.initializer)
    meta = sum(len(p.key) + len(p.value) for p in model.metadata_props)
    return tensors + meta


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def _embedded(model: onnx.ModelProto) -> None:
    external = [
        t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise VerificationError(
            f"the graph refers to external data for {', '.join(external[:3])}; "
            "expected embedded weights"
        )


def _save(model: onnx.ModelProto, tmp: Path, data_tmp: Path | None) -> None:
    if data_tmp is None:
        onnx.save_model(model, tmp)
        return
    # The data file sits beside the model; its location is relative, so the pair can move.
    onnx.save_model(
        model, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
        location=data_tmp.name, size_threshold=1024,
    )


def _relink(tmp: Path, data_name: str) -> None:
    """Point the saved model's external tensors at the data file's final name."""
    model = onnx.load_model(tmp, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = data_name
    onnx.save_model(model, tmp)


def _session(path: Path) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types; one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VerificationError(
            f"onnxruntime {ort.__version__} cannot load the exported graph: {first[:200]}"
        ) from None


def _check_file(tmp: Path, checkpoint: Checkpoint, opset: int) -> None:
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VerificationError(f"onnx.checker rejects the graph: {first[:200]}") from None
    graph_only = onnx.load_model(tmp, load_external_data=False)
    check_contract(graph_only, len(checkpoint.classes))
    written = _default_opset(graph_only)
    if written != opset:
        raise VerificationError(
            f"the graph has opset {written}, not the requested {opset} (the exporter could not "
            "convert it); choose another --opset"
        )


def _check_metadata(session: ort.InferenceSession, checkpoint: Checkpoint) -> None:
    meta = session.get_modelmeta().custom_metadata_map
    try:
        info = decode_metadata(meta, "exported model")
    except ModelFormatError as exc:
        raise VerificationError(f"metadata does not decode: {exc}") from None
    if (
        info.classes != checkpoint.classes
        or info.row_ids != checkpoint.row_ids
        or info.col_ids != checkpoint.col_ids
    ):
        raise VerificationError("metadata classes or ids differ from the checkpoint's")


def _resolve_validation(
    validation: Any, checkpoint: Checkpoint
) -> tuple[np.ndarray, np.ndarray, str] | None:
    if validation is None or validation == "none":
        return None
    if isinstance(validation, str) and validation == "auto":
        return rebuild_validation(checkpoint)
    if isinstance(validation, Ratings):
        if validation.row_ids != checkpoint.row_ids or validation.col_ids != checkpoint.col_ids:
            raise ValueError("validation ratings must use the checkpoint's row and column ids")
        pairs = np.stack([validation.rows, validation.cols], axis=1).astype(np.int64)
        return pairs, validation.labels, validation.source
    if isinstance(validation, (str, os.PathLike, RawRatings)):
        return load_validation(validation, checkpoint)
    raise TypeError(f"validation must be 'auto', None, a path or Ratings, not {type(validation)}")


def _judge(
    parity: Parity,
    figures: ValidationFigures | None,
    precision: str,
    tolerance: float,
    min_agreement: float,
    force: bool,
) -> bool:
    """Raise VerificationError for a failed figure; return whether ``force`` let one pass."""
    if precision == "fp32":
        if parity.relative > tolerance:
            raise VerificationError(
                f"max |logits - torch| {parity.relative:.2e} (relative to logit scale "
                f"{parity.logit_scale:.3g}) at batch {parity.worst_batch} is over the "
                f"tolerance {tolerance:.0e}"
            )
        wrong = parity.mismatches - parity.ties
        if wrong > 0:
            raise VerificationError(
                f"class_index differs from torch's argmax on {wrong} of {parity.pairs} random "
                "pairs that are not ties"
            )
        return False
    shortfalls = []
    if parity.agreement < min_agreement:
        shortfalls.append(f"argmax agreement {parity.agreement:.2%} on {parity.pairs} random pairs")
    if figures is not None and figures.agreement < min_agreement:
        shortfalls.append(
            f"argmax agreement {figures.agreement:.2%} on {figures.ratings} validation ratings"
        )
    if not shortfalls:
        return False
    message = f"{precision}: {' and '.join(shortfalls)} below {min_agreement:.0%}"
    if not force:
        raise VerificationError(f"{message}; pass --force to write it anyway")
    log.warning("%s; written anyway (force)", message)
    return True


def export_onnx(
    checkpoint: Checkpoint | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    fold: bool = True,
    precision: str = "fp32",
    opset: int | None = None,
    force: bool = False,
    validation: Ratings | RawRatings | str | os.PathLike[str] | None = "auto",
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seed: int = 0,
) -> ExportReport:
    """Export a checkpoint to one ONNX file, verified against the torch model before it appears.

    The file holds the graph of :mod:`mfx.model_format` and its metadata; its weights are
    embedded. Only a model whose weights and metadata exceed :data:`EMBED_LIMIT` (protobuf's
    2 GiB ceiling) gets its tensors in ``<path>.data`` beside it, referenced by that relative
    name, so the two files must be moved together.

    Parameters
    ----------
    checkpoint
        A checkpoint path or a loaded :class:`mfx.train.Checkpoint` (for example from
        :func:`mfx.export.checkpoint_from_state_dict`).
    path
        The ``.onnx`` file to write; its folder must exist. An existing file is replaced only
        once the new one has passed verification.
    fold
        Export the folded graph (``logits = P[row] + Q[col]``) where the architecture has one;
        ``False`` exports the module literally through ``torch.onnx.export``.
    precision
        ``fp32``, ``fp16`` or ``int8`` weights (see :mod:`mfx.export.precision`).
    opset
        ONNX opset; default :data:`mfx.export.DEFAULT_OPSET`.
    force
        Write an fp16/int8 model whose argmax agreement with torch is below ``min_agreement``.
        fp32 parity failures are never forced.
    validation
        Labelled pairs to report accuracy on: ``"auto"`` rebuilds the checkpoint's own
        validation split when its source is at hand (see :mod:`mfx.export.validation`), a path
        reads a ratings file with the checkpoint's ids, ``None`` skips it.
    tolerance
        fp32 bound on ``max |onnx - torch logits| / max(1, max |torch logits|)``.
    min_agreement
        fp16/int8 bound on the fraction of pairs whose class matches torch's.
    batch_sizes
        Batch sizes checked on random pairs (each includes the first and last ids).
    seed
        Seed of the random pairs.

    Returns
    -------
    ExportReport
        Size, form, precision and the parity figures.

    Raises
    ------
    VerificationError
        When a check fails; nothing is written (no final file, no temporary one).
    CheckpointError
        For a missing, corrupt or non-mfx checkpoint.
    OSError
        ``FileNotFoundError``, ``PermissionError`` or ``IsADirectoryError`` for an output path
        that cannot be written (checked before the export starts).
    ValueError
        For an unknown precision or an unsupported opset.
    """
    started = time.perf_counter()
    check_precision(precision)
    opset = check_opset(DEFAULT_OPSET if opset is None else opset)
    target = check_output(path)
    loaded = _checkpoint(checkpoint)
    loaded.model.eval()
    n_rows, n_cols, n_classes = len(loaded.row_ids), len(loaded.col_ids), len(loaded.classes)
    labelled = _resolve_validation(validation, loaded)

    log.info("building the %s graph of %s", "folded" if fold else "literal", loaded.arch)
    model, folded = build_graph(loaded.model, loaded.arch, fold=fold, opset=opset)
    _embedded(model)
    model = compress(model, precision)
    model.producer_name, model.producer_version = "mfx", mfx.__version__
    helper.set_model_props(model, _metadata(loaded, folded, precision))

    external = _payload_bytes(model) > EMBED_LIMIT
    data_target = target.with_name(target.name + ".data") if external else None
    with contextlib.ExitStack() as files:
        # Entered first, renamed last: the model never appears before its data file.
        tmp = files.enter_context(atomic_path(target))
        data_tmp = files.enter_context(atomic_path(data_target)) if data_target else None
        _save(model, tmp, data_tmp)
        del model
        _check_file(tmp, loaded, opset)
        session = _session(tmp)
        _check_metadata(session, loaded)
        check_table_sizes(session, n_rows, n_cols)
        log.info("verifying against torch on random pairs")
        parity = compare_random(
            session, loaded.model, n_rows, n_cols, batch_sizes=batch_sizes,
            tolerance=tolerance, seed=seed,
        )
        figures = None
        if labelled is not None:
            figures = compare_ratings(session, loaded.model, *labelled)
        del session
        forced = _judge(parity, figures, precision, tolerance, min_agreement, force)
        if data_tmp is not None and data_target is not None:
            _relink(tmp, data_target.name)
    if not external and target.with_name(target.name + ".data").exists():
        log.warning(
            "%s.data is left from an earlier export; %s does not use it", target.name, target.name
        )
    return ExportReport(
        path=target, size_bytes=target.stat().st_size, arch=loaded.arch, folded=folded,
        precision=precision, opset=opset, n_rows=n_rows, n_cols=n_cols, n_classes=n_classes,
        parity=parity, validation=figures, tolerance=tolerance, min_agreement=min_agreement,
        forced=forced, external_data=data_target, seconds=time.perf_counter() - started,
    )
