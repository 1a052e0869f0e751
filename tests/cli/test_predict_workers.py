"""``mfx-predict --workers N``: the same bytes as one process, the same errors, nothing partial.

Uses the committed tiny fixtures (no torch). Each ``--workers 2`` run starts a small pool.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mfx.cli.predict import main
from mfx.runtime import Predictor, parallel

DATA = Path(__file__).resolve().parent.parent / "data"
INT_MODEL = str(DATA / "tiny_int.onnx")
STR_MODEL = str(DATA / "tiny_str.onnx")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _pairs_file(path: Path, model: str, n: int, header: str = "", seed: int = 0) -> Path:
    predictor = Predictor(model)
    rng = np.random.default_rng(seed)
    rows = rng.choice(predictor.row_ids.ids, n).tolist()
    cols = rng.choice(predictor.col_ids.ids, n).tolist()
    path.write_text(header + "".join(f"{r},{c}\n" for r, c in zip(rows, cols)))
    return path


def _run_both(tmp_path: Path, name: str, *args: str) -> tuple[bytes, str]:
    """Output and stderr of --workers 1 and --workers 2; asserts both succeed and agree."""
    found = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}-{name}"
        result = invoke(*args, "-o", str(out), "--workers", workers)
        assert result.exit_code == 0, result.output
        found.append((out.read_bytes(), result.stderr.replace(str(out), "OUT")))
    (one, one_err), (two, two_err) = found
    assert two == one
    assert two_err == one_err  # the same summary line
    return one, one_err


@pytest.mark.parametrize(
    ("model", "name", "options"),
    [
        (INT_MODEL, "preds.csv", ("--proba",)),
        (STR_MODEL, "preds.jsonl", ("--proba",)),
        (INT_MODEL, "labels.jsonl", ("--unknown", "prior")),
    ],
    ids=["csv-proba", "jsonl-proba-text-ids", "jsonl-unknown-prior"],
)
def test_two_workers_write_the_same_bytes_as_one(tmp_path, model, name, options):
    pairs = _pairs_file(tmp_path / "pairs.csv", model, 3_000, header="user,item\n")
    if "--unknown" in options:
        with pairs.open("a") as fh:
            fh.write("11,3\n10,8\n")  # unknown row, unknown column
    text, summary = _run_both(
        tmp_path, name, model, "-i", str(pairs), "--chunk-size", "256", *options
    )
    lines = text.decode().splitlines()
    n = 3_002 if "--unknown" in options else 3_000
    assert len(lines) == n + (0 if name.endswith(".jsonl") else 1)
    assert f"{n} predictions" in summary
    if "--unknown" in options:
        assert "(2 with unknown ids, answered with the prior)" in summary


def test_two_workers_on_stdout(tmp_path):
    pairs = _pairs_file(tmp_path / "pairs.tsv", INT_MODEL, 1_000)
    base = (INT_MODEL, "-i", str(pairs), "--chunk-size", "128")
    one = invoke(*base)
    two = invoke(*base, "--workers", "2")
    assert two.exit_code == 0 and one.exit_code == 0
    assert two.stdout == one.stdout and len(two.stdout.splitlines()) == 1_001


def test_unknown_id_in_a_later_chunk_is_the_same_error(tmp_path):
    pairs = _pairs_file(tmp_path / "pairs.csv", INT_MODEL, 2_000, header="row,col\n")
    lines = pairs.read_text().splitlines(keepends=True)
    lines[1_500] = "10,8\n"  # file line 1501
    pairs.write_text("".join(lines))
    out = tmp_path / "preds.csv"
    out.write_text("old content\n")
    errors = []
    for workers in ("1", "2"):
        result = invoke(
            INT_MODEL,
            "-i",
            str(pairs),
            "-o",
            str(out),
            "--chunk-size",
            "200",
            "--workers",
            workers,
        )
        assert result.exit_code == 2
        errors.append(result.stderr)
    assert errors[1] == errors[0]
    assert errors[0] == (
        f"Error: {pairs}: line 1501: column id 8 is not part of the training data; "
        "pass --unknown prior to answer such pairs with the training prior\n"
    )
    assert out.read_text() == "old content\n"  # atomic: the old file survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv", "preds.csv"]


class _DieAt:
    """Wraps mfx-predict's formatter; the worker that gets the chunk at ``start`` kills itself."""

    def __init__(self, inner, start: int) -> None:
        self.inner = inner
        self.start = start

    def __call__(self, predictor, rows, cols, prediction):
        if prediction.start == self.start:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(predictor, rows, cols, prediction)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_worker_is_an_error_and_nothing_is_written(tmp_path, monkeypatch):
    real = parallel.stream_parallel

    def dying(model, chunks, *, transform, **options):
        return real(model, chunks, transform=_DieAt(transform, 1_000), **options)

    monkeypatch.setattr(parallel, "stream_parallel", dying)
    pairs = _pairs_file(tmp_path / "pairs.csv", INT_MODEL, 2_000)
    out = tmp_path / "preds.csv"
    result = invoke(
        INT_MODEL, "-i", str(pairs), "-o", str(out), "--chunk-size", "250", "--workers", "2"
    )
    assert result.exit_code == 1
    error = result.stderr.strip()
    assert error.startswith("Error: a worker process stopped unexpectedly") and "\n" not in error
    assert "are missing, so the run was stopped" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]  # no output, no temp


def test_workers_need_an_input_file():
    result = invoke(INT_MODEL, "10:3", "--workers", "2")
    assert result.exit_code == 2
    assert "--workers goes with --input FILE" in result.stderr
    assert invoke(INT_MODEL, "10:3", "--workers", "0").exit_code == 2
