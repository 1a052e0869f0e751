"""Training throughput at MovieLens-20M's shape: ratings per second per epoch, RSS, accuracy.

The dataset is generated in code (``synthetic_20m``): 138,000 rows, 27,000 columns, 20,000,000
ratings, 10 half-star classes. Row and column activity follow Zipf-like weights (a few heavy
users and blockbuster items, a long tail); labels come from a planted ordinal process, a
rank-8 interaction plus row and column biases plus noise, cut at the quantiles of MovieLens's
own label frequencies. A 10% validation split measures the accuracy reached.

Measured, in one run: the default model (``mfx.config.TrainConfig()``) and the report's
architecture (``concat``, h=32, dense Adam at batch 65,536, the reference the issue quotes),
each for a few epochs: seconds per epoch, ratings per second, peak RSS, validation accuracy;
optionally Surprise's SVD on the same ratings (``--surprise``; a benchmark-only dependency),
to print mfx's rate as a ratio of its rating-update rate.

    python benchmarks/training.py --epochs 2 [--ratings 20000000] [--surprise] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
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
    accuracy: list[float] = []

    def on_epoch(report):
        seconds.append(report.seconds)
        accuracy.append(report.valid_accuracy)

    started = time.perf_counter()
    fit(train_data, valid_data, config, on_epoch)
    total = time.perf_counter() - started
    per_epoch = float(np.median(seconds))
    return {
        "model": name,
        "config": {k: v for k, v in config.to_dict().items() if k != "device"},
        "seconds_per_epoch": per_epoch,
        "ratings_per_second": len(train_data) / per_epoch,
        "epochs": len(seconds),
        "valid_accuracy": accuracy[-1],
        "total_seconds": total,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_surprise(raw, epochs: int):
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    frame = pd.DataFrame({"r": raw.rows, "c": raw.cols, "y": raw.labels})
    started = time.perf_counter()
    data = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0)))
    trainset = data.build_full_trainset()
    build = time.perf_counter() - started
    algo = SVD(n_epochs=epochs, random_state=0)
    started = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - started
    return {
        "model": f"surprise SVD ({epochs} epochs)",
        "seconds_per_epoch": fit_seconds / epochs,
        "ratings_per_second": len(raw) * epochs / fit_seconds,
        "build_seconds": build,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured per model")
    parser.add_argument("--surprise", action="store_true", help="also time Surprise's SVD")
    parser.add_argument("--skip-report", action="store_true", help="skip the slow reference")
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)

    from mfx.config import TrainConfig
    from mfx.data import Ratings

    started = time.perf_counter()
    raw = synthetic_20m(args.ratings)
    ratings = Ratings.from_raw(raw)
    train_data, valid_data = ratings.split(0.1, seed=0)
    print(f"data: {len(ratings):,} ratings, {ratings.n_rows:,} x {ratings.n_cols:,}, "
          f"{len(ratings.classes)} classes, generated in {time.perf_counter() - started:.1f}s; "
          f"peak RSS so far {peak_rss_mb():.0f} MB", flush=True)
    results = []
    default = TrainConfig(epochs=args.epochs, patience=None, refit=False, device="cpu")
    results.append(measure_mfx("mfx default (ordinal, sparse)", default, train_data, valid_data))
    print(results[-1], flush=True)
    if not args.skip_report:
        report = TrainConfig(arch="concat", dim=32, batch_size=65_536, lr=0.01, l2=0.0,
                             sparse=False, epochs=args.epochs, patience=None, refit=False,
                             device="cpu")
        results.append(measure_mfx("report's concat h=32, dense Adam, batch 65,536", report,
                                   train_data, valid_data))
        print(results[-1], flush=True)
    surprise = measure_surprise(raw, args.epochs) if args.surprise else None
    if surprise:
        results.append(surprise)
    print(f"\n{'model':52} {'s/epoch':>9} {'M ratings/s':>12} {'valid acc':>10} {'peak RSS':>9}")
    for row in results:
        acc = f"{row['valid_accuracy']:.4f}" if "valid_accuracy" in row else "-"
        rss = f"{row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else "-"
        print(f"{row['model']:52} {row['seconds_per_epoch']:9.1f} "
              f"{row['ratings_per_second'] / 1e6:12.2f} {acc:>10} {rss:>9}")
    if surprise:
        ratio = results[0]["ratings_per_second"] / surprise["ratings_per_second"]
        print(f"mfx default / Surprise SVD update rate: {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
