"""``mfx-predict`` through click's CliRunner: files in, CSV/JSON lines out, errors as one line."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mfx.cli.predict import main

DATA = Path(__file__).resolve().parent.parent / "data"
INT_MODEL = str(DATA / "tiny_int.onnx")
STR_MODEL = str(DATA / "tiny_str.onnx")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture()
def pairs_file(tmp_path) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text("user,item\n10,3\n20,1029\n\n1000,5000000000000\n")
    return path


def test_file_in_csv_out(pairs_file, tmp_path, int_model):
    out = tmp_path / "preds.csv"
    result = invoke(INT_MODEL, "--input", str(pairs_file), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "3 predictions" in result.stderr
    got = rows_of(out.read_text())
    assert [r["row"] for r in got] == ["10", "20", "1000"]
    assert [r["col"] for r in got] == ["3", "1029", "5000000000000"]
    want = int_model.predict([10, 20, 1000], [3, 1029, 5 * 10**12])
    assert [float(r["label"]) for r in got] == want.tolist()
    assert list(got[0]) == ["row", "col", "label"]


def test_proba_columns(pairs_file, tmp_path, int_model):
    out = tmp_path / "preds.csv"
    assert invoke(INT_MODEL, "-i", str(pairs_file), "-o", str(out), "--proba").exit_code == 0
    got = rows_of(out.read_text())
    names = [f"p_{v}" for v in int_model.classes.values]
    assert list(got[0]) == ["row", "col", "label", *names]
    assert names[:3] == ["p_0.5", "p_1", "p_1.5"]
    proba = np.array([[float(r[n]) for n in names] for r in got])
    want = int_model.predict_proba([10, 20, 1000], [3, 1029, 5 * 10**12])
    np.testing.assert_allclose(proba, want, rtol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)


def test_jsonl_output(tmp_path, str_model):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("bob\tfilm:2\ncarol\tshow:1\n")
    out = tmp_path / "preds.jsonl"
    result = invoke(STR_MODEL, "-i", str(pairs), "-o", str(out), "--proba")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["row"], x["col"]) for x in lines] == [("bob", "film:2"), ("carol", "show:1")]
    assert [x["label"] for x in lines] == str_model.predict(
        ["bob", "carol"], ["film:2", "show:1"]
    ).tolist()
    assert set(lines[0]) == {"row", "col", "label", "p_dislike", "p_like", "p_meh"}


def test_jsonl_keeps_numbers_numeric(tmp_path):
    out = tmp_path / "preds.jsonl"
    assert invoke(INT_MODEL, "10:3", "20:1029", "-o", str(out)).exit_code == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert isinstance(first["row"], int) and isinstance(first["label"], (int, float))


def test_inline_pairs_to_stdout(int_model):
    result = invoke(INT_MODEL, "10:3", "1000:5000000000000")
    assert result.exit_code == 0, result.output
    got = rows_of(result.stdout)
    assert [(r["row"], r["col"]) for r in got] == [("10", "3"), ("1000", "5000000000000")]
    assert float(got[0]["label"]) == int_model.predict(10, 3)


def test_inline_string_ids_may_hold_colons(str_model):
    # Split at the last ':' that gives a known row and column.
    result = invoke(STR_MODEL, "bob:film:2", "erin:show:3")
    assert result.exit_code == 0, result.output
    got = rows_of(result.stdout)
    assert [(r["row"], r["col"]) for r in got] == [("bob", "film:2"), ("erin", "show:3")]
    assert got[1]["label"] == str_model.predict("erin", "show:3")


def test_inline_pair_unknown_after_every_split():
    result = invoke(STR_MODEL, "bob:film:9")
    assert result.exit_code == 2
    assert "Error: pair 1 'bob:film:9': row id 'bob:film' is not part of the training" in (
        result.stderr
    )


def test_inline_pair_without_colon():
    result = invoke(INT_MODEL, "10-3")
    assert result.exit_code == 2
    assert "Error: pair 1 '10-3': write pairs as ROW:COL" in result.stderr


def test_top_k(int_model):
    result = invoke(INT_MODEL, "--top-k", "3", "--row", "20")
    assert result.exit_code == 0, result.output
    got = rows_of(result.stdout)
    want = int_model.recommend(20, k=3)
    assert [r["rank"] for r in got] == ["1", "2", "3"]
    assert [int(r["col"]) for r in got] == want.cols.tolist()
    np.testing.assert_allclose([float(r["score"]) for r in got], want.scores, rtol=1e-5)


def test_top_k_by_label_and_exclude(str_model):
    result = invoke(
        STR_MODEL, "--row", "carol", "--top-k", "2", "--by", "like", "--exclude", "film:1,film:2"
    )
    assert result.exit_code == 0, result.output
    want = str_model.recommend("carol", k=2, by="like", exclude=["film:1", "film:2"])
    assert [r["col"] for r in rows_of(result.stdout)] == want.cols.tolist()


def test_top_k_errors():
    result = invoke(STR_MODEL, "--row", "carol")
    assert result.exit_code == 2
    assert "Error: by='expected' ranks by the expected label" in result.stderr
    result = invoke(INT_MODEL, "--row", "11", "--top-k", "2")
    assert result.exit_code == 2
    assert "Error: --row '11' is not part of the training data; pass --unknown prior" in (
        result.stderr
    )
    assert invoke(INT_MODEL, "--top-k", "3").exit_code == 2  # usage: needs --row


def test_bad_line_exits_2_with_line_number_and_no_output(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("10,3\n20,1029\n35,\n36,99\n")
    out = tmp_path / "preds.csv"
    result = invoke(INT_MODEL, "-i", str(pairs), "-o", str(out))
    assert result.exit_code == 2
    error = result.stderr.strip()
    assert error.startswith("Error: ") and "line 3" in error and "\n" not in error
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [pairs]  # no temporary file left behind either


def test_unknown_id_names_the_line(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("row,col\n10,3\n\n20,8\n")
    out = tmp_path / "preds.csv"
    result = invoke(INT_MODEL, "-i", str(pairs), "-o", str(out))
    assert result.exit_code == 2
    assert (
        f"Error: {pairs}: line 4: column id 8 is not part of the training data; "
        "pass --unknown prior" in result.stderr
    )
    assert not out.exists()
    result = invoke(INT_MODEL, "-i", str(pairs), "-o", str(out), "--unknown", "prior")
    assert result.exit_code == 0
    assert "1 with unknown ids" in result.stderr
    assert len(rows_of(out.read_text())) == 2


def test_error_in_a_later_chunk_leaves_previous_output_untouched(tmp_path):
    pairs = tmp_path / "pairs.csv"
    lines = ["10,3"] * 25 + ["10,x"]
    pairs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "preds.csv"
    out.write_text("old content\n")
    result = invoke(INT_MODEL, "-i", str(pairs), "-o", str(out), "--chunk-size", "4")
    assert result.exit_code == 2
    assert "line 26" in result.stderr
    assert out.read_text() == "old content\n"  # atomic: the old file survives a failed run
    # On stdout, too, nothing is printed when a later chunk fails.
    result = invoke(INT_MODEL, "-i", str(pairs), "--chunk-size", "4")
    assert result.exit_code == 2 and result.stdout == ""


def test_chunked_file_equals_one_chunk(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.choice([10, 20, 35, 36, 50, 71, 1000], size=103)
    cols = rng.choice([3, 17, 42, 99, 1029], size=103)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("".join(f"{r},{c}\n" for r, c in zip(rows, cols)))
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    assert (
        invoke(
            INT_MODEL, "-i", str(pairs), "-o", str(small), "--chunk-size", "10", "--proba"
        ).exit_code
        == 0
    )
    assert invoke(INT_MODEL, "-i", str(pairs), "-o", str(big), "--proba").exit_code == 0
    assert small.read_text() == big.read_text()
    assert len(rows_of(small.read_text())) == 103


def test_model_errors_are_one_line(tmp_path, pairs_file):
    result = invoke(str(tmp_path / "missing.onnx"), "10:3")
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == f"Error: {tmp_path / 'missing.onnx'}: model file not found; "
        "check the path"
    )
    result = invoke(str(DATA / "not_mfx.onnx"), "10:3")
    assert result.exit_code == 2 and "not an mfx model" in result.stderr


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
    reason="this onnxruntime build has CUDA",
)
def test_cuda_request_without_cuda():
    result = invoke(INT_MODEL, "10:3", "--provider", "cuda")
    assert result.exit_code == 2
    assert "Error: execution provider CUDAExecutionProvider is not available" in result.stderr


def test_usage_errors(pairs_file):
    assert invoke(INT_MODEL).exit_code == 2
    assert "no pairs" in invoke(INT_MODEL).stderr
    assert invoke(INT_MODEL, "10:3", "-i", str(pairs_file)).exit_code == 2
    assert invoke(INT_MODEL, "10:3", "--exclude", "3").exit_code == 2


def test_missing_input_file(tmp_path):
    result = invoke(INT_MODEL, "-i", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "nope.csv: file not found" in result.stderr


def test_output_file_gets_the_usual_permissions(tmp_path):
    out = tmp_path / "preds.csv"
    assert invoke(INT_MODEL, "10:3", "-o", str(out)).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
