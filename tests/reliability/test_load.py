"""Load: one Predictor shared by 16 threads, memory over many calls, mfx-predict on big files.

Sizes follow ``MFX_STRESS_SCALE`` (see reliability_support): by default a tenth of the
issue's figures (16 threads x 1,000 calls, 100,000 calls, 1,000,000 pairs); with
``MFX_STRESS_SCALE=1`` the full ones (16 x 10,000 calls, 1,000,000 calls, 10,000,000 pairs).

Bounds asserted (measured figures are printed; run with ``-rP`` to see them):

* threads: every threaded call returns exactly (bit for bit) what the same call returned
  sequentially;
* memory: resident memory grows by less than 20 MiB between the end of the warm-up (the first
  10% of the calls) and the end;
* mfx-predict: the whole output equals one batch ``Predictor.predict`` of the same pairs, and
  the command's peak resident memory stays under 400 MiB whatever the number of pairs (it
  streams in chunks of 262,144 pairs; the input file alone is 100+ MiB at 10M pairs).
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_support import INT_MODEL, load_reference, rss_bytes, scaled

from mfx.runtime import Predictor

REF = load_reference("tiny_int")
THREADS = 16
MIB = 1 << 20


def _requests(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``count`` calls: batch sizes log-uniform in 1..4096, mixed methods; the ids are kept as
    int8 positions (raw ids are looked up at call time) to hold 16 x 10,000 calls in little
    memory."""
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(0.0, math.log(4096.0), count)).astype(np.int64)
    methods = rng.choice(["predict", "predict_proba", "expected"], count)
    out = []
    for size, method in zip(sizes.tolist(), methods.tolist()):
        rows = rng.integers(0, REF.rows.size, size, dtype=np.int8)
        cols = rng.integers(0, REF.cols.size, size, dtype=np.int8)
        out.append((rows, cols, method))
    return out


def _call(predictor: Predictor, rows: np.ndarray, cols: np.ndarray, method: str) -> str:
    return _digest(getattr(predictor, method)(REF.rows[rows], REF.cols[cols]))


def _digest(value: np.ndarray) -> str:
    value = np.ascontiguousarray(value)
    return hashlib.blake2b(value.tobytes() + str(value.dtype).encode(), digest_size=16).hexdigest()


@pytest.mark.slow
def test_sixteen_threads_return_exactly_the_sequential_results():
    predictor = Predictor(INT_MODEL, providers="cpu", threads=1)
    calls = scaled(10_000, minimum=100)
    work = [_requests(seed, calls) for seed in range(THREADS)]
    started = time.perf_counter()
    expected = [[_call(predictor, *request) for request in requests] for requests in work]
    sequential = time.perf_counter() - started
    got: list[list[str] | None] = [None] * THREADS
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(k: int) -> None:
        try:
            barrier.wait()
            got[k] = [_call(predictor, *request) for request in work[k]]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threaded = time.perf_counter() - started
    assert not errors, errors[0]
    for k in range(THREADS):
        mismatched = [i for i, (a, b) in enumerate(zip(got[k], expected[k])) if a != b]
        assert not mismatched, f"thread {k}: calls {mismatched[:5]} differ from sequential"
    pairs = sum(int(r.size) for requests in work for r, _, _ in requests)
    # The answers themselves are right, too (one call per thread against the numpy reference).
    for requests in work:
        r, c, _ = requests[0]
        answer = predictor.predict_proba(REF.rows[r], REF.cols[c])
        assert np.allclose(answer, REF.probabilities(r, c), atol=1e-6)
    print(
        f"threads: {THREADS} x {calls} calls, {pairs:,} pairs; sequential {sequential:.1f}s, "
        f"{THREADS} threads {threaded:.1f}s; all {THREADS * calls:,} results identical"
    )


