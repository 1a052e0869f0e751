"""Opening an mfx ONNX file safely: every check runs at load time, not at the first prediction."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from mfx.errors import DeviceError, ModelFormatError
from mfx.model_format import INPUT_NAME, ModelInfo, decode_metadata
from mfx.runtime._scan import ScanError, scan_model
from mfx.runtime.providers import CPU, ProviderSpec, resolve_providers

_LOGITS, _PROBABILITIES, _CLASS_INDEX = "logits", "probabilities", "class_index"
_EXPECTED_OUTPUTS = {
    _LOGITS: ("tensor(float)", 2),
    _PROBABILITIES: ("tensor(float)", 2),
    _CLASS_INDEX: ("tensor(int64)", 1),
}
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class LoadedModel:
    """A checked session and the model's decoded metadata."""

    session: ort.InferenceSession
    info: ModelInfo
    metadata: dict[str, str]
    providers: list[str]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def model_path_text(path: str | os.PathLike[str]) -> str:
    """``path`` as text, for messages and ``open``: :mod:`os.path` does the work here, since
    importing :mod:`pathlib` would cost the runtime about 0.6 MB of resident memory."""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"the model path must be a str or an os.PathLike of str, not {text!r}")
    return text


def _read(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelFormatError(f"{path}: model file not found; check the path")
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a folder, not an ONNX file")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ModelFormatError(f"{path}: file is empty, not an ONNX model")
    return data


def _check_location(path: str, tensor: str, location: str | None) -> None:
    """Refuse external data that is not a plain relative path inside the model's folder."""
    where = f"{path}: initializer {tensor!r}"
    if not location:
        raise ModelFormatError(f"{where} is stored externally but names no file")
    unified = location.replace("\\", "/")
    if (
        "\x00" in location
        or unified.startswith("/")
        or _WINDOWS_DRIVE.match(unified)
        or ".." in unified.split("/")
    ):
        raise ModelFormatError(
            f"{where} points to external data at {location!r}, outside the model's folder; "
            "refusing to load it (external data must sit beside the .onnx file)"
        )
    folder = os.path.realpath(os.path.dirname(path) or os.curdir)
    target = os.path.realpath(os.path.join(folder, location))
    # A symbolic link beside the model may still lead elsewhere.
    if target != folder and os.path.commonpath([folder, target]) != folder:
        raise ModelFormatError(
            f"{where}: external data {location!r} resolves to {target}, outside the model's "
            "folder; refusing to load it"
        )
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return  # missing: onnxruntime reports it
    # A FIFO would block onnxruntime's open() forever, a device would feed it endless bytes.
    if not stat.S_ISREG(mode):
        raise ModelFormatError(
            f"{where}: external data {location!r} is not a regular file; refusing to load it"
        )


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The graph is a chain; parallelism lives inside operators (intra-op).
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only; the Predictor reports what matters itself
    return options


def _check_signature(path: str, session: ort.InferenceSession, info: ModelInfo) -> None:
    inputs = session.get_inputs()
    wanted = f"an mfx model takes one input {INPUT_NAME!r}: int64 [batch, 2]"
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs)
        raise ModelFormatError(f"{path}: the model has inputs {names}; {wanted}")
    first = inputs[0]
    shape = list(first.shape or [])
    if first.name != INPUT_NAME or first.type != "tensor(int64)":
        raise ModelFormatError(
            f"{path}: the model's input is {first.name!r} ({first.type}); {wanted}"
        )
    if len(shape) != 2 or shape[1] != 2:
        raise ModelFormatError(f"{path}: input {INPUT_NAME!r} has shape {shape}; {wanted}")
    if isinstance(shape[0], int):
        raise ModelFormatError(
            f"{path}: input {INPUT_NAME!r} has a fixed batch size {shape[0]}; "
            "export it with a dynamic 'batch' dimension"
        )
    outputs = {o.name: o for o in session.get_outputs()}
    n_classes = len(info.classes)
    for name, (dtype, rank) in _EXPECTED_OUTPUTS.items():
        out = outputs.get(name)
        if out is None:
            raise ModelFormatError(
                f"{path}: the model has no output {name!r} (it has {', '.join(outputs)}); "
                "an mfx model outputs logits, probabilities and class_index"
            )
        out_shape = list(out.shape or [])
        if out.type != dtype or len(out_shape) != rank:
            raise ModelFormatError(
                f"{path}: output {name!r} is {out.type} {out_shape}; "
                f"expected {dtype} of rank {rank}"
            )
        if rank == 2 and isinstance(out_shape[1], int) and out_shape[1] != n_classes:
            raise ModelFormatError(
                f"{path}: output {name!r} has {out_shape[1]} classes but the metadata lists "
                f"{n_classes}"
            )


