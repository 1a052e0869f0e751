"""Parity checks: does the written ONNX file compute what the torch model computes?

:func:`check_contract` reads the graph's declared inputs and outputs; :func:`compare_random`
runs onnxruntime and the torch model side by side on random pairs that always include the
first and last row and column; :func:`compare_ratings` does the same on labelled pairs and
adds accuracy. Failures are :class:`mfx.errors.VerificationError` naming the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from mfx.errors import VerificationError
from mfx.model_format import BATCH_DIM, INPUT_NAME, OUTPUT_NAMES

#: Batch sizes every export is checked at: single pairs, two, an odd size and a large one.
DEFAULT_BATCH_SIZES = (1, 2, 333, 10_000)


@dataclass
class Parity:
    """How closely onnxruntime's outputs follow the torch model's on the checked pairs.

    ``max_abs_logits`` is the largest ``|onnx - torch|`` logit difference; ``relative`` divides
    it by ``logit_scale = max(1, max |torch logits|)``. ``agreement`` is the fraction of pairs
    whose ``class_index`` equals torch's argmax; ``mismatches`` counts the others, and
    ``ties`` those of them where torch's two best logits are within twice the tolerance of
    each other (either answer is right).
    """

    pairs: int
    batch_sizes: list[int]
    max_abs_logits: float
    logit_scale: float
    relative: float
    max_abs_probabilities: float
    agreement: float
    mismatches: int = 0
    ties: int = 0
    worst_batch: int = 0


@dataclass
class ValidationFigures:
    """Accuracy of torch and onnxruntime on labelled pairs, and their argmax agreement."""

    ratings: int
    torch_accuracy: float
    onnx_accuracy: float
    agreement: float
    source: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def change(self) -> float:
        """``onnx_accuracy - torch_accuracy``."""
        return self.onnx_accuracy - self.torch_accuracy


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    shape = value.type.tensor_type.shape
    return [d.dim_param if d.dim_param else d.dim_value for d in shape.dim]


def check_contract(model: onnx.ModelProto, n_classes: int) -> None:
    """Names, types and shapes of the graph's input and outputs, as :mod:`mfx.model_format` says."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    expected_in = [(INPUT_NAME, onnx.TensorProto.INT64, [BATCH_DIM, 2])]
    expected_out = [
        (OUTPUT_NAMES[0], onnx.TensorProto.FLOAT, [BATCH_DIM, n_classes]),
        (OUTPUT_NAMES[1], onnx.TensorProto.FLOAT, [BATCH_DIM, n_classes]),
        (OUTPUT_NAMES[2], onnx.TensorProto.INT64, [BATCH_DIM]),
    ]
    for kind, values, expected in (("input", inputs, expected_in), ("output", graph.output,
                                                                     expected_out)):
        got = [(v.name, v.type.tensor_type.elem_type, _dims(v)) for v in values]
        if got != expected:
            def show(items: list[tuple[str, int, list[str | int]]]) -> str:
                return ", ".join(
                    f"{n} {onnx.TensorProto.DataType.Name(t).lower()} {d}" for n, t, d in items
                )
            raise VerificationError(
                f"graph {kind}s are {show(got) or 'none'}; the mfx contract needs {show(expected)}"
            )


def check_table_sizes(session: ort.InferenceSession, n_rows: int, n_cols: int) -> None:
    """The tables hold exactly the ids the metadata lists: the last index runs, one past fails.

    onnxruntime's CPU ``Gather`` refuses an out-of-range index, so a table longer than the id
    list (metadata and weights out of step) shows up as a pair that runs when it should not.
    """
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # the refusals below are expected; keep them off stderr
    for axis, pair in (("row", [n_rows, 0]), ("column", [0, n_cols])):
        try:
            session.run([OUTPUT_NAMES[2]], {INPUT_NAME: np.array([pair], dtype=np.int64)}, quiet)
        except Exception:  # onnxruntime's errors derive from Exception only
            continue
        raise VerificationError(
            f"the graph's {axis} table is longer than the {pair[0] or pair[1]} {axis} ids in "
            "the metadata"
        )


def corner_pairs(n_rows: int, n_cols: int) -> np.ndarray:
    """The four (first/last row, first/last column) pairs: where off-by-one errors show."""
    return np.array(
        [[0, 0], [n_rows - 1, n_cols - 1], [0, n_cols - 1], [n_rows - 1, 0]], dtype=np.int64
    )


def random_batches(
    n_rows: int, n_cols: int, batch_sizes: Sequence[int], seed: int = 0
) -> list[np.ndarray]:
    """Random pairs per batch size, each starting with as many corner pairs as fit.

    A batch of one is checked once per corner, so every batch size sees the first and the last
    row and column.
    """
    rng = np.random.default_rng(seed)
    corners = corner_pairs(n_rows, n_cols)
    batches: list[np.ndarray] = []
    for size in batch_sizes:
        if size < 1:
            raise ValueError(f"batch sizes must be at least 1, got {size}")
        if size == 1:
            batches.extend(corner.reshape(1, 2).copy() for corner in corners)
            continue
        pairs = np.stack(
            [rng.integers(0, n_rows, size), rng.integers(0, n_cols, size)], axis=1
        ).astype(np.int64)
        k = min(size, len(corners))
        pairs[:k] = corners[:k]
        batches.append(pairs)
    return batches


