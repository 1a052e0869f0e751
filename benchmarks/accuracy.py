"""Accuracy of every mfx architecture against Surprise and trivial baselines, on one protocol.

    python benchmarks/accuracy.py --data ratings.csv [--json OUT] [--skip-surprise]
    python benchmarks/accuracy.py --synthetic [--json OUT] [--skip-surprise]

Protocol (identical for every model):

* The file's ratings, in file order, are permuted with ``numpy.random.default_rng(0)
  .permutation(N)``; the first ``int(0.8 * N)`` are the training part, the rest the test part.
* mfx models see only the training part: ``Ratings.from_raw(train_part).split(
  config.valid_fraction, seed=config.seed)`` gives the early-stopping validation split, then
  ``fit(train, valid, config)``, which with ``refit=True`` retrains on the whole training part
  for the best epoch count. Surprise fits ``build_full_trainset()`` of the training part; the
  trivial baselines count labels in the training part.
* Test pairs whose row or column id never occurs in the training part are counted and
  **dropped for every model** in the main table (so all rows score the same pairs). A second,
  shorter table scores all test pairs: mfx models and the trivial baselines answer an unseen
  pair with the training class frequencies (the prior that ``mfx.runtime`` and ``mfx-eval
  --unknown prior`` use), except that the row baseline keeps using a seen row's counts when
  only the column is unseen; Surprise answers with its own fallback (global mean plus whatever
  bias of the pair is known).
* Metrics on the test part: exact accuracy (predicted class == true class), log-loss (mean
  negative log-probability of the true class), RMSE and MAE of the expected value (the
  probability-weighted label) and macro-F1 (over the classes present in the truth or the
  predictions). Surprise estimates a number: its accuracy and macro-F1 use the estimate snapped
  to the nearest label value (ties to the lower one), RMSE and MAE the estimate itself, and
  log-loss does not apply (``-``).
* Fit time is wall-clock seconds of ``fit`` (mfx: validation run plus refit) or ``algo.fit``
  (Surprise), with the process CPU seconds beside it because the machine may be shared. Size is
  the exported ``.onnx`` file for mfx (``mfx.export.export_onnx``, fp32, ``validation=None``)
  and ``len(pickle.dumps(algo))`` for Surprise (which includes its trainset, as Surprise's own
  ``dump`` would).

Models: mfx ``concat`` (the report's additive architecture at h=32), ``product`` and
``ordinal`` (the default), each with :class:`mfx.config.TrainConfig` defaults and no per-arch
override (``concat`` has no ``penalty()``, so its ``l2`` setting is inert); Surprise
``BaselineOnly``, ``SVD``, ``SVDpp`` (defaults, ``random_state=0``) and ``KNNBaseline``
(``pearson_baseline`` similarities over the smaller of rows and columns, as a full similarity
matrix over the larger would not fit in memory on the synthetic data); the global most
frequent class; each row's most frequent label (probabilities: the row's label counts plus one
pseudo-count per class spread as the training prior, so ties go to the globally commoner label
and log-loss is finite). ``--seeds`` retrains the default model with other seeds (which change
the validation split, the initialisation and the batch order) and prints mean and spread.

``--synthetic`` replaces the file with a generated dataset of another shape (see
:func:`synthetic_ratings`): 20,000 rows x 2,000 columns, about 300,000 ratings, labels 1..5,
from a planted low-rank + biases cumulative-logit process with per-row use of the scale. The
same protocol and the same mfx defaults apply unchanged; an extra row, ``oracle``, scores the
true generating probabilities (the best any model can do in expectation).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfx import metrics
from mfx.config import TrainConfig
from mfx.data import Ratings, RawRatings, read_ratings
from mfx.export import export_onnx
from mfx.train import fit, save_checkpoint

log = logging.getLogger("accuracy")

#: Targets for the best mfx model (issue 9).
TARGETS = {"accuracy": 0.37, "log_loss": 1.60, "rmse": 0.840, "fit_seconds": 10.0}

#: mfx models in the table: name -> config. No per-arch override is needed (see the docstring).
MFX_MODELS: dict[str, TrainConfig] = {
    "mfx concat h=32": TrainConfig(arch="concat", dim=32),
    "mfx product": TrainConfig(arch="product"),
    "mfx ordinal (default)": TrainConfig(),
    # The same model through autograd and SparseAdam: the fused step must not lose accuracy.
    "mfx ordinal, autograd path (--no-fused)": TrainConfig(fused=False),
}
DEFAULT_MODEL = "mfx ordinal (default)"


# --------------------------------------------------------------------------- data


def synthetic_ratings(
    n_rows: int = 20_000,
    n_cols: int = 2_000,
    n_ratings: int = 300_000,
    rank: int = 8,
    seed: int = 0,
) -> tuple[RawRatings, np.ndarray]:
    """A planted ordinal dataset of a different shape from MovieLens, and its true probabilities.

    Process (all draws from ``numpy.random.default_rng(seed)``):

    * row factors ``u_i`` and column factors ``v_j`` in ``R^rank``, entries normal with
      variance ``1.2 / sqrt(rank)`` each, so ``u_i . v_j`` has standard deviation about 1.2;
      row bias ``a_i ~ N(0, 0.6^2)``, column bias ``b_j ~ N(0, 0.8^2)``;
      score ``s_ij = u_i . v_j + a_i + b_j``.
    * per-row use of the scale: the shared cut-points ``t = (-2.0, -0.7, 0.5, 1.8)`` become
      ``c_i + g_i * t`` with a shift ``c_i ~ N(0, 0.5^2)`` (lenient or harsh raters) and a
      stretch ``g_i = exp(N(0, 0.25^2))`` (raters who use the extremes more or less);
    * label ``1 + #{k : s_ij + e_ij > c_i + g_i t_k}`` with logistic noise ``e_ij`` of scale
      0.5, i.e. ``P(label <= k) = sigmoid((c_i + g_i t_k - s_ij) / 0.5)``;
    * which cells are observed: rows drawn with weights ``lognormal(0, 1)`` (activity), columns
      with Zipf-like weights ``rank^-0.8`` over a random ordering (popularity); draws are
      de-duplicated and the first ``n_ratings`` distinct cells kept, in draw order. Some rows
      and columns therefore have very few ratings, as in real data.

    Returns
    -------
    ratings, probabilities
        The observed cells with integer labels 1..5, and the true class probabilities
        ``[n_ratings, 5]`` of each cell (same order).
    """
    rng = np.random.default_rng(seed)
    scale = (1.2 / np.sqrt(rank)) ** 0.5
    row_factors = rng.normal(0.0, scale, (n_rows, rank))
    col_factors = rng.normal(0.0, scale, (n_cols, rank))
    row_bias = rng.normal(0.0, 0.6, n_rows)
    col_bias = rng.normal(0.0, 0.8, n_cols)
    shift = rng.normal(0.0, 0.5, n_rows)
    stretch = np.exp(rng.normal(0.0, 0.25, n_rows))
    cuts = np.array([-2.0, -0.7, 0.5, 1.8])
    noise_scale = 0.5

    activity = rng.lognormal(0.0, 1.0, n_rows)
    popularity = np.arange(1, n_cols + 1, dtype=np.float64) ** -0.8
    popularity = popularity[rng.permutation(n_cols)]
    rows = np.empty(0, dtype=np.int64)
    cols = np.empty(0, dtype=np.int64)
    while True:
        draws = int(1.5 * n_ratings)
        rows = np.concatenate([rows, rng.choice(n_rows, draws, p=activity / activity.sum())])
        cols = np.concatenate([cols, rng.choice(n_cols, draws, p=popularity / popularity.sum())])
        _, first = np.unique(rows * n_cols + cols, return_index=True)
        if first.size >= n_ratings:
            keep = np.sort(first)[:n_ratings]
            rows, cols = rows[keep], cols[keep]
            break

    score = (row_factors[rows] * col_factors[cols]).sum(1) + row_bias[rows] + col_bias[cols]
    thresholds = shift[rows, None] + stretch[rows, None] * cuts[None, :]
    cumulative = 1.0 / (1.0 + np.exp(-(thresholds - score[:, None]) / noise_scale))
    cumulative = np.concatenate(
        [np.zeros((len(rows), 1)), cumulative, np.ones((len(rows), 1))], axis=1
    )
    probabilities = np.diff(cumulative, axis=1)
    uniform = rng.random(len(rows))
    labels = (uniform[:, None] > cumulative[:, 1:-1]).sum(1) + 1
    source = (
        f"synthetic(rows={n_rows}, cols={n_cols}, ratings={n_ratings}, rank={rank}, "
        f"classes=1..5, seed={seed})"
    )
    raw = RawRatings(rows, cols, labels.astype(np.float64), source=source)
    return raw, probabilities


def _subset(raw: RawRatings, index: np.ndarray) -> RawRatings:
    return RawRatings(raw.rows[index], raw.cols[index], raw.labels[index], source=raw.source)


@dataclass
class Split:
    """The protocol's training and test parts, mapped with the training part's ids."""

    train_raw: RawRatings
    test_raw: RawRatings
    train: Ratings  # the whole training part (validation is split off inside it)
    test_rows: np.ndarray  # index into train's maps, -1 where unseen
    test_cols: np.ndarray
    test_labels: np.ndarray  # class index
    known: np.ndarray  # both ids seen in the training part
    test_index: np.ndarray  # positions of the test part in the original order

    @property
    def values(self) -> np.ndarray:
        return self.train.classes.as_array()

    @property
    def prior(self) -> np.ndarray:
        counts = self.train.class_counts().astype(np.float64)
        return counts / counts.sum()


def protocol_split(raw: RawRatings) -> Split:
    """80/20 by ``default_rng(0).permutation(N)`` of the rows in file order."""
    n = len(raw)
    order = np.random.default_rng(0).permutation(n)
    cut = int(0.8 * n)
    train_raw, test_raw = _subset(raw, order[:cut]), _subset(raw, order[cut:])
    train = Ratings.from_raw(train_raw)
    test_rows = train.row_ids.lookup(test_raw.rows)
    test_cols = train.col_ids.lookup(test_raw.cols)
    # The class list of the training part; a test label outside it is an error (never seen).
    test_labels = np.searchsorted(train.classes.as_array(), test_raw.labels)
    if np.any(train.classes.as_array()[np.clip(test_labels, 0, len(train.classes) - 1)]
              != test_raw.labels):
        raise SystemExit("a test label does not occur in the training part")
    known = (test_rows >= 0) & (test_cols >= 0)
    return Split(train_raw, test_raw, train, test_rows, test_cols, test_labels, known,
                 order[cut:])


# --------------------------------------------------------------------------- scoring


@dataclass
class Scores:
    accuracy: float
    log_loss: float | None
    rmse: float
    mae: float
    macro_f1: float
    pairs: int


def score_probabilities(labels: np.ndarray, probabilities: np.ndarray,
                        values: np.ndarray) -> Scores:
    predicted = probabilities.argmax(1)
    expected = probabilities @ values
    truth = values[labels]
    confusion = metrics.confusion_matrix(labels, predicted, len(values))
    return Scores(
        accuracy=metrics.accuracy(labels, predicted),
        log_loss=metrics.log_loss(labels, probabilities),
        rmse=metrics.rmse(truth, expected),
        mae=metrics.mae(truth, expected),
        macro_f1=metrics.macro_f1(confusion),
        pairs=len(labels),
    )


def score_estimates(labels: np.ndarray, estimates: np.ndarray, values: np.ndarray) -> Scores:
    """Scores of a regressor: accuracy and F1 from the nearest label value."""
    # Nearest class value; argmin takes the first (lower) value on an exact tie.
    predicted = np.abs(estimates[:, None] - values[None, :]).argmin(1)
    truth = values[labels]
    confusion = metrics.confusion_matrix(labels, predicted, len(values))
    return Scores(
        accuracy=metrics.accuracy(labels, predicted),
        log_loss=None,
        rmse=metrics.rmse(truth, estimates),
        mae=metrics.mae(truth, estimates),
        macro_f1=metrics.macro_f1(confusion),
        pairs=len(labels),
    )


@dataclass
class Row:
    """One line of the table."""

    model: str
    known: Scores
    all_pairs: Scores | None = None
    fit_seconds: float | None = None
    cpu_seconds: float | None = None
    size_bytes: int | None = None
    size_kind: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


class _Timer:
    def __enter__(self) -> _Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _probability_rows(split: Split, known_probabilities: np.ndarray, fallback: np.ndarray,
                      name: str, **extra: Any) -> Row:
    """A Row from probabilities on the known pairs; unseen pairs answered with ``fallback``."""
    labels = split.test_labels
    everything = np.tile(fallback, (len(labels), 1))
    everything[split.known] = known_probabilities
    return Row(
        name,
        known=score_probabilities(labels[split.known], known_probabilities, split.values),
        all_pairs=score_probabilities(labels, everything, split.values),
        **extra,
    )


# --------------------------------------------------------------------------- mfx


@torch.no_grad()
def _mfx_probabilities(model: torch.nn.Module, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    model.eval()
    pairs = torch.from_numpy(np.stack([rows, cols], 1).astype(np.int64))
    parts = [torch.softmax(model(pairs[s : s + 65_536]), 1).double()
             for s in range(0, len(pairs), 65_536)]
    return torch.cat(parts).numpy()


def run_mfx(split: Split, name: str, config: TrainConfig, export: bool = True) -> Row:
    train, valid = split.train.split(config.valid_fraction, seed=config.seed)
    with _Timer() as timer:
        result = fit(train, valid, config)
    probabilities = _mfx_probabilities(
        result.model, split.test_rows[split.known], split.test_cols[split.known]
    )
    size = None
    if export:
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = save_checkpoint(Path(folder) / "model.pt", result)
            size = export_onnx(checkpoint, Path(folder) / "model.onnx", validation=None).size_bytes
    notes = {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "valid_loss": result.metrics.get("valid_loss"),
        "valid_accuracy": result.metrics.get("valid_accuracy"),
        "config": config.to_dict(),
    }
    return _probability_rows(split, probabilities, split.prior, name, fit_seconds=timer.wall,
                             cpu_seconds=timer.cpu, size_bytes=size, size_kind="onnx",
                             notes=notes)


# --------------------------------------------------------------------------- Surprise


def surprise_algorithms(split: Split) -> dict[str, Callable[[], Any]]:
    import surprise

    user_based = split.train.n_rows <= split.train.n_cols
    return {
        "Surprise BaselineOnly": lambda: surprise.BaselineOnly(verbose=False),
        "Surprise SVD": lambda: surprise.SVD(random_state=0),
        "Surprise SVD++": lambda: surprise.SVDpp(random_state=0),
        f"Surprise KNNBaseline ({'user' if user_based else 'item'})": lambda: (
            surprise.KNNBaseline(
                sim_options={"name": "pearson_baseline", "user_based": user_based},
                verbose=False,
            )
        ),
    }


def run_surprise(split: Split, name: str, make: Callable[[], Any]) -> Row:
    import pandas as pd
    import surprise

    values = split.values
    frame = pd.DataFrame({
        "row": split.train_raw.rows, "col": split.train_raw.cols, "label": split.train_raw.labels,
    })
    reader = surprise.Reader(rating_scale=(float(values.min()), float(values.max())))
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = make()
    with _Timer() as timer:
        algo.fit(trainset)
    test = split.test_raw
    estimates = np.fromiter(
        (algo.predict(r, c, clip=True).est for r, c in zip(test.rows.tolist(),
                                                           test.cols.tolist())),
        dtype=np.float64, count=len(test),
    )
    labels = split.test_labels
    return Row(
        name,
        known=score_estimates(labels[split.known], estimates[split.known], values),
        all_pairs=score_estimates(labels, estimates, values),
        fit_seconds=timer.wall,
        cpu_seconds=timer.cpu,
        size_bytes=len(pickle.dumps(algo)),
        size_kind="pickle",
    )


# --------------------------------------------------------------------------- trivial


def run_trivial(split: Split) -> list[Row]:
    prior = split.prior
    n_known = int(split.known.sum())
    most_frequent = _probability_rows(
        split, np.tile(prior, (n_known, 1)), prior, "most frequent class (global)"
    )
    most_frequent.notes["label"] = float(split.values[prior.argmax()])
    train = split.train
    k = len(train.classes)
    counts = np.zeros((train.n_rows, k))
    np.add.at(counts, (train.rows, train.labels), 1.0)
    # One pseudo-count per class, spread as the prior: ties go to the commoner label.
    smoothed = (counts + k * prior) / (counts.sum(1, keepdims=True) + k)
    per_row = _probability_rows(
        split, smoothed[split.test_rows[split.known]], prior, "most frequent label of the row"
    )
    # On all pairs the row's own counts also answer pairs whose column alone is unseen.
    labels, seen_row = split.test_labels, split.test_rows >= 0
    everything = np.tile(prior, (len(labels), 1))
    everything[seen_row] = smoothed[split.test_rows[seen_row]]
    per_row.all_pairs = score_probabilities(labels, everything, split.values)
    return [most_frequent, per_row]


def run_oracle(split: Split, probabilities: np.ndarray) -> Row:
    truth = probabilities[split.test_index]
    return _probability_rows(split, truth[split.known], split.prior, "oracle (true process)")


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _size(row: Row) -> str:
    if row.size_bytes is None:
        return "-"
    return f"{row.size_bytes / 1e6:.2f} MB {row.size_kind}"


def table(rows: list[Row], which: str = "known") -> str:
    header = (f"| {'model':<32} | accuracy | log-loss |  RMSE |   MAE | macro-F1 | fit s | cpu s |"
              f" {'size':<18} |")
    lines = [header, "|" + "|".join("-" * len(p) for p in header.split("|")[1:-1]) + "|"]
    for row in rows:
        s = row.known if which == "known" else row.all_pairs
        if s is None:
            continue
        lines.append(
            f"| {row.model:<32} | {_fmt(s.accuracy):>8} | {_fmt(s.log_loss):>8} | "
            f"{_fmt(s.rmse):>5} | {_fmt(s.mae):>5} | {_fmt(s.macro_f1):>8} | "
            f"{_fmt(row.fit_seconds, 1):>5} | {_fmt(row.cpu_seconds, 1):>5} | {_size(row):<18} |"
        )
    return "\n".join(lines)


def short_table(rows: list[Row]) -> str:
    header = f"| {'model':<32} | accuracy | log-loss |  RMSE |   MAE | macro-F1 |"
    lines = [header, "|" + "|".join("-" * len(p) for p in header.split("|")[1:-1]) + "|"]
    for row in rows:
        s = row.all_pairs
        if s is None:
            continue
        lines.append(
            f"| {row.model:<32} | {_fmt(s.accuracy):>8} | {_fmt(s.log_loss):>8} | "
            f"{_fmt(s.rmse):>5} | {_fmt(s.mae):>5} | {_fmt(s.macro_f1):>8} |"
        )
    return "\n".join(lines)


def target_lines(rows: list[Row]) -> list[str]:
    mfx_rows = [r for r in rows if r.model.startswith("mfx")]
    if not mfx_rows:
        return []
    best = max(mfx_rows, key=lambda r: r.known.accuracy)
    out = [f"Targets, best mfx model by accuracy: {best.model}"]
    checks = [
        ("accuracy", best.known.accuracy, ">=", TARGETS["accuracy"]),
        ("log-loss", best.known.log_loss, "<=", TARGETS["log_loss"]),
        ("RMSE", best.known.rmse, "<=", TARGETS["rmse"]),
        ("fit s", best.fit_seconds, "<", TARGETS["fit_seconds"]),
    ]
    for label, value, op, bound in checks:
        met = value is not None and (value >= bound if op == ">=" else
                                     value <= bound if op == "<=" else value < bound)
        margin = "" if value is None else f" (margin {value - bound:+.4f})"
        out.append(f"  {label:<9} {_fmt(value, 4)} {op} {bound}: {'met' if met else 'NOT met'}"
                   f"{margin}")
    out.append("  (fit s is wall-clock on a shared machine; cpu s is beside it in the table)")
    return out


def _machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()}" \
           " threads)"


def _code_state() -> str:
    """The commit, and a digest of uncommitted changes under src/ (the figures depend on both)."""
    root = Path(__file__).resolve().parent.parent

    def git(*words: str) -> str:
        try:
            return subprocess.run(["git", *words], cwd=root, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    diff = git("diff", "HEAD", "--", "src")
    if not diff:
        return f"{commit} (src clean)"
    import hashlib

    digest = hashlib.sha1(diff.encode()).hexdigest()[:10]
    changed = git("diff", "HEAD", "--name-only", "--", "src").split()
    return f"{commit} + uncommitted src changes ({', '.join(changed)}; diff sha1 {digest})"


def _write_json(path: str, payload: dict[str, Any]) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    tmp.replace(target)


def _scores_dict(s: Scores | None) -> dict[str, Any] | None:
    return None if s is None else dict(vars(s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="ratings file (MovieLens ratings.csv)")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the generated dataset instead of --data")
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--skip-surprise", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: Surprise is single-threaded, "
                        "and on a shared machine torch's spinning threads can make a fit many "
                        "times slower)")
    parser.add_argument("--models", default="",
                        help="only the mfx models whose name contains this text")
    parser.add_argument("--seeds", default="0,1,2",
                        help="seeds for the default model's seed-sensitivity runs ('' for none)")
    args = parser.parse_args(argv)
    if bool(args.data) == args.synthetic:
        parser.error("give exactly one of --data PATH or --synthetic")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = sys.stdout
    code = _code_state()

    true_probabilities = None
    if args.synthetic:
        raw, true_probabilities = synthetic_ratings()
    else:
        raw = read_ratings(args.data)
    split = protocol_split(raw)
    n_unknown = int((~split.known).sum())
    unseen_rows = int((split.test_rows < 0).sum())
    unseen_cols = int((split.test_cols < 0).sum())
    out.write(
        f"data: {raw.source}: {len(raw)} ratings, {split.train.n_rows} rows x "
        f"{split.train.n_cols} columns seen in training, {len(split.train.classes)} classes "
        f"{split.train.classes.to_list()}\n"
        f"split: {len(split.train_raw)} training / {len(split.test_raw)} test ratings; "
        f"{n_unknown} test pairs have an id unseen in training ({unseen_rows} row, "
        f"{unseen_cols} column); dropped from the main table, leaving {int(split.known.sum())}\n"
        f"machine: {_machine()}\ncode: {code}\n"
        f"mfx defaults: {TrainConfig().to_dict()}\n\n"
    )
    out.flush()

    rows: list[Row] = []
    for name, config in MFX_MODELS.items():
        if args.models not in name:
            continue
        log.warning("training %s", name)
        rows.append(run_mfx(split, name, config))
    if not args.skip_surprise:
        try:
            algorithms = surprise_algorithms(split)
        except ImportError:
            out.write("Surprise is not installed (pip install scikit-surprise); skipped\n")
            algorithms = {}
        for name, make in algorithms.items():
            log.warning("fitting %s", name)
            rows.append(run_surprise(split, name, make))
    rows.extend(run_trivial(split))
    if true_probabilities is not None:
        rows.append(run_oracle(split, true_probabilities))

    out.write(f"Test pairs with both ids seen in training ({int(split.known.sum())}):\n\n")
    out.write(table(rows) + "\n\n")
    out.write("\n".join(target_lines(rows)) + "\n")
    epochs = [f"{r.model}: {r.notes['best_epoch']}" for r in rows if "best_epoch" in r.notes]
    out.write(f"  best epochs (early stopping): {'; '.join(epochs)}\n\n")
    out.write(
        f"All {len(split.test_raw)} test pairs (unseen ids: mfx and global mode -> training "
        "prior, row mode -> the row's counts when the row is seen, Surprise -> its own "
        "fallback):\n\n"
    )
    out.write(short_table(rows) + "\n\n")
    out.flush()

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    seed_rows: list[Row] = []
    for seed in seeds:
        default = next(r for r in rows if r.model == DEFAULT_MODEL)
        if seed == MFX_MODELS[DEFAULT_MODEL].seed:
            seed_rows.append(default)
            continue
        log.warning("training %s, seed %d", DEFAULT_MODEL, seed)
        config = replace(MFX_MODELS[DEFAULT_MODEL], seed=seed)
        seed_rows.append(run_mfx(split, f"{DEFAULT_MODEL} seed {seed}", config, export=False))
    if len(seed_rows) > 1:
        out.write(f"Seed sensitivity of {DEFAULT_MODEL}, seeds {seeds}:\n\n")
        for key, label in (("accuracy", "accuracy"), ("log_loss", "log-loss"), ("rmse", "RMSE"),
                           ("mae", "MAE"), ("macro_f1", "macro-F1")):
            values = [getattr(r.known, key) for r in seed_rows]
            out.write(
                f"  {label:<9} mean {statistics.mean(values):.4f} +- "
                f"{statistics.stdev(values):.4f} (s.d.), range {min(values):.4f}..{max(values):.4f}"
                f"  [{', '.join(f'{v:.4f}' for v in values)}]\n"
            )
        fits = ", ".join(f"{r.fit_seconds:.1f}" for r in seed_rows)
        cpus = ", ".join(f"{r.cpu_seconds:.1f}" for r in seed_rows)
        out.write(f"  fit s     {fits} (cpu s {cpus}); best epochs "
                  f"{[r.notes['best_epoch'] for r in seed_rows]}\n")

    if args.json:
        _write_json(args.json, {
            "data": raw.source,
            "ratings": len(raw),
            "train_ratings": len(split.train_raw),
            "test_ratings": len(split.test_raw),
            "unknown_test_pairs": n_unknown,
            "unknown_rows": unseen_rows,
            "unknown_cols": unseen_cols,
            "machine": _machine(),
            "code": code,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "targets": TARGETS,
            "models": [
                {"model": r.model, "known": _scores_dict(r.known),
                 "all_pairs": _scores_dict(r.all_pairs), "fit_seconds": r.fit_seconds,
                 "cpu_seconds": r.cpu_seconds, "size_bytes": r.size_bytes,
                 "size_kind": r.size_kind, "notes": r.notes}
                for r in rows
            ],
            "seeds": [
                {"seed": s, "known": _scores_dict(r.known), "fit_seconds": r.fit_seconds,
                 "cpu_seconds": r.cpu_seconds, "best_epoch": r.notes.get("best_epoch")}
                for s, r in zip(seeds, seed_rows)
            ],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