def _probe(path: str, session: ort.InferenceSession, info: ModelInfo, cpu_only: bool) -> None:
    """Run the last known pair (tables at least as large as the metadata says) and, on CPU,
    check that the tables are no larger (CUDA kernels do not check indices, so that half is
    skipped off the CPU).

    A table of ``s`` rows answers index ``-1`` with its row ``s - 1``: the same answer as for
    index ``n - 1`` when ``s == n``, which a run with ``-1`` shows without failing. Only when
    the answers differ is the exact check run, index ``n``, which onnxruntime's CPU Gather
    refuses on a table of ``n`` rows: the first failing run in a process pages in about 1 MB
    of onnxruntime's exception tables, which every model would otherwise pay at load. (So a
    longer table passes only if its last row answers exactly as row ``n - 1`` does, which
    takes a duplicated row; a graph that refuses negative indices gets the exact check.)
    """
    n_rows, n_cols, n_classes = info.n_rows, info.n_cols, len(info.classes)
    if n_rows == 0 or n_cols == 0:
        raise ModelFormatError(f"{path}: the metadata lists no row or no column ids")
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4
    last = np.array([[n_rows - 1, n_cols - 1]], dtype=np.int64)
    try:
        logits, probabilities, class_index = session.run(
            [_LOGITS, _PROBABILITIES, _CLASS_INDEX], {INPUT_NAME: last}, quiet
        )
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        raise ModelFormatError(
            f"{path}: the model fails on row index {n_rows - 1}, column index {n_cols - 1} "
            f"although its metadata lists {n_rows} rows and {n_cols} columns "
            f"({_first_line(exc)})"
        ) from None
    for name, value, shape in (
        (_LOGITS, logits, (1, n_classes)),
        (_PROBABILITIES, probabilities, (1, n_classes)),
        (_CLASS_INDEX, class_index, (1,)),
    ):
        if np.shape(value) != shape:
            raise ModelFormatError(
                f"{path}: output {name!r} has shape {list(np.shape(value))} for one pair; "
                f"expected {list(shape)} ({n_classes} classes in the metadata)"
            )
    if not cpu_only:
        return
    for axis, key, size, wrapped, past in (
        ("row", "mfx.n_rows", n_rows, [[-1, n_cols - 1]], [[n_rows, 0]]),
        ("column", "mfx.n_cols", n_cols, [[n_rows - 1, -1]], [[0, n_cols]]),
    ):
        try:
            found = session.run([_LOGITS], {INPUT_NAME: np.array(wrapped, dtype=np.int64)}, quiet)
            if np.array_equal(found[0], logits):
                continue  # the table's last row is row n - 1
        except Exception:  # a graph that refuses negative indices: the exact check decides
            pass
        try:
            session.run([_CLASS_INDEX], {INPUT_NAME: np.array(past, dtype=np.int64)}, quiet)
        except Exception:
            continue  # expected: index `size` is past the end of the table
        raise ModelFormatError(
            f"{path}: the model's {axis} table has more than the {size} {axis}s its metadata "
            f"({key}) lists; the file is inconsistent, export it again"
        )


def load_model(
    path: str | os.PathLike[str],
    *,
    providers: str | Sequence[ProviderSpec] = "auto",
    threads: int | None = None,
) -> LoadedModel:
    """Check ``path`` and open an onnxruntime session on it.

    Raises
    ------
    ModelFormatError
        Missing, empty or corrupt file; external data outside the model's folder; not an mfx
        model; unsupported format; inputs, outputs or table sizes that disagree with the
        contract in :mod:`mfx.model_format`.
    DeviceError
        A requested execution provider is unavailable or was dropped by onnxruntime.
    """
    model_path = model_path_text(path)
    names, options, explicit = resolve_providers(providers)
    data = _read(model_path)
    try:
        scan = scan_model(data)
    except ScanError as exc:
        raise ModelFormatError(
            f"{model_path}: not a valid ONNX file (corrupt or truncated: {exc})"
        ) from None
    if not scan.has_graph:
        raise ModelFormatError(f"{model_path}: not an ONNX model (no graph found)")
    for ref in scan.external:
        _check_location(model_path, ref.tensor, ref.location)
    info = decode_metadata(scan.metadata, where=model_path, file_bytes=len(data))
    # With external data onnxruntime must resolve file names beside the model, so it opens the
    # (checked) path; otherwise it gets the bytes already read and checked.
    source: Any = model_path if scan.external else data
    try:
        session = ort.InferenceSession(
            source, _session_options(threads), providers=names, provider_options=options
        )
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        text = _first_line(exc)
        if any(name != CPU and name.replace("ExecutionProvider", "") in text for name in names):
            raise DeviceError(f"{model_path}: cannot start {', '.join(names)}: {text}") from None
        raise ModelFormatError(f"{model_path}: onnxruntime cannot load the model: {text}") from None
    # onnxruntime's Python wrapper would otherwise retry a failing run on CPU behind our back
    # (printing to stdout), and `providers` would no longer say what runs.
    session.disable_fallback()
    used = list(session.get_providers())
    dropped = [name for name in names if name not in used]
    if dropped:
        if explicit or dropped != [names[0]] or used != [CPU]:
            raise DeviceError(
                f"onnxruntime could not enable {', '.join(dropped)} and fell back to "
                f"{', '.join(used)}; check the GPU driver and the CUDA/cuDNN libraries that "
                "onnxruntime-gpu needs, or ask for providers='cpu'"
            )
        import logging  # only here: importing logging costs about 0.7 MB resident

        logging.getLogger(__name__).warning("%s is not usable here; running on %s", dropped[0], CPU)
    _check_signature(model_path, session, info)
    _probe(model_path, session, info, cpu_only=used == [CPU])
    return LoadedModel(session=session, info=info, metadata=dict(scan.metadata), providers=used)
