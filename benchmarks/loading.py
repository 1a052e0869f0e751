"""Loading speed at MovieLens-20M's shape: a ratings CSV parsed and mapped to indices.

The file is MovieLens-20M's ``ratings.csv`` in shape (generated unless ``--csv`` names one):
header ``userId,movieId,rating,timestamp``, 20,000,000 lines sorted by user, 138,000 users,
27,000 movies with ids spread over 1..131,000, half-star ratings 0.5..5.0 at MovieLens's
frequencies, ten-digit integer timestamps. Activity follows Zipf-like weights.

Measured, in one run, each a few times (the median is printed):

1. bare ``pandas.read_csv(path, usecols=[0, 1, 2], engine="c")``, the floor;
2. ``mfx.data.read_ratings(path)``, the reader with every check;
3. ``Ratings.from_raw(raw)``, raw ids and labels mapped to indices;

then wall seconds, million rows per second and the ratio to the bare read (mfx's total is
2 + 3), and the same for CPU seconds (all threads; less sensitive to a busy machine). Then one
load per fresh process, as a command does it (``--fresh`` of each, bare and mfx taking turns):
median seconds and peak resident memory. The load average is printed too: the absolute figures
depend on what else the machine runs, the ratios much less.

    python benchmarks/loading.py [--rows 20000000] [--csv PATH] [--repeats 3] [--fresh 3]
                                 [--profile] [--json out.json]

``--csv PATH`` reads PATH, writing the generated file there first if it does not exist (so a
second run skips the generation).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: MovieLens's half-star label frequencies (0.5 .. 5.0), roughly.
LABEL_SHARES = np.array([0.014, 0.03, 0.017, 0.075, 0.05, 0.2, 0.13, 0.265, 0.09, 0.13])
N_USERS, N_MOVIES, MAX_MOVIE_ID = 138_000, 27_000, 131_000


def write_movielens_csv(path: Path, n_rows: int, seed: int = 0) -> None:
    """Write the benchmark file (see the module docstring) to ``path``, atomically."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), N_MOVIES, replace=False))
    user_weight = 1.0 / np.arange(1, N_USERS + 1) ** 0.6
    movie_weight = 1.0 / np.arange(1, N_MOVIES + 1) ** 0.9
    users = rng.choice(N_USERS, n_rows, p=user_weight / user_weight.sum())
    users = np.sort(rng.permutation(N_USERS)[users] + 1)  # every user id in 1..138,000
    movies = movie_ids[
        rng.permutation(N_MOVIES)[rng.choice(N_MOVIES, n_rows, p=movie_weight / movie_weight.sum())]
    ]
    stars = (rng.choice(10, n_rows, p=LABEL_SHARES / LABEL_SHARES.sum()) + 1) * 0.5
    stamps = rng.integers(789_652_009, 1_427_784_002, n_rows)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    chunk = 2_000_000
    with open(tmp, "w", newline="") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_rows, chunk):
            part = slice(start, start + chunk)
            frame = pd.DataFrame(
                {"u": users[part], "m": movies[part], "r": stars[part], "t": stamps[part]}
            )
            frame.to_csv(fh, header=False, index=False, float_format="%.1f", lineterminator="\n")
    os.replace(tmp, path)


