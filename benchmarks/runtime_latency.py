"""Predictor overhead against a bare onnxruntime session on the same file.

    python benchmarks/runtime_latency.py (model.onnx | --data ratings.csv) [--calls 10000]
        [--batch 65536] [--raw-batches 65536,1048576] [--raw-rounds 15]

Prints single-pair latency (median and p99 over ``--calls`` calls) of ``Predictor.predict`` and
``predict_proba`` against ``InferenceSession.run`` fed a ready-made ``[1, 2]`` array, then the
throughput at batch ``--batch`` of ``predict`` (raw ids and ``index=True``) against the bare
session on a ready-made ``[batch, 2]`` array. Both sides run on CPU with the same thread count.
``--data`` builds the model of ``benchmarks/inference.py`` (ml-latest-small's shape and ids).

Last, for models whose class-index table fits, the cost of integer raw ids over index input on
the table path (``class_table="eager"``) at each of ``--raw-batches``: the two calls alternate
in blocks over ``--raw-rounds`` rounds, and each call is timed in the calling thread's CPU time
(the table path runs in that thread only), so other processes taking the core do not count.
Run it with ``PYTHONPATH=<other checkout>/src`` to compare two versions on the same file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    parser.add_argument("model", nargs="?", help="an mfx ONNX file (or use --data)")
    parser.add_argument("--data", help="build the inference.py model with this file's ids")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (both sides)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw-batches", default="65536,1048576")
    parser.add_argument("--raw-rounds", type=int, default=15)
    args = parser.parse_args(argv)
    if (args.model is None) == (args.data is None):
        parser.error("give a model file or --data, not both")
    if args.model is None:
        with tempfile.TemporaryDirectory() as folder:
            args.model = str(_builtin_model(Path(folder), args.data))
            return _run(args)
    return _run(args)


def _builtin_model(folder: Path, data: str) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from inference import _builtin_checkpoint

    from mfx.export import export_onnx

    path = folder / "ml-latest-small.onnx"
    export_onnx(_builtin_checkpoint(data, 0, 32), path, validation=None)
    return path


def _raw_over_index(model: str, sizes: list[int], rounds: int, seed: int, out: Any) -> None:
    """Integer raw ids over index input on the table path, in thread CPU time."""
    try:
        by_index = Predictor(model, providers="cpu", class_table="eager")
    except ValueError as exc:  # the table does not fit
        out.write(f"table path: nothing to compare ({exc})\n")
        return
    if by_index.row_ids.kind != "int" or by_index.col_ids.kind != "int":
        return
    by_ids = Predictor(model, providers="cpu", class_table="eager")
    rng = np.random.default_rng(seed)
    clock = time.thread_time_ns
    out.write(f"table path, integer raw ids over index input (thread CPU time, {rounds} rounds):\n")
    for n in sizes:
        r = rng.integers(by_index.n_rows, size=n)
        c = rng.integers(by_index.n_cols, size=n)
        raw_rows, raw_cols = by_index.row_ids.ids[r], by_index.col_ids.ids[c]
        calls = {
            "index": lambda r=r, c=c: by_index.predict(r, c, index=True),
            "raw": lambda r=raw_rows, c=raw_cols: by_ids.predict(r, c),
        }
        found: dict[str, list[int]] = {name: [] for name in calls}
        block = max(4, (1 << 21) // n)
        for _ in range(rounds):
            for name, call in calls.items():
                call()
                for _ in range(block):
                    start = clock()
                    call()
                    found[name].append(clock() - start)
        index_us = statistics.median(found["index"]) / 1e3
        raw_us = statistics.median(found["raw"]) / 1e3
        out.write(
            f"  batch {n:>9,}: index {index_us:9.1f} us, raw ids {raw_us:9.1f} us, "
            f"raw / index {raw_us / index_us:.3f}\n"
        )


def _run(args: argparse.Namespace) -> int:

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
    sizes = [int(b) for b in args.raw_batches.split(",") if b]
    if sizes:
        _raw_over_index(args.model, sizes, args.raw_rounds, args.seed, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
