"""Scoring a large pairs file with ``mfx-predict --workers N``: pairs/s for each N, one run.

    python benchmarks/scoring.py [--pairs 2000000] [--model M.onnx] [--workers 1,2]
        [--proba] [--jsonl] [--chunk-size 262144] [--rounds 1] [--seed 0] [--keep DIR]

Writes a CSV of ``--pairs`` random (row, col) pairs drawn from the model's own ids, then runs
the real command, ``python -m mfx.cli.predict MODEL -i pairs.csv -o preds.csv --workers N``,
for each N in ``--workers`` (in turn, ``--rounds`` times, so a burst of load elsewhere slows all
alike) and prints the median wall time, pairs/s and the speed-up over the first N. Every run
must write the same bytes; the script checks it.

Without ``--model`` it builds one when torch is installed: ml-latest-small's shape (610 rows x
9,724 columns, 10 half-star classes), the report's ``concat`` architecture with h=32 and random
weights, exported (folded, fp32) with mfx's own export code.

After the runs it measures how many cores the run could really use (``N`` busy processes
against one: other work on the machine shows as fewer), then times the phases of one
single-process run in this process, to show what bounds the speed-up: reading the pairs
(pandas, in the parent with any N), predicting, formatting the text (in the workers with
N > 1) and writing the file (in the parent), and the CPU time of the parent and of the
workers in one parallel run (their ratio bounds the speed-up on idle cores).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ML_ROWS, ML_COLS, ML_MAX_MOVIE = 610, 9_724, 193_609
HALF_STARS = [0.5 * (k + 1) for k in range(10)]


def _build_model(folder: Path, seed: int) -> Path:
    """An ml-latest-small-shaped folded model with random weights (needs torch)."""
    try:
        import torch
    except ImportError:
        sys.exit("no --model given and torch is not installed to build one: pass --model M.onnx")
    from mfx.export import export_onnx
    from mfx.ids import IdMap
    from mfx.labels import Classes
    from mfx.train import Checkpoint
    from mfx.train.models import build_model

    rng = np.random.default_rng(seed + 1)
    middle = rng.choice(np.arange(2, ML_MAX_MOVIE), ML_COLS - 2, replace=False)
    movies = np.sort(np.concatenate([[1, ML_MAX_MOVIE], middle])).astype(np.int64)
    users = np.arange(1, ML_ROWS + 1, dtype=np.int64)
    torch.manual_seed(seed)
    model = build_model("concat", ML_ROWS, ML_COLS, 32, len(HALF_STARS)).eval()
    checkpoint = Checkpoint(
        model=model,
        arch="concat",
        classes=Classes.from_list(HALF_STARS),
        row_ids=IdMap(users, "row"),
        col_ids=IdMap(movies, "column"),
        config={"dim": 32},
        history={},
        metrics={},
        prior=[1.0 / len(HALF_STARS)] * len(HALF_STARS),
        source="<benchmarks/scoring.py, random weights>",
    )
    path = folder / "model.onnx"
    export_onnx(checkpoint, path, validation=None)
    return path


def _busy(loops: int) -> float:
    started = time.perf_counter()
    total = 0
    for k in range(loops):
        total += k * k
    return time.perf_counter() - started


def _spare_cores(n: int, loops: int = 3_000_000) -> float:
    """How many of ``n`` cores this run really gets: ``n`` busy processes against one."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(n) as pool:
        pool.map(_busy, [loops // 10] * n)  # start-up and warm-up
        one = statistics.median(pool.map(_busy, [loops])[0] for _ in range(3))
        started = time.perf_counter()
        pool.map(_busy, [loops] * n, chunksize=1)
        together = time.perf_counter() - started
    return n * one / together


def _write_pairs(path: Path, model: Path, n: int, seed: int) -> None:
    from mfx.runtime import Predictor

    predictor = Predictor(model, providers="cpu")
    rng = np.random.default_rng(seed)
    rows = rng.choice(predictor.row_ids.ids, n)
    cols = rng.choice(predictor.col_ids.ids, n)
    step = 1 << 20
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("row,col\n")
        for start in range(0, n, step):
            part = zip(rows[start : start + step].tolist(), cols[start : start + step].tolist())
            fh.write("".join(f"{r},{c}\n" for r, c in part))


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _run(model: Path, pairs: Path, out: Path, workers: int, args: argparse.Namespace) -> float:
    command = [
        sys.executable, "-m", "mfx.cli.predict", str(model), "-i", str(pairs), "-o", str(out),
        "--workers", str(workers), "--chunk-size", str(args.chunk_size), "--provider", "cpu",
        "-q",
    ]  # fmt: skip
    if args.proba:
        command.append("--proba")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mfx-predict --workers {workers} failed:\n{done.stderr}")
    return seconds


def _phases(model: Path, pairs: Path, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Seconds of each phase of one single-process run, timed separately."""
    from mfx.cli.predict import _PredictionText
    from mfx.data import iter_pairs
    from mfx.runtime import Predictor

    timings: dict[str, float] = {}
    started = time.perf_counter()
    chunks = list(iter_pairs(pairs, chunksize=args.chunk_size))
    timings["read pairs (parent)"] = time.perf_counter() - started
    predictor = Predictor(model, providers="cpu", chunk_size=args.chunk_size)
    started = time.perf_counter()
    results = [list(predictor.iter_predict(r, c, proba=args.proba)) for r, c in chunks]
    timings["predict (workers)"] = time.perf_counter() - started
    text = _PredictionText(args.proba, args.jsonl)
    buffer = io.StringIO()
    started = time.perf_counter()
    for (rows, cols), parts in zip(chunks, results):
        for result in parts:
            part = slice(result.start, result.stop)
            buffer.write("".join(text.lines(predictor, rows[part], cols[part], result)))
    timings["format text (workers)"] = time.perf_counter() - started
    output = buffer.getvalue()
    del buffer, results
    target = folder / "phase-output.tmp"
    started = time.perf_counter()
    with open(target, "w", encoding="utf-8", newline="") as fh:
        fh.write(output)
        fh.flush()
        os.fsync(fh.fileno())
    timings["write file (parent)"] = time.perf_counter() - started
    target.unlink()
    return timings


def _cpu_split(model: Path, pairs: Path, args: argparse.Namespace, workers: int, folder: Path):
    """CPU seconds of this process and of its workers for one library run writing the file.

    The workers are started with ``spawn`` here, as direct children, so that their CPU time
    is counted once they are joined (forkserver's are the server's children).
    """
    import resource

    from mfx.cli.predict import _PredictionText
    from mfx.data import iter_pairs
    from mfx.runtime import Predictor
    from mfx.runtime.parallel import stream_parallel

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    text = _PredictionText(args.proba, args.jsonl)
    own, children = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    predictor = Predictor(model, providers="cpu", threads=1)
    target = folder / "split-output.tmp"
    with open(target, "w", encoding="utf-8", newline="") as fh:
        fh.write(text.header(predictor))
        chunks = iter_pairs(pairs, chunksize=args.chunk_size)
        for chunk_text, _, _ in stream_parallel(
            model, chunks, workers=workers, proba=args.proba, transform=text,
            providers="cpu", chunk_size=args.chunk_size, start_method="spawn",
        ):  # fmt: skip
            fh.write(chunk_text)
    wall = time.perf_counter() - started
    target.unlink()
    return (
        wall,
        cpu(resource.RUSAGE_SELF) - own,
        cpu(resource.RUSAGE_CHILDREN) - children,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--proba", action="store_true", help="add probability columns")
    parser.add_argument("--jsonl", action="store_true", help="write JSON lines instead of CSV")
    parser.add_argument("--chunk-size", type=int, default=262_144)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-phases", action="store_true", help="skip the phase breakdown")
    parser.add_argument("--keep", type=Path, default=None, help="keep pairs and outputs here")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="mfx-scoring-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        model = args.model or _build_model(folder, args.seed)
        pairs = folder / "pairs.csv"
        started = time.perf_counter()
        _write_pairs(pairs, model, args.pairs, args.seed)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {platform.python_version()}"
        )
        print(
            f"model: {model}; {args.pairs:,} pairs ({pairs.stat().st_size / 1e6:.1f} MB, written "
            f"in {time.perf_counter() - started:.1f} s); chunk size {args.chunk_size:,}; "
            f"output {'JSON lines' if args.jsonl else 'CSV'}{' with --proba' if args.proba else ''}"
        )
        suffix = ".jsonl" if args.jsonl else ".csv"
        seconds: dict[int, list[float]] = {w: [] for w in counts}
        digests: dict[int, str] = {}
        for _ in range(args.rounds):
            for workers in counts:
                out = folder / f"preds-w{workers}{suffix}"
                seconds[workers].append(_run(model, pairs, out, workers, args))
                digests[workers] = _digest(out)
                size = out.stat().st_size
                if args.keep is None:
                    out.unlink()
        most = max(counts)
        if most > 1:
            print(f"spare cores: {_spare_cores(most):.2f} of {most} (busy loops, after the runs)")
        if len(set(digests.values())) != 1:
            sys.exit(f"outputs differ between worker counts: {digests}")
        print(f"output: {size / 1e6:.1f} MB, byte-identical for every worker count")
        print()
        print(f"{'workers':>7}  {'median s':>9}  {'pairs/s':>12}  {'vs ' + str(counts[0]):>6}")
        base = statistics.median(seconds[counts[0]])
        for workers in counts:
            wall = statistics.median(seconds[workers])
            print(f"{workers:>7}  {wall:>9.2f}  {args.pairs / wall:>12,.0f}  {base / wall:>5.2f}x")
        if not args.no_phases:
            print()
            print("phases of one single-process run (timed apart, in this process):")
            for name, value in _phases(model, pairs, args, folder).items():
                print(f"  {name:<24} {value:6.2f} s")
            for workers in counts:
                if workers < 2:
                    continue
                wall, parent, children = _cpu_split(model, pairs, args, workers, folder)
                print(
                    f"with {workers} workers (library call, spawn): {wall:.2f} s wall; CPU "
                    f"{parent:.2f} s in this process (reading, writing), {children:.2f} s in the "
                    f"workers (start-up, predicting, formatting); the parent's share bounds the "
                    f"speed-up at {(parent + children) / max(parent, 1e-9):.1f}x"
                )


if __name__ == "__main__":
    main()
