"""Scoring a long stream of pairs in worker processes, each with its own :class:`Predictor`.

>>> from mfx.data import iter_pairs
>>> from mfx.runtime.parallel import stream_parallel
>>> chunks = iter_pairs("pairs.csv", chunksize=262_144)             # doctest: +SKIP
>>> for result in stream_parallel("model.onnx", chunks, workers=4):  # doctest: +SKIP
...     print(result.start, result.labels[:3])

Results come back one per input chunk, in input order, whatever order the workers finish in.
At most ``max_in_flight`` chunks are read ahead of the one being returned, so memory is bounded
by a few chunks however long the input is. Only the standard library's
:mod:`concurrent.futures` and :mod:`multiprocessing`, numpy and onnxruntime are used.

Workers are started with ``forkserver`` where the platform has it, else ``spawn``: never a
plain ``fork`` of a process whose onnxruntime thread pools may already be running. Each worker
opens the model once, in its initializer. As with any ``spawn``/``forkserver`` pool, a script
that calls :func:`stream_parallel` at import time must guard it with
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import re
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from mfx.errors import MfxError, WorkerError
from mfx.runtime.predictor import DEFAULT_CHUNK_SIZE, Prediction, Predictor
from mfx.runtime.providers import ProviderSpec

log = logging.getLogger(__name__)

#: ``transform(predictor, rows, cols, prediction)``, run in the worker on each whole chunk.
Transform = Callable[[Predictor, np.ndarray, np.ndarray, Prediction], Any]

#: How the Predictor's messages name a pair: "... at position 5 ...".
_POSITION = re.compile(r"\bat position (\d+)\b")


def default_start_method() -> str:
    """``"forkserver"`` where this platform has it (Linux, macOS), else ``"spawn"``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def stream_parallel(
    model: str | os.PathLike[str],
    chunks: Iterable[tuple[Any, Any]],
    *,
    workers: int = 2,
    proba: bool = False,
    logits: bool = False,
    index: bool = False,
    transform: Transform | None = None,
    providers: str | Sequence[ProviderSpec] = "auto",
    threads: int | None = None,
    unknown: str = "error",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    class_table: str = "auto",
    max_in_flight: int | None = None,
    start_method: str | None = None,
) -> Iterator[Any]:
    """Predictions for a stream of ``(rows, cols)`` chunks, computed in worker processes.

    The parallel counterpart of :meth:`Predictor.stream`: the parent reads ``chunks`` (for
    example :func:`mfx.data.iter_pairs`) and sends each one to a pool of ``workers`` processes,
    each holding its own :class:`Predictor`; the results come back in input order.

    Parameters
    ----------
    model
        The ``.onnx`` file; every worker opens it once when it starts.
    chunks
        ``(rows, cols)`` pairs of one-dimensional arrays (raw ids, or indices with ``index``).
        Each chunk is one unit of work: choose chunks of some 10,000 to 1,000,000 pairs.
    workers
        Worker processes (at least 1; one still overlaps reading with scoring).
    proba, logits, index
        As in :meth:`Predictor.iter_predict`.
    transform
        Optional ``transform(predictor, rows, cols, prediction)``, run in the worker on each
        chunk; its return value is yielded instead of the :class:`Prediction` (for example the
        chunk's output text, so that formatting runs in parallel too). It must be picklable: a
        function defined at module level, or an instance of such a class.
    providers, unknown, chunk_size, class_table
        Passed to each worker's :class:`Predictor`.
    threads
        onnxruntime intra-op threads per worker. None means 1 when ``workers > 1`` (so that N
        workers do not oversubscribe the cores; set it explicitly to give each worker more),
        and onnxruntime's own choice for a single worker.
    max_in_flight
        Chunks sent ahead of the one being yielded (default ``2 * workers``): memory holds at
        most this many chunks and their results.
    start_method
        ``"forkserver"`` or ``"spawn"`` (default :func:`default_start_method`). ``"fork"`` is
        refused: forking a process that has started onnxruntime sessions can deadlock.

    Yields
    ------
    Prediction or the transform's result
        One per input chunk, in input order; a :class:`Prediction`'s ``start`` is the position
        of the chunk's first pair in the whole input.

    Raises
    ------
    UnknownIdError, ValueError, DataError
        A chunk's pairs were refused in its worker: the same exception type
        :meth:`Predictor.stream` raises, with positions counted from the start of the input
        and the chunk's range named. Results of earlier chunks have been yielded; no later
        one is. An error reading ``chunks`` is raised after the results of the chunks before it.
    WorkerError
        A worker process died (``kill -9``, out of memory) before finishing a chunk: the
        results are incomplete and the run is stopped.
    ModelFormatError, DeviceError
        The model could not be opened in a worker, as ``Predictor(model)`` would raise.

    Notes
    -----
    The pool lives as long as the generator: it is shut down when the input is exhausted,
    on any error, and when the generator is closed (``close()``, or a ``break`` out of the
    loop once the generator is released). Workers ignore Ctrl-C; the parent stops them.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if max_in_flight is None:
        max_in_flight = 2 * workers
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be a positive integer, got {max_in_flight!r}")
    method = start_method or default_start_method()
    if method not in ("forkserver", "spawn"):
        raise ValueError(
            f"start_method={method!r}: choose 'forkserver' or 'spawn' (a forked copy of a "
            "process running onnxruntime can deadlock)"
        )
    if threads is None and workers > 1:
        threads = 1
    options = {
        "providers": providers,
        "threads": threads,
        "unknown": unknown,
        "chunk_size": chunk_size,
        "class_table": class_table,
    }
    return _ordered_results(
        os.fspath(model),
        chunks,
        workers,
        (proba, logits, index),
        transform,
        options,
        max_in_flight,
        multiprocessing.get_context(method),
    )


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """Where one input chunk sits in the whole input."""

    number: int
    start: int
    stop: int

    def describe(self) -> str:
        if self.stop <= self.start:
            return f"the empty chunk at position {self.start}"
        return f"the chunk at positions {self.start}..{self.stop - 1}"


def _ordered_results(
    model: str,
    chunks: Iterable[tuple[Any, Any]],
    workers: int,
    wanted: tuple[bool, bool, bool],
    transform: Transform | None,
    options: dict[str, Any],
    max_in_flight: int,
    context: Any,
) -> Iterator[Any]:
    log.debug(
        "scoring %s in %d %s worker(s), %s onnxruntime thread(s) each",
        model,
        workers,
        context.get_start_method(),
        options["threads"] or "default",
    )
    source = iter(chunks)
    pending: deque[tuple[_Chunk, Future[Any]]] = deque()
    read_error: Exception | None = None
    exhausted = False
    position = 0
    number = 0
    executor = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(model, options, transform),
    )
    try:
        while True:
            while not exhausted and read_error is None and len(pending) < max_in_flight:
                try:
                    rows, cols = next(source)
                except StopIteration:
                    exhausted = True
                    break
                except Exception as exc:  # reported once the chunks before it are done
                    read_error = exc
                    break
                rows, cols = np.asarray(rows), np.asarray(cols)
                chunk = _Chunk(number, position, position + _length(rows, cols))
                try:
                    future = executor.submit(_score, chunk.start, rows, cols, *wanted)
                except BrokenProcessPool:
                    raise _worker_died(pending[0][0] if pending else chunk) from None
                pending.append((chunk, future))
                number += 1
                position = chunk.stop
            if not pending:
                break
            chunk, future = pending.popleft()
            yield _result(chunk, future)
        if read_error is not None:
            raise read_error
    finally:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def _length(rows: np.ndarray, cols: np.ndarray) -> int:
    """Pairs in a chunk; a scalar row or column id is broadcast, as in :meth:`Predictor.stream`."""
    for values in (rows, cols):
        if values.ndim:
            return int(values.shape[0])
    return 1


def _result(chunk: _Chunk, future: Future[Any]) -> Any:
    try:
        outcome = future.result()
    except BrokenProcessPool:
        raise _worker_died(chunk) from None
    except (MfxError, ValueError) as exc:
        raise _in_chunk(exc, chunk) from None
    except Exception as exc:  # not the project's: keep the worker's traceback (its __cause__)
        _note(exc, chunk)
        raise
    if isinstance(outcome, _LoadFailure):
        raise outcome.error
    return outcome


def _note(exc: BaseException, chunk: _Chunk) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"raised in an mfx worker process while scoring {chunk.describe()}")


def _worker_died(chunk: _Chunk) -> WorkerError:
    # The pool fails every chunk in flight, so ``chunk`` is the first result missing, not
    # necessarily the one the dead worker held.
    return WorkerError(
        "a worker process stopped unexpectedly (killed, out of memory or crashed); the "
        f"results from {chunk.describe()} (chunk {chunk.number + 1}) on are missing, so the "
        "run was stopped"
    )


def _in_chunk(exc: Exception, chunk: _Chunk) -> Exception:
    """``exc`` from a worker, its positions counted from the start of the whole input."""
    message = _POSITION.sub(
        lambda found: f"at position {int(found.group(1)) + chunk.start}", str(exc), count=1
    )
    message = f"{message} (in {chunk.describe()})"
    try:
        relabelled = type(exc)(message)
    except Exception:  # an exception type that takes other arguments: keep it as it is
        _note(exc, chunk)
        return exc
    relabelled.__dict__.update(exc.__dict__)
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        relabelled.position = position + chunk.start  # type: ignore[attr-defined]
    return relabelled


# -- in the worker processes -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _LoadFailure:
    """The worker could not open the model; the parent raises ``error`` as it is."""

    error: BaseException


_predictor: Predictor | None = None
_transform: Transform | None = None
_load_error: BaseException | None = None


def _start_worker(model: str, options: dict[str, Any], transform: Transform | None) -> None:
    """Open the model once per worker. A failure is kept and reported with the first chunk
    (an initializer that raises would only break the pool, losing the message)."""
    global _predictor, _transform, _load_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _transform = transform
    try:
        _predictor = Predictor(model, **options)
    except Exception as exc:
        _load_error = exc


def _score(
    start: int, rows: np.ndarray, cols: np.ndarray, proba: bool, logits: bool, index: bool
) -> Any:
    if _predictor is None:
        return _LoadFailure(_load_error or WorkerError("the worker has no model"))
    parts = list(_predictor.iter_predict(rows, cols, proba=proba, logits=logits, index=index))
    prediction = _joined(parts, start, _predictor, rows, cols, proba, logits, index)
    if _transform is None:
        return prediction
    return _transform(_predictor, rows, cols, prediction)


def _joined(
    parts: list[Prediction],
    start: int,
    predictor: Predictor,
    rows: np.ndarray,
    cols: np.ndarray,
    proba: bool,
    logits: bool,
    index: bool,
) -> Prediction:
    """One :class:`Prediction` for the whole chunk, starting at ``start``."""
    if len(parts) == 1:
        return dataclasses.replace(parts[0], start=start)
    if not parts:  # an empty chunk: validated, and typed like a full one
        labels = predictor.predict(rows, cols, index=index)
        empty = np.zeros((0, len(predictor.classes)), dtype=np.float32)
        return Prediction(
            start=start,
            unknown=np.zeros(0, dtype=bool),
            labels=labels,
            class_index=np.zeros(0, dtype=np.int64),
            probabilities=empty if proba else None,
            logits=empty.copy() if logits else None,
        )

    def joined(name: str) -> np.ndarray | None:
        values = [getattr(part, name) for part in parts]
        return None if values[0] is None else np.concatenate(values)

    return Prediction(
        start=start,
        unknown=joined("unknown"),
        labels=joined("labels"),
        class_index=joined("class_index"),
        probabilities=joined("probabilities"),
        logits=joined("logits"),
    )