@pytest.mark.slow
@pytest.mark.skipif(rss_bytes() == 0, reason="reads /proc/self/statm (Linux)")
def test_memory_does_not_grow_over_many_calls():
    predictor = Predictor(INT_MODEL, providers="cpu", threads=1)
    calls = scaled(1_000_000, minimum=20_000)
    rng = np.random.default_rng(7)
    # A fixed pool of small requests (batch 1..64, scalars too), reused: what grows is ours.
    pool = []
    for k in range(256):
        size = int(rng.integers(1, 65))
        rows = REF.rows[rng.integers(0, REF.rows.size, size)]
        cols = REF.cols[rng.integers(0, REF.cols.size, size)]
        if k % 4 == 0:
            pool.append((int(rows[0]), int(cols[0])))
        else:
            pool.append((rows, cols))
    methods = [predictor.predict, predictor.predict_proba, predictor.expected]
    warm = calls // 10
    samples = []
    started = time.perf_counter()
    for i in range(calls):
        rows, cols = pool[i % len(pool)]
        methods[i % 3](rows, cols)
        if i == warm or (i > warm and i % (calls // 20) == 0) or i == calls - 1:
            samples.append(rss_bytes())
    seconds = time.perf_counter() - started
    growth = samples[-1] - samples[0]
    peak_growth = max(samples) - samples[0]
    print(
        f"memory: {calls:,} calls in {seconds:.1f}s ({seconds / calls * 1e6:.1f} us a call); "
        f"RSS after warm-up {samples[0] / MIB:.1f} MiB, at the end {samples[-1] / MIB:.1f} MiB "
        f"(growth {growth / MIB:+.2f} MiB, largest {peak_growth / MIB:+.2f} MiB)"
    )
    assert peak_growth < 20 * MIB


_MEASURED = textwrap.dedent(
    """
    import atexit, runpy, sys

    peak_file = sys.argv[1]

    def report():
        with open("/proc/self/status") as fh:
            peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM"))
        with open(peak_file, "w") as out:
            out.write(str(peak * 1024))

    atexit.register(report)
    sys.argv = ["mfx-predict", *sys.argv[2:]]
    runpy.run_module("mfx.cli.predict", run_name="__main__")
    """
)


def _pairs_file(path: Path, n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.integers(0, REF.rows.size, n)
    c = rng.integers(0, REF.cols.size, n)
    row_text = REF.rows.astype(str)
    col_text = REF.cols.astype(str)
    step = 1 << 20
    with open(path, "w") as fh:
        fh.write("row,col\n")
        for start in range(0, n, step):
            part = slice(start, start + step)
            lines = np.char.add(np.char.add(row_text[r[part]], ","), col_text[c[part]])
            fh.write("\n".join(lines.tolist()))
            fh.write("\n")
    return REF.rows[r], REF.cols[c]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_mfx_predict_streams_a_big_file_with_bounded_memory(tmp_path):
    pd = pytest.importorskip("pandas")
    n = scaled(10_000_000, minimum=200_000)
    pairs = tmp_path / "pairs.csv"
    rows, cols = _pairs_file(pairs, n)
    out = tmp_path / "preds.csv"
    peak_file = tmp_path / "peak"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(peak_file), str(INT_MODEL), "-i", str(pairs),
         "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=1800,
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    peak = int(peak_file.read_text())
    got = pd.read_csv(out, dtype={"row": np.int64, "col": np.int64, "label": np.float64})
    assert len(got) == n
    assert np.array_equal(got["row"].to_numpy(), rows)
    assert np.array_equal(got["col"].to_numpy(), cols)
    batch = Predictor(INT_MODEL, providers="cpu", chunk_size=n).predict(rows, cols)
    assert np.array_equal(got["label"].to_numpy(), batch)
    print(
        f"mfx-predict: {n:,} pairs ({pairs.stat().st_size / MIB:.0f} MiB in, "
        f"{out.stat().st_size / MIB:.0f} MiB out) in {seconds:.1f}s, "
        f"peak RSS {peak / MIB:.0f} MiB"
    )
    assert peak < 400 * MIB
