"""Data-parallel training throughput: 1 and 2 workers on the 20-million-rating synthetic data.

The dataset is ``training.synthetic_20m`` (MovieLens-20M's shape, 10 classes, 10% held out).
Each configuration trains the default model (the fused ordinal step) for ``--epochs`` epochs at
the global batch ``--batch-size``, and reports ratings per second of the training steps (the
global count over the wall time of an epoch), the validation accuracy reached, and the time
the workers spent waiting in collectives, measured around ``all_gather`` / ``all_reduce``:

* 1 worker, ``--threads`` torch threads (the plain trainer);
* N workers of 1 thread each over ``torch.distributed`` (gloo on loopback), started as
  torchrun would start them, each training its shard (:mod:`mfx.train.distributed`).

Workers are forked from this process after the data is built, so they share it copy-on-write
instead of generating or reading it again.

    python benchmarks/distributed.py [--ratings 20000000] [--epochs 1] [--workers 1,2]
        [--batch-size 65536] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training import peak_rss_mb, synthetic_20m  # noqa: E402


def _timed_collectives():
    """Wrap torch.distributed's all_gather / all_reduce to add up the seconds spent in them."""
    import torch.distributed as dist

    spent = {"seconds": 0.0, "calls": 0}
    for name in ("all_gather", "all_reduce"):
        original = getattr(dist, name)

        def timed(*args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - started
                spent["calls"] += 1

        setattr(dist, name, timed)
    return spent


def _run(rank: int, size: int, port: int, threads: int, config, train, valid, out: str):
    import torch

    from mfx.train import distributed, fit

    torch.set_num_threads(threads)
    world = distributed.World()
    spent = {"seconds": 0.0, "calls": 0}
    if size > 1:
        os.environ.update(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size)
        )
        spent = _timed_collectives()
        world = distributed.init(torch.device("cpu"))
    epochs = []
    result = fit(train, valid, config, on_epoch=epochs.append, world=world)
    if rank == 0:
        Path(out).write_text(
            json.dumps(
                {
                    "train_seconds": [e.train_seconds for e in epochs],
                    "valid_accuracy": result.metrics.get("valid_accuracy"),
                    "collective_seconds": spent["seconds"],
                    "collective_calls": spent["calls"],
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
        )
    if size > 1:
        distributed.shutdown()


def measure(workers: int, threads: int, config, train, valid) -> dict:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/rank0.json"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        started = time.perf_counter()
        mp.start_processes(
            _run,
            args=(workers, port, threads, config, train, valid, out),
            nprocs=workers,
            join=True,
            start_method="fork",
        )
        wall = time.perf_counter() - started
        figures = json.loads(Path(out).read_text())
    per_epoch = sorted(figures["train_seconds"])[len(figures["train_seconds"]) // 2]
    epochs = len(figures["train_seconds"])
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "batch_size": config.batch_size,
        "train_seconds_per_epoch": per_epoch,
        "ratings_per_second": len(train) / per_epoch,
        "valid_accuracy": figures["valid_accuracy"],
        "collective_seconds_per_epoch": figures["collective_seconds"] / epochs,
        "collective_calls": figures["collective_calls"],
        "rank0_peak_rss_mb": figures["peak_rss_mb"],
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--batch-size", type=int, default=65_536, help="global batch size")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the single worker (multi-worker runs use 1 each)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as mfx-train does

    from mfx.config import TrainConfig
    from mfx.data import Ratings

    started = time.perf_counter()
    ratings = Ratings.from_raw(synthetic_20m(args.ratings))
    train, valid = ratings.split(0.1, seed=0)
    print(f"data: {len(ratings):,} ratings ({len(train):,} training), {ratings.n_rows:,} x "
          f"{ratings.n_cols:,}, built in {time.perf_counter() - started:.1f}s; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         refit=False, device="cpu")
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
        threads = args.threads if workers == 1 else 1
        row = measure(workers, threads, config, train, valid)
        row["load_average_after"] = os.getloadavg()[0]
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]["ratings_per_second"]
    print(f"\n{'workers':>7} {'threads':>7} {'train s/epoch':>13} {'M ratings/s':>11} "
          f"{'speed-up':>8} {'in collectives':>14} {'valid acc':>9}")
    for row in results:
        print(f"{row['workers']:7d} {row['threads_per_worker']:7d} "
              f"{row['train_seconds_per_epoch']:13.1f} {row['ratings_per_second'] / 1e6:11.2f} "
              f"{row['ratings_per_second'] / base:8.2f} "
              f"{row['collective_seconds_per_epoch']:13.1f}s {row['valid_accuracy']:9.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
