"""stream_parallel: worker processes give Predictor's answers in input order, or a clear error.

Each test starts one small pool (two workers, the committed tiny fixtures: no torch, no onnx).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from mfx._files import atomic_path
from mfx.errors import DataError, ModelFormatError, UnknownIdError
from mfx.runtime import Predictor
from mfx.runtime.parallel import WorkerError, stream_parallel

DATA = Path(__file__).resolve().parent.parent / "data"
INT_MODEL = DATA / "tiny_int.onnx"
CHUNK = 300


def _pairs(predictor: Predictor, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.choice(predictor.row_ids.ids, n), rng.choice(predictor.col_ids.ids, n)


def _chunks(rows: np.ndarray, cols: np.ndarray, size: int = CHUNK):
    return [(rows[i : i + size], cols[i : i + size]) for i in range(0, len(rows), size)]


def _sizes(predictor, rows, cols, prediction):
    """A transform run in the worker (module level, so workers can unpickle it)."""
    return prediction.start, len(prediction), os.getpid()


def _die_at_third_chunk(predictor, rows, cols, prediction):
    if prediction.start == 2 * CHUNK:
        os.kill(os.getpid(), signal.SIGKILL)
    return "".join(f"{label}\n" for label in prediction.labels.tolist())


def _no_children_left() -> bool:
    return not multiprocessing.active_children()


def test_results_are_the_single_process_answers_in_input_order(int_model):
    rows, cols = _pairs(int_model, 3_000)
    rows[17] = 11  # unknown: answered with the prior
    # Uneven chunks (one empty), more of them than may be in flight, and a Predictor chunk size
    # that splits some chunks again inside the worker.
    bounds = [0, 1, 250, 250, 900, 1_700, 2_999, 3_000]
    chunks = [(rows[a:b], cols[a:b]) for a, b in zip(bounds, bounds[1:])]
    results = list(
        stream_parallel(
            INT_MODEL,
            chunks,
            workers=2,
            proba=True,
            logits=True,
            unknown="prior",
            chunk_size=512,
            max_in_flight=3,
        )
    )
    assert [r.start for r in results] == bounds[:-1]
    assert [len(r) for r in results] == [b - a for a, b in zip(bounds, bounds[1:])]
    single = Predictor(INT_MODEL, unknown="prior")
    labels, unknown = single.predict(rows, cols, return_unknown=True)
    np.testing.assert_array_equal(np.concatenate([r.labels for r in results]), labels)
    np.testing.assert_array_equal(np.concatenate([r.unknown for r in results]), unknown)
    assert unknown.sum() == 1
    np.testing.assert_array_equal(
        np.concatenate([r.probabilities for r in results]), single.predict_proba(rows, cols)
    )
    np.testing.assert_array_equal(
        np.concatenate([r.logits for r in results]), single.predict_logits(rows, cols)
    )
    assert _no_children_left()


@pytest.mark.skipif(
    "spawn" not in multiprocessing.get_all_start_methods(), reason="no spawn start method"
)
def test_spawned_workers_run_the_transform_and_stop_when_closed(int_model):
    rows, cols = _pairs(int_model, 3_000)
    results = stream_parallel(
        INT_MODEL, _chunks(rows, cols), workers=2, transform=_sizes, start_method="spawn"
    )
    found = [next(results) for _ in range(4)]
    assert [(start, n) for start, n, _ in found] == [(i * CHUNK, CHUNK) for i in range(4)]
    assert os.getpid() not in {pid for _, _, pid in found}
    results.close()  # before the end of the input: the pool is shut down
    assert _no_children_left()


def test_unknown_id_in_a_worker_is_the_stream_error_with_input_positions(int_model):
    rows, cols = _pairs(int_model, 1_500)
    cols = cols.astype(np.int64)
    cols[1_000] = 8  # chunk 4 (positions 900..1199)
    single = Predictor(INT_MODEL)
    with pytest.raises(UnknownIdError) as in_process:
        list(single.stream(_chunks(rows, cols)))

    def source():
        yield from _chunks(rows, cols)
        raise DataError("pairs.csv: line 2000: a later read error")  # reported after chunk 4's

    done = []
    with pytest.raises(UnknownIdError) as parallel:
        for result in stream_parallel(INT_MODEL, source(), workers=2):
            done.append(result.start)
    assert done == [0, 300, 600]  # every chunk before the failing one, in order
    err = parallel.value
    assert str(err) == f"{in_process.value} (in the chunk at positions 900..1199)"
    assert "column id 8 at position 1000 " in str(err)
    assert (err.axis, err.value, err.position) == ("column", 8, 1_000)
    assert _no_children_left()


def test_a_read_error_comes_after_the_chunks_read_before_it(int_model):
    rows, cols = _pairs(int_model, 900)

    def source():
        yield from _chunks(rows, cols)
        raise DataError("pairs.csv: line 901: expected at least 2 fields")

    done = []
    with pytest.raises(DataError, match="line 901"):
        for result in stream_parallel(INT_MODEL, source(), workers=1, max_in_flight=8):
            done.append(len(result))
    assert done == [CHUNK] * 3


def test_bad_index_names_the_input_position():
    rows = np.zeros(700, dtype=np.int64)
    cols = np.zeros(700, dtype=np.int64)
    rows[650] = 7  # tiny_int has 7 rows: indices 0..6
    with pytest.raises(ValueError) as found:
        list(stream_parallel(INT_MODEL, _chunks(rows, cols), workers=1, index=True))
    assert str(found.value) == (
        "row index 7 at position 650 is out of range 0..6 (in the chunk at positions 600..699)"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_worker_stops_the_run_and_no_file_appears(int_model, tmp_path):
    rows, cols = _pairs(int_model, 3_000)
    out = tmp_path / "labels.txt"
    written = []
    with pytest.raises(WorkerError) as found:
        with atomic_path(out) as tmp, open(tmp, "w") as fh:
            for text in stream_parallel(
                INT_MODEL, _chunks(rows, cols), workers=2, transform=_die_at_third_chunk
            ):
                fh.write(text)
                written.append(text)
    # The pool fails every chunk in flight, so the first missing result is chunk 3 or before.
    assert len(written) <= 2
    first = len(written) * CHUNK
    assert str(found.value) == (
        "a worker process stopped unexpectedly (killed, out of memory or crashed); the results "
        f"from the chunk at positions {first}..{first + CHUNK - 1} (chunk {len(written) + 1}) "
        "on are missing, so the run was stopped"
    )
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file
    assert _no_children_left()


def test_a_model_that_does_not_load_fails_as_in_process(tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelFormatError) as in_process:
        Predictor(missing)
    with pytest.raises(ModelFormatError) as parallel:
        list(stream_parallel(missing, [(np.array([10]), np.array([3]))], workers=1))
    assert str(parallel.value) == str(in_process.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be a positive integer"),
        ({"workers": True}, "workers must be a positive integer"),
        ({"max_in_flight": 0}, "max_in_flight must be a positive integer"),
        ({"start_method": "fork"}, "choose 'forkserver' or 'spawn'"),
    ],
)
def test_bad_arguments_fail_before_any_process_starts(options, message):
    with pytest.raises(ValueError, match=message):
        stream_parallel(INT_MODEL, [], **options)
    assert _no_children_left()
