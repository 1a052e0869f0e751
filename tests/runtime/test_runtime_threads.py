"""One Predictor shared by 8 threads gives exactly the sequential answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mfx.runtime import Predictor

DATA = Path(__file__).resolve().parent.parent / "data"


def test_eight_threads_match_sequential_results(int_ref):
    # A small chunk size makes every array call take the multi-chunk path too.
    predictor = Predictor(DATA / "tiny_int.onnx", chunk_size=16, unknown="prior")
    rng = np.random.default_rng(42)
    jobs = []
    for k in range(400):
        n = int(rng.integers(1, 60))
        r = int_ref.rows[rng.integers(len(int_ref.rows), size=n)]
        c = int_ref.cols[rng.integers(len(int_ref.cols), size=n)]
        if k % 7 == 0:
            r = r.copy()
            r[0] = 11  # an unknown id, answered with the prior
        jobs.append((k % 4, r, c))

    def run(job):
        kind, r, c = job
        if kind == 0:
            return predictor.predict(int(r[-1]), int(c[-1]))  # the scalar fast path
        if kind == 1:
            return predictor.predict(r, c, return_unknown=True)
        if kind == 2:
            return predictor.predict_proba(r, c)
        return predictor.recommend(int(r[-1]), k=3).cols

    sequential = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            threaded = list(pool.map(run, jobs))
            for want, got in zip(sequential, threaded):
                if isinstance(want, tuple):
                    np.testing.assert_array_equal(got[0], want[0])
                    np.testing.assert_array_equal(got[1], want[1])
                else:
                    np.testing.assert_array_equal(got, want)
