"""Predictor overhead against a bare onnxruntime session on the same file.

    python benchmarks/runtime_latency.py model.onnx [--calls 10000] [--batch 65536]

Prints single-pair latency (median and p99 over ``--calls`` calls) of ``Predictor.predict`` and
``predict_proba`` against ``InferenceSession.run`` fed a ready-made ``[1, 2]`` array, then the
throughput at batch ``--batch`` of ``predict`` (raw ids and ``index=True``) against the bare
session on a ready-made ``[batch, 2]`` array. Both sides run on CPU with the same thread count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from mfx.runtime import Predictor


def _latencies(call: Callable[[], object], calls: int) -> list[float]:
    for _ in range(min(1000, calls)):
        call()
    out = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        call()
        out.append((clock() - start) / 1000.0)
    return out


def _interleaved(calls: dict[str, Callable[[], object]], n: int, rounds: int = 5) -> dict:
    """Latencies of each call, measured in alternating rounds so drift hits all alike."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    per_round = max(1, n // rounds)
    for _ in range(rounds):
        for name, call in calls.items():
            out[name] += _latencies(call, per_round)
    return out


def _summary(name: str, micros: list[float], base: float | None = None) -> str:
    ordered = sorted(micros)
    median = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    ratio = f"  ({median / base:.2f}x bare)" if base else ""
    return f"  {name:<34} median {median:7.2f} us   p99 {p99:7.2f} us{ratio}"


def _throughput(call: Callable[[], object], batch: int, repeats: int) -> float:
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return batch / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (both sides)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    predictor = Predictor(args.model, providers="cpu", threads=args.threads)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.threads:
        options.intra_op_num_threads = args.threads
    bare = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(args.seed)
    row_ids, col_ids = predictor.row_ids.ids, predictor.col_ids.ids
    r, c = int(rng.integers(predictor.n_rows)), int(rng.integers(predictor.n_cols))
    row, col = row_ids[r].item(), col_ids[c].item()
    one = np.array([[r, c]], dtype=np.int64)
    info = predictor.metadata
    out = sys.stdout
    out.write(
        f"{args.model}: {predictor.n_rows} rows x {predictor.n_cols} columns, "
        f"{len(info.classes)} classes, {info.row_ids.kind} ids; onnxruntime {ort.__version__}, "
        f"{predictor.providers[0]}, threads {args.threads or 'default'}\n"
    )
    out.write(f"single pair ({args.calls} calls each, interleaved rounds):\n")
    feed = {"pairs": one}
    found = _interleaved(
        {
            "bare run(['class_index'])": lambda: bare.run(["class_index"], feed),
            "bare run(['probabilities'])": lambda: bare.run(["probabilities"], feed),
            "bare run(None)  (all outputs)": lambda: bare.run(None, feed),
            "Predictor.predict(row, col)": lambda: predictor.predict(row, col),
            "Predictor.predict(.., index=True)": lambda: predictor.predict(r, c, index=True),
            "Predictor.predict_proba(row, col)": lambda: predictor.predict_proba(row, col),
            "Predictor.predict([row], [col])": lambda: predictor.predict([row], [col]),
        },
        args.calls,
    )
    base = statistics.median(found["bare run(['class_index'])"])
    base_p = statistics.median(found["bare run(['probabilities'])"])
    for name, micros in found.items():
        if name.startswith("bare"):
            out.write(_summary(name, micros) + "\n")
        elif "proba" in name:
            out.write(_summary(name, micros, base_p) + "  [vs bare probabilities]\n")
        else:
            out.write(_summary(name, micros, base) + "\n")

    n = args.batch
    ri = rng.integers(predictor.n_rows, size=n)
    ci = rng.integers(predictor.n_cols, size=n)
    pairs = np.stack([ri, ci], axis=1).astype(np.int64)
    raw_rows, raw_cols = row_ids[ri], col_ids[ci]
    out.write(f"batch {n} (best of {args.repeats}):\n")
    bare_tp = _throughput(lambda: bare.run(["class_index"], {"pairs": pairs}), n, args.repeats)
    out.write(f"  {'bare run([class_index])':<34} {bare_tp / 1e6:8.2f} M pairs/s\n")
    for name, call in (
        ("Predictor.predict(raw ids)", lambda: predictor.predict(raw_rows, raw_cols)),
        ("Predictor.predict(index=True)", lambda: predictor.predict(ri, ci, index=True)),
    ):
        tp = _throughput(call, n, args.repeats)
        out.write(f"  {name:<34} {tp / 1e6:8.2f} M pairs/s  ({tp / bare_tp:.2f}x bare)\n")
    bare_p = _throughput(lambda: bare.run(["probabilities"], {"pairs": pairs}), n, args.repeats)
    tp = _throughput(lambda: predictor.predict_proba(raw_rows, raw_cols), n, args.repeats)
    out.write(f"  {'bare run([probabilities])':<34} {bare_p / 1e6:8.2f} M pairs/s\n")
    out.write(
        f"  {'Predictor.predict_proba(raw ids)':<34} {tp / 1e6:8.2f} M pairs/s  "
        f"({tp / bare_p:.2f}x bare)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