def torch_logits(model: nn.Module, pairs: np.ndarray, batch: int = 1 << 16) -> np.ndarray:
    """float32 logits of ``model`` in eval mode, in batches."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(pairs[start : start + batch]))
                out.append(model(chunk).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)


def run_session(
    session: ort.InferenceSession, pairs: np.ndarray, batch: int = 1 << 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """onnxruntime's three outputs for ``pairs`` in batches, dtypes and shapes checked."""
    parts: list[list[np.ndarray]] = [[], [], []]
    for start in range(0, len(pairs), batch):
        chunk = np.ascontiguousarray(pairs[start : start + batch], dtype=np.int64)
        outputs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: chunk})
        logits, probabilities, class_index = outputs
        b = len(chunk)
        if (
            logits.dtype != np.float32 or logits.ndim != 2 or logits.shape[0] != b
            or probabilities.dtype != np.float32 or probabilities.shape != logits.shape
            or class_index.dtype != np.int64 or class_index.shape != (b,)
        ):
            raise VerificationError(
                f"at batch {b} onnxruntime returned logits {logits.dtype}{list(logits.shape)}, "
                f"probabilities {probabilities.dtype}{list(probabilities.shape)}, class_index "
                f"{class_index.dtype}{list(class_index.shape)}; expected float32 [{b}, c], "
                f"float32 [{b}, c], int64 [{b}]"
            )
        for part, value in zip(parts, outputs):
            part.append(value)
    return tuple(np.concatenate(p) for p in parts)  # type: ignore[return-value]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def check_outputs_consistent(
    logits: np.ndarray, probabilities: np.ndarray, class_index: np.ndarray, where: str
) -> None:
    """The graph's own outputs agree: probabilities are softmax(logits), class_index an argmax."""
    if not np.all(np.isfinite(logits)):
        raise VerificationError(f"{where}: onnxruntime returned non-finite logits")
    gap = float(np.abs(probabilities - _softmax(logits)).max()) if logits.size else 0.0
    if gap > 1e-5:
        raise VerificationError(
            f"{where}: probabilities differ from softmax(logits) by {gap:.2e} (over 1e-05)"
        )
    picked = np.take_along_axis(logits, class_index[:, None], axis=1)[:, 0]
    wrong = np.flatnonzero(picked < logits.max(axis=1))
    if wrong.size:
        raise VerificationError(
            f"{where}: class_index is not the argmax of logits for {wrong.size} pair(s)"
        )


def _top_two_gap(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] < 2:
        return np.full(len(logits), np.inf)
    top = np.partition(logits, -2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def compare_random(
    session: ort.InferenceSession,
    model: nn.Module,
    n_rows: int,
    n_cols: int,
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> Parity:
    """Run ``session`` and ``model`` on :func:`random_batches` and measure how close they are.

    Only the graph's self-consistency raises here; whether the figures are good enough for
    the precision is the caller's decision.
    """
    worst = (-1.0, 0)
    diffs_prob = 0.0
    hits = ties = total = 0
    scale = 1.0
    max_abs = 0.0
    sizes: list[int] = []
    for pairs in random_batches(n_rows, n_cols, batch_sizes, seed):
        where = f"batch {len(pairs)}"
        logits, probabilities, class_index = run_session(session, pairs, batch=len(pairs))
        check_outputs_consistent(logits, probabilities, class_index, where)
        reference = torch_logits(model, pairs)
        if reference.shape != logits.shape:
            raise VerificationError(
                f"{where}: onnx logits have shape {list(logits.shape)}, torch's "
                f"{list(reference.shape)}"
            )
        batch_scale = max(1.0, float(np.abs(reference).max()))
        delta = float(np.abs(logits.astype(np.float64) - reference).max())
        if delta / batch_scale > worst[0]:
            worst = (delta / batch_scale, len(pairs))
        scale = max(scale, batch_scale)
        max_abs = max(max_abs, delta)
        diffs_prob = max(
            diffs_prob, float(np.abs(probabilities - _softmax(reference)).max())
        )
        expected = reference.argmax(axis=1)
        same = class_index == expected
        hits += int(same.sum())
        # A disagreement is a tie when torch's own top two are closer than the tolerance.
        ties += int((~same & (_top_two_gap(reference) <= 2 * tolerance * batch_scale)).sum())
        total += len(pairs)
        if len(pairs) not in sizes:
            sizes.append(len(pairs))
    return Parity(
        pairs=total, batch_sizes=sizes, max_abs_logits=max_abs, logit_scale=scale,
        relative=max(worst[0], 0.0), max_abs_probabilities=diffs_prob,
        agreement=hits / max(1, total), mismatches=total - hits, ties=ties,
        worst_batch=worst[1],
    )


def compare_ratings(
    session: ort.InferenceSession,
    model: nn.Module,
    pairs: np.ndarray,
    labels: np.ndarray,
    source: str = "",
) -> ValidationFigures:
    """Accuracy of torch and onnxruntime on labelled ``pairs`` and their argmax agreement."""
    logits, probabilities, class_index = run_session(session, pairs)
    check_outputs_consistent(logits, probabilities, class_index, source or "validation")
    expected = torch_logits(model, pairs).argmax(axis=1)
    n = max(1, len(labels))
    return ValidationFigures(
        ratings=len(labels),
        torch_accuracy=float((expected == labels).sum()) / n,
        onnx_accuracy=float((class_index == labels).sum()) / n,
        agreement=float((class_index == expected).sum()) / n,
        source=source,
    )