def _median_seconds(run, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds (all threads) of ``repeats`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        result = None  # drop the previous result first, so two never sit in memory at once
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), result


def _bare_read(path: Path):
    import pandas as pd

    return pd.read_csv(path, usecols=[0, 1, 2], engine="c")


def _mfx_load(path: Path):
    from mfx.data import Ratings, read_ratings

    return Ratings.from_raw(read_ratings(path))


_PEAK_PROBE = """
import resource, sys, time
sys.path.insert(0, {folder!r})
from pathlib import Path
import loading, mfx.data, pandas
started = time.perf_counter()
loading._{what}(Path({path!r}))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:  # exec keeps ru_maxrss from the process that spawned this one; VmHWM starts afresh
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    peak = int(status.split()[0])
except (OSError, IndexError, ValueError):
    pass
print(seconds, peak)
"""


def _fresh_load(what: str, path: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one load (``what``: "bare" or "mfx") in a fresh interpreter.

    The peak is ``resource.getrusage``'s in the child, unless Linux's VmHWM is there: a process
    started from this one (which holds the generated data) inherits its ``ru_maxrss``.
    """
    code = _PEAK_PROBE.format(
        folder=str(Path(__file__).parent),
        path=str(path),
        what="bare_read" if what == "bare" else "mfx_load",
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, peak = done.stdout.split()[-2:]
    return float(seconds), int(peak) / 1024


def _load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--csv", type=Path, default=None, help="file to read (written if absent)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one mfx load")
    parser.add_argument(
        "--fresh", type=int, default=3, help="loads timed in fresh processes, with peak RSS"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from mfx.data import Ratings, read_ratings

    with tempfile.TemporaryDirectory() as folder:
        path = args.csv or Path(folder) / "ratings.csv"
        if not path.exists():
            started = time.perf_counter()
            write_movielens_csv(path, args.rows)
            print(
                f"wrote {path} ({path.stat().st_size / 2**20:,.0f} MiB) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        load_before = _load_average()
        bare, bare_cpu, frame = _median_seconds(lambda: _bare_read(path), args.repeats)
        n = len(frame)
        del frame
        read, read_cpu, raw = _median_seconds(lambda: read_ratings(path), args.repeats)
        mapped, mapped_cpu, data = _median_seconds(
            lambda raw=raw: Ratings.from_raw(raw), args.repeats
        )
        load_after = _load_average()
        if len(data) != n:
            raise SystemExit(f"mfx read {len(data)} ratings, pandas {n}")
        del data, raw
        rows = {
            "pandas.read_csv (bare, usecols=[0,1,2])": (bare, bare_cpu),
            "mfx.data.read_ratings": (read, read_cpu),
            "Ratings.from_raw": (mapped, mapped_cpu),
            "mfx total (read_ratings + from_raw)": (read + mapped, read_cpu + mapped_cpu),
        }
        print(
            f"{n:,} ratings, median of {args.repeats}; load average {load_before} before, "
            f"{load_after} after ({os.cpu_count()} CPUs)"
        )
        print(
            f"{'step':<42} {'seconds':>8} {'M rows/s':>9} {'x bare':>7} {'CPU s':>6} {'x bare':>7}"
        )
        for name, (seconds, cpu) in rows.items():
            print(
                f"{name:<42} {seconds:8.2f} {n / seconds / 1e6:9.1f} {seconds / bare:7.2f} "
                f"{cpu:6.2f} {cpu / bare_cpu:7.2f}"
            )
        fresh: dict[str, dict[str, float]] = {}
        if args.fresh:
            # One load per new interpreter, as a command does it, bare and mfx taking turns.
            runs = {"bare": [], "mfx": []}
            for _ in range(args.fresh):
                for what, seen in runs.items():
                    seen.append(_fresh_load(what, path))
            fresh = {
                what: {
                    "seconds": statistics.median(t for t, _ in seen),
                    "peak_rss_mb": max(m for _, m in seen),
                }
                for what, seen in runs.items()
            }
            bare_fresh, mfx_fresh = fresh["bare"], fresh["mfx"]
            print(
                f"one load in a fresh process, median of {args.fresh}: "
                f"bare pandas {bare_fresh['seconds']:.2f} s, "
                f"peak RSS {bare_fresh['peak_rss_mb']:,.0f} MiB; "
                f"mfx {mfx_fresh['seconds']:.2f} s "
                f"({mfx_fresh['seconds'] / bare_fresh['seconds']:.2f} x bare), "
                f"peak RSS {mfx_fresh['peak_rss_mb']:,.0f} MiB "
                f"(file {path.stat().st_size / 2**20:,.0f} MiB)"
            )
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            Ratings.from_raw(read_ratings(path))
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "rows": n,
                        "repeats": args.repeats,
                        "fresh_process": fresh,
                        "seconds": {name: wall for name, (wall, _) in rows.items()},
                        "cpu_seconds": {name: cpu for name, (_, cpu) in rows.items()},
                        "load_average": [load_before, load_after],
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
