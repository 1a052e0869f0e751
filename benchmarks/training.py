"""Training throughput at MovieLens-20M's shape: ratings per second per epoch, RSS, accuracy.

The dataset is generated in code (``synthetic_20m``): 138,000 rows, 27,000 columns, 20,000,000
ratings, 10 half-star classes. Row and column activity follow Zipf-like weights (a few heavy
users and blockbuster items, a long tail); labels come from a planted ordinal process, a
rank-8 interaction plus row and column biases plus noise, cut at the quantiles of MovieLens's
own label frequencies. A 10% validation split measures the accuracy reached.

Measured, in one run: the default model (``mfx.config.TrainConfig()``, the fused step) at each
``--batch-sizes``; with ``--autograd``, the same model through autograd and SparseAdam (the
slow path) at the largest of them; the report's architecture (``concat``, h=32, dense Adam at
batch 65,536, the reference the issue quotes); each for ``--epochs`` epochs: seconds per epoch
(training steps, and with the validation pass), ratings per second, peak RSS, validation
accuracy. ``--surprise`` also times Surprise's SVD (a benchmark-only dependency) for one epoch
on the same ratings, in a child process so that its memory stays out of mfx's peak RSS, and
prints mfx's rate as a ratio of Surprise's rating-update rate.

    python benchmarks/training.py [--ratings 20000000] [--epochs 2] [--batch-sizes 4096,65536]
        [--autograd] [--surprise] [--skip-report] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np

#: MovieLens's half-star label frequencies (0.5 .. 5.0), roughly.
LABEL_SHARES = np.array([0.014, 0.03, 0.017, 0.075, 0.05, 0.2, 0.13, 0.265, 0.09, 0.13])


def synthetic_20m(n_ratings: int = 20_000_000, n_rows: int = 138_000, n_cols: int = 27_000,
                  seed: int = 0):
    """The benchmark dataset as raw ratings (see the module docstring)."""
    from mfx.data import RawRatings

    rng = np.random.default_rng(seed)
    row_weight = 1.0 / np.arange(1, n_rows + 1) ** 0.6
    col_weight = 1.0 / np.arange(1, n_cols + 1) ** 0.9
    rows = rng.choice(n_rows, n_ratings, p=row_weight / row_weight.sum()).astype(np.int64)
    cols = rng.choice(n_cols, n_ratings, p=col_weight / col_weight.sum()).astype(np.int64)
    u = rng.standard_normal((n_rows, 8)).astype(np.float32) * 0.5
    v = rng.standard_normal((n_cols, 8)).astype(np.float32) * 0.5
    score = np.einsum("ij,ij->i", u[rows], v[cols])
    score += rng.standard_normal(n_rows).astype(np.float32)[rows] * 0.6
    score += rng.standard_normal(n_cols).astype(np.float32)[cols] * 0.6
    score += rng.standard_normal(n_ratings).astype(np.float32) * 0.7
    edges = np.quantile(score[: 1_000_000], np.cumsum(LABEL_SHARES)[:-1])
    labels = (np.searchsorted(edges, score) + 1) * 0.5
    return RawRatings(rows, cols, labels.astype(np.float64), source="synthetic-20m")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_mfx(name, config, train_data, valid_data):
    from mfx.train import fit

    seconds: list[float] = []
    train_seconds: list[float] = []
    accuracy: list[float] = []

    def on_epoch(report):
        seconds.append(report.seconds)
        train_seconds.append(report.train_seconds)
        accuracy.append(report.valid_accuracy)
        print(f"  {name}: epoch {report.epoch}: {report.train_seconds:.1f}s training, "
              f"{report.seconds:.1f}s with validation, accuracy {report.valid_accuracy:.4f}",
              flush=True)

    started = time.perf_counter()
    fit(train_data, valid_data, config, on_epoch)
    total = time.perf_counter() - started
    per_epoch = float(np.median(seconds))
    train_per_epoch = float(np.median(train_seconds))
    return {
        "model": name,
        "config": {k: v for k, v in config.to_dict().items() if k != "device"},
        "seconds_per_epoch": per_epoch,
        "train_seconds_per_epoch": train_per_epoch,
        "ratings_per_second": len(train_data) / train_per_epoch,
        "ratings_per_second_with_validation": len(train_data) / per_epoch,
        "epochs": len(seconds),
        "valid_accuracy": accuracy[-1],
        "total_seconds": total,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_surprise(raw, epochs: int = 1):
    """Surprise SVD's fit on ``raw``, in a child process (its trainset holds Python tuples)."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/ratings.npz"
        np.savez(path, rows=raw.rows, cols=raw.cols, labels=raw.labels)
        done = subprocess.run(
            [sys.executable, __file__, "--surprise-child", path, "--epochs", str(epochs)],
            capture_output=True, text=True,
        )
    if done.returncode != 0:
        print(f"Surprise skipped: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _surprise_child(path: str, epochs: int) -> None:
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    saved = np.load(path)
    frame = pd.DataFrame({"r": saved["rows"], "c": saved["cols"], "y": saved["labels"]})
    started = time.perf_counter()
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    build = time.perf_counter() - started
    found = []
    # Surprise's default 100 factors, and mfx's 32.
    for factors in (100, 32):
        algo = SVD(n_factors=factors, n_epochs=epochs, random_state=0)
        started = time.perf_counter()
        algo.fit(trainset)
        fit_seconds = time.perf_counter() - started
        found.append({
            "model": f"Surprise SVD, {factors} factors ({epochs} epoch(s), 1 core)",
            "seconds_per_epoch": fit_seconds / epochs,
            "ratings_per_second": len(frame) * epochs / fit_seconds,
            "build_seconds": build,
            "peak_rss_mb": peak_rss_mb(),
        })
    print(json.dumps(found))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured per model")
    parser.add_argument("--batch-sizes", default="4096,65536",
                        help="batch sizes for the default model, comma-separated")
    parser.add_argument("--autograd", action="store_true",
                        help="also the default model through autograd + SparseAdam (slow)")
    parser.add_argument("--surprise", action="store_true", help="also time Surprise's SVD")
    parser.add_argument("--skip-report", action="store_true", help="skip the report's model")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument("--surprise-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.surprise_child:
        _surprise_child(args.surprise_child, args.epochs)
        return

    # As mfx-train does (mfx.cli._common.import_train); OMP_WAIT_POLICY=ACTIVE measures spinning.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from mfx.config import TrainConfig
    from mfx.data import Ratings

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    raw = synthetic_20m(args.ratings)
    ratings = Ratings.from_raw(raw)
    train_data, valid_data = ratings.split(0.1, seed=0)
    print(f"data: {len(ratings):,} ratings, {ratings.n_rows:,} x {ratings.n_cols:,}, "
          f"{len(ratings.classes)} classes, generated in {time.perf_counter() - started:.1f}s; "
          f"peak RSS so far {peak_rss_mb():.0f} MB; torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    results = []
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    for batch in batch_sizes:
        config = TrainConfig(epochs=args.epochs, batch_size=batch, patience=None, refit=False,
                             device="cpu")
        results.append(measure_mfx(f"mfx default (ordinal, fused), batch {batch:,}", config,
                                   train_data, valid_data))
    if args.autograd:
        config = TrainConfig(epochs=1, batch_size=max(batch_sizes), patience=None,
                             refit=False, fused=False, device="cpu")
        results.append(measure_mfx(
            f"mfx default, autograd + SparseAdam, batch {max(batch_sizes):,}", config,
            train_data, valid_data))
    if not args.skip_report:
        report = TrainConfig(arch="concat", dim=32, batch_size=65_536, lr=0.01, l2=0.0,
                             sparse=False, epochs=args.epochs, patience=None, refit=False,
                             device="cpu")
        results.append(measure_mfx("report's concat h=32, dense Adam, batch 65,536", report,
                                   train_data, valid_data))
    surprise = measure_surprise(train_data_raw(raw, train_data)) if args.surprise else None
    if surprise:
        results.extend(surprise)
    print(f"\n{'model':56} {'train s/epoch':>13} {'M ratings/s':>11} {'with valid':>10} "
          f"{'valid acc':>9} {'peak RSS':>9}")
    for row in results:
        acc = f"{row['valid_accuracy']:.4f}" if "valid_accuracy" in row else "-"
        rss = f"{row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else "-"
        train_s = row.get("train_seconds_per_epoch", row["seconds_per_epoch"])
        with_valid = row.get("ratings_per_second_with_validation")
        with_valid = f"{with_valid / 1e6:.2f}" if with_valid else "-"
        print(f"{row['model']:56} {train_s:13.1f} {row['ratings_per_second'] / 1e6:11.2f} "
              f"{with_valid:>10} {acc:>9} {rss:>9}")
    for reference in surprise or []:
        for row in results[:len(batch_sizes)]:
            ratio = row["ratings_per_second"] / reference["ratings_per_second"]
            print(f"{row['model']} / {reference['model']}: {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


def train_data_raw(raw, train_data):
    """The training ratings as indices (Surprise then sees exactly mfx's training set)."""
    from mfx.data import RawRatings

    labels = np.asarray(train_data.classes.values, dtype=np.float64)[train_data.labels]
    return RawRatings(train_data.rows.astype(np.int64), train_data.cols.astype(np.int64),
                      labels, source=raw.source)


if __name__ == "__main__":
    main()
