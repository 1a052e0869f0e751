"""File size, parity and onnxruntime throughput of every export form and precision.

    python benchmarks/export_speed.py mfx-model.pt [--batch 65536] [--rounds 5] [--repeats 10]
                                                   [--threads N]

Exports the checkpoint folded and literal, at fp32, fp16 and int8 (into a temporary folder,
``force=True`` so a low agreement is printed rather than refused), then prints for each: the
file size, the parity figures export measured (max |logits - torch| relative to the logit scale,
argmax agreement on random pairs, validation accuracy when the checkpoint's split can be
rebuilt) and the throughput of a bare CPU ``InferenceSession`` at batch ``--batch`` (pairs/s,
median over ``--rounds`` rounds of ``--repeats`` timed runs, each round visiting every model).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mfx.export import export_onnx
from mfx.train import load_checkpoint


def _timed_runs(session: ort.InferenceSession, pairs: np.ndarray, repeats: int) -> list[float]:
    feed = {"pairs": pairs}
    session.run(None, feed)  # warm-up: allocations and first-run kernel choices
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    checkpoint = load_checkpoint(args.checkpoint)
    n_rows, n_cols = len(checkpoint.row_ids), len(checkpoint.col_ids)
    rng = np.random.default_rng(args.seed)
    pairs = np.stack(
        [rng.integers(0, n_rows, args.batch), rng.integers(0, n_cols, args.batch)], axis=1
    ).astype(np.int64)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.threads:
        options.intra_op_num_threads = args.threads
    out = sys.stdout
    out.write(
        f"{args.checkpoint}: {checkpoint.arch}, {n_rows} rows x {n_cols} columns, "
        f"{len(checkpoint.classes)} classes, h={checkpoint.config.get('dim', '?')}; "
        f"onnxruntime {ort.__version__} CPU, threads {args.threads or 'default'}, "
        f"batch {args.batch}, median of {args.rounds} x {args.repeats} runs\n\n"
    )
    header = (
        f"{'form':<8} {'precision':<9} {'size':>11} {'rel |dlogits|':>13} {'agreement':>9} "
        f"{'valid acc (torch -> onnx)':>26} {'pairs/s':>13}"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        for form, fold in (("folded", True), ("literal", False)):
            for precision in ("fp32", "fp16", "int8"):
                path = Path(folder) / f"{form}-{precision}.onnx"
                report = export_onnx(checkpoint, path, fold=fold, precision=precision, force=True)
                session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
                runs.append((form, precision, report, session, []))
        # Rounds that visit every model in turn, so a burst of load elsewhere on the machine
        # slows all of them alike instead of whichever happened to be timed then.
        for _ in range(args.rounds):
            for *_, session, times in runs:
                times.extend(_timed_runs(session, pairs, args.repeats))
        for form, precision, report, _, times in runs:
            figures = report.validation
            valid = (
                f"{figures.torch_accuracy:.4f} -> {figures.onnx_accuracy:.4f}"
                if figures is not None else "-"
            )
            speed = args.batch / statistics.median(times)
            out.write(
                f"{form:<8} {precision:<9} {report.size_bytes / 1024:>7.1f} KiB "
                f"{report.parity.relative:>13.2e} {report.parity.agreement:>9.2%} "
                f"{valid:>26} {speed:>13,.0f}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
