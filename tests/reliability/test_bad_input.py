"""Bad input, everywhere it enters: one table of malformed (and merely unusual) files.

Each file either parses to exactly the ratings (or pairs) the table lists, or stops the command
with exit code 2, one line ``Error: <file>: line N: <problem>`` and nothing written. The same
table runs through mfx-train (torch; skipped without it), mfx-eval and mfx-predict (both on
the committed ``tests/data/tiny_int.onnx``, numpy + onnxruntime only).

The ids are ``tiny_int``'s (rows 10, 20, 35, 36, 50, 71, 1000; columns 3, 17, 42, 99, 1029,
5000, 77777, 1e9, 5e12) and the labels are among its classes 0.5 .. 5.0, so a file that parses
also evaluates and predicts.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from reliability_support import INT_MODEL, STR_MODEL

from mfx.cli.eval import main as eval_main
from mfx.cli.predict import main as predict_main
from mfx.data import Ratings, iter_pairs, read_ratings
from mfx.labels import parse_classes
from mfx.runtime import Predictor


@dataclass(frozen=True)
class Ok:
    """The file parses to these ratings (or, for mfx-predict, to these pairs)."""

    rows: list[Any]
    cols: list[Any]
    labels: list[Any] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    content: str | bytes | Callable[[Path], None]
    ratings: Ok | str  # what mfx-train and mfx-eval read: Ok, or the error after "<file>: "
    pairs: Ok | str | None  # what mfx-predict reads; None: not a pairs file
    train: Ok | str | None = None  # overrides `ratings` for mfx-train only
    eval: Ok | str | None = None  # overrides `ratings` for mfx-eval only
    train_args: tuple[str, ...] = ()
    use_args: tuple[str, ...] = ()  # for mfx-predict and mfx-eval
    model: Path = INT_MODEL


ROWS = [10, 20, 35, 36, 50, 71]
COLS = [3, 17, 42, 99, 1029, 5000]
LABELS = [1, 2, 3, 4, 5, 2]
GOOD = Ok(ROWS, COLS, LABELS)
GOOD_PAIRS = Ok(ROWS, COLS)
LINES = [f"{r},{c},{y}" for r, c, y in zip(ROWS, COLS, LABELS)]
TEXT = "\n".join(LINES) + "\n"
HEADER = "userId,movieId,rating\n"
UNKNOWN_HINT = "pass --unknown prior to answer such pairs with the training prior"


def _sparse_one_line(path: Path) -> None:
    """A 4 GiB file of one line: 1 MiB of digits, then a hole (no disk used)."""
    with open(path, "wb") as fh:
        fh.write(b"7" * (1 << 20))
        fh.truncate(4 << 30)


def _later_long_line(path: Path) -> None:
    path.write_bytes(b"10,3,1\n20,17,2\n" + b"9" * (2 << 20) + b",42,3\n")


CASES = [
    Case("clean.csv", TEXT, GOOD, GOOD_PAIRS),
    Case("no_final_newline.csv", TEXT.rstrip("\n"), GOOD, GOOD_PAIRS),
    Case(
        "truncated_mid_field.csv",
        TEXT + "71,50",
        "line 7: expected at least 3 fields (row, column, label), found 2",
        f"line 7: column id 50 is not part of the training data; {UNKNOWN_HINT}",
    ),
    Case(
        "truncated_label.csv",
        TEXT + "71,5000,",
        "line 7: empty label",
        Ok([*ROWS, 71], [*COLS, 5000]),
    ),
    Case(
        "wrong_delimiter.csv",
        TEXT.replace(",", "|"),
        "line 1: expected at least 3 fields (row, column, label) separated by whitespace, "
        "found 1; pass --format if the separator was misread",
        "line 1: expected at least 2 fields (row, column) separated by whitespace, found 1",
    ),
    Case(
        "mixed_delimiters.csv",
        "\n".join([LINES[0], LINES[1].replace(",", "\t"), *LINES[2:]]) + "\n",
        "line 2: expected at least 3 fields (row, column, label), found 1",
        "line 2: expected at least 2 fields (row, column), found 1",
    ),
    Case(
        "mixed_semicolons.csv",
        "\n".join([*LINES[:3], LINES[3].replace(",", ";"), *LINES[4:]]) + "\n",
        "line 4: expected at least 3 fields (row, column, label), found 1",
        "line 4: expected at least 2 fields (row, column), found 1",
    ),
    Case("bom.csv", "\ufeff" + HEADER + TEXT, GOOD, GOOD_PAIRS),
    Case("bom_no_header.csv", "\ufeff" + TEXT, GOOD, GOOD_PAIRS),
    Case("crlf.csv", (HEADER + TEXT).replace("\n", "\r\n"), GOOD, GOOD_PAIRS),
    Case("cr_only.csv", TEXT.replace("\n", "\r"), GOOD, GOOD_PAIRS),
    Case(
        "bom_crlf_quoted.csv",
        "\ufeff"
        + "".join(
            ",".join(f'"{v}"' for v in line.split(",")) + "\r\n"
            for line in [HEADER.strip(), *LINES]
        ),
        GOOD,
        GOOD_PAIRS,
    ),
    Case("quoted.csv", "".join(f'"{r}","{c}",{y}\n' for r, c, y in zip(ROWS, COLS, LABELS)),
         GOOD, GOOD_PAIRS),
    Case(
        # Quoted text ids holding the separator and quotes; unknown to the int model, so
        # predict and eval answer them with the prior, echoing the ids as read.
        "quoted_separator.csv",
        'user,item,rating\n"smith, anna","film ""one""",1\n"lee, bo",film 2,2\n'
        '"smith, anna",film 2,3\n',
        Ok(["smith, anna", "lee, bo", "smith, anna"], ['film "one"', "film 2", "film 2"],
           [1, 2, 3]),
        Ok(["smith, anna", "lee, bo", "smith, anna"], ['film "one"', "film 2", "film 2"]),
        use_args=("--unknown", "prior"),
    ),
    Case(
        "blank_lines.csv",
        "\n\n" + HEADER + "\n".join(LINES[:3]) + "\n\n   \n\t\n" + "\n".join(LINES[3:]) + "\n\n\n",
        GOOD,
        GOOD_PAIRS,
    ),
    Case("tabs.tsv", TEXT.replace(",", "\t"), GOOD, GOOD_PAIRS),
    Case("ratings.dat", "".join(line.replace(",", "::") + "::978300760\n" for line in LINES),
         GOOD, GOOD_PAIRS),
    Case("spaces.txt", TEXT.replace(",", "   "), GOOD, GOOD_PAIRS),
    Case(
        "header_only.csv",
        HEADER,
        "has a header but no ratings; expected lines of row, column, label",
        "has no pairs; expected lines of row, column",
    ),
    Case(
        "empty.csv",
        "",
        "file is empty; expected lines of row, column, label",
        "file is empty; expected lines of row, column",
    ),
    Case(
        "only_blank_lines.csv",
        "\n \n\t\n\n",
        "file is empty; expected lines of row, column, label",
        "file is empty; expected lines of row, column",
    ),
    Case("nan_label.csv", TEXT.replace("35,42,3", "35,42,NaN"), "line 3: empty label", GOOD_PAIRS),
    Case(
        "inf_label.csv",
        TEXT.replace("35,42,3", "35,42,inf"),
        "line 3: label inf is not finite",
        GOOD_PAIRS,
    ),
    Case(
        "minus_inf_label.csv",
        TEXT.replace("50,1029,5", "50,1029,-inf"),
        "line 5: label -inf is not finite",
        GOOD_PAIRS,
    ),
    Case("empty_label.csv", TEXT.replace("36,99,4", "36,99,"), "line 4: empty label", GOOD_PAIRS),
    Case(
        "text_label.csv",
        TEXT.replace("36,99,4", "36,99,good"),
        "line 4: label 'good' is text, unlike the first label",
        GOOD_PAIRS,
    ),
    Case(
        "text_row_id.csv",
        TEXT.replace("36,99,4", "abc,99,4"),
        "line 4: row id 'abc' is not a number, unlike the first row id '10'; "
        "row ids must be all integers or all text",
        f"line 4: row id 'abc' is not part of the training data; {UNKNOWN_HINT}",
    ),
    Case(
        "text_col_id.csv",
        HEADER + TEXT.replace("50,1029,5", "50,x1029,5"),
        "line 6: column id 'x1029' is not a number, unlike the first column id '3'; "
        "column ids must be all integers or all text",
        f"line 6: column id 'x1029' is not part of the training data; {UNKNOWN_HINT}",
    ),
    Case(
        "fractional_id.csv",
        TEXT.replace("20,17,2", "20.5,17,2"),
        "line 2: row id is 20.5; ids must be integers or text",
        "line 2: row id is 20.5; ids must be integers or text",
    ),
    Case(
        "empty_id.csv",
        TEXT.replace("20,17,2", ",17,2"),
        "line 2: row id is empty; ids must be integers or text",
        "line 2: row id is empty; ids must be integers or text",
    ),
    Case(
        "padded_ids.csv",
        "".join(f" {r} ,  {c} , {y} \n" for r, c, y in zip(ROWS, COLS, LABELS)),
        GOOD,
        GOOD_PAIRS,
    ),
    Case(
        "ids_with_spaces.csv",
        "alice smith,film one,1\nbob jones,film two,2\nalice smith,film two,3\n",
        Ok(["alice smith", "bob jones", "alice smith"], ["film one", "film two", "film two"],
           [1, 2, 3]),
        Ok(["alice smith", "bob jones", "alice smith"], ["film one", "film two", "film two"]),
        use_args=("--unknown", "prior"),
    ),
    Case(
        # pandas would read these as missing; as ids they are text like any other.
        "na_like_ids.csv",
        "NA,null,1\nNone,N/A,2\nNA,N/A,3\n",
        Ok(["NA", "None", "NA"], ["null", "N/A", "N/A"], [1, 2, 3]),
        Ok(["NA", "None", "NA"], ["null", "N/A", "N/A"]),
        use_args=("--unknown", "prior"),
    ),
    Case(
        "id_beyond_int64.csv",
        TEXT + "18446744073709551615,3,1\n",
        "line 7: row id 18446744073709551615 is out of range: integer ids must fit in 64 bits",
        f"line 7: row id '18446744073709551615' is not part of the training data; {UNKNOWN_HINT}",
    ),
    Case(
        "exponent_id.csv",
        TEXT + "1e20,3,1\n",
        "line 7: row id 1e+20 is too large to be read exactly in this form; "
        "write ids as plain integers",
        "line 7: row id 1e+20 is too large to be read exactly in this form; "
        "write ids as plain integers",
    ),
    Case(
        "label_outside_classes.csv",
        TEXT.replace("50,1029,5", "50,1029,9"),
        "line 5: label 9 is not one of the classes [1, 2, 3, 4, 5]",
        GOOD_PAIRS,
        eval="line 5: label 9 is not one of the classes "
        "[0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]",
        train_args=("--classes", "1,2,3,4,5"),
    ),
    Case(
        # A pairs file may carry more fields (a label, a timestamp); mfx-predict ignores them.
        "more_fields.csv",
        TEXT.replace("35,42,3", "35,42,3,978300760,extra"),
        "line 3: expected 3 fields like the first line, found 5; "
        "every line needs the same number of fields",
        GOOD_PAIRS,
    ),
    Case(
        "fewer_fields.csv",
        "".join(line + ",978300760\n" for line in LINES).replace("35,42,3,978300760", "35,42,3"),
        "line 3: expected 4 fields like the first line, found 3",
        GOOD_PAIRS,
    ),
    Case(
        "ragged_matrix.csv",
        "1,2,3,4,5\n1,,3,4,5\n1,2,3,4\n",
        "line 3: matrix row has 4 cells but the first row has 5; rows must be equal",
        None,
    ),
    Case(
        "matrix_text_cell.csv",
        "1,2,3,4,5\n1,,x,4,5\n",
        "line 2: cell 'x' in column 3 is not a number",
        None,
    ),
    Case(
        "binary.csv",
        b"\x00\x01\x02\x03garbage\x00\xff",
        "looks like a binary file, not a text ratings file",
        "looks like a binary file, not a text ratings file",
    ),
    Case(
        "binary_after_text.csv",
        (TEXT * 2000).encode() + bytes(range(128, 256)) * 4,
        "line 12001: not UTF-8 text (binary, or another encoding: save the file as UTF-8)",
        "line 12001: not UTF-8 text (binary, or another encoding: save the file as UTF-8)",
    ),
    Case(
        "latin1.csv",
        "10,3,1\n20,17,2\ncaf\xe9,42,3\n".encode("latin-1"),
        "line 3: not UTF-8 text (binary, or another encoding: save the file as UTF-8)",
        "line 3: not UTF-8 text (binary, or another encoding: save the file as UTF-8)",
    ),
    Case(
        "huge_first_line.csv",
        _sparse_one_line,
        "line 1: first line is longer than 64 KiB; this is not a ratings file",
        "line 1: first line is longer than 64 KiB; this is not a ratings file",
    ),
    Case(
        "huge_later_line.csv",
        _later_long_line,
        "line 3: line is longer than 1 MiB; this is not a ratings file",
        "line 3: line is longer than 1 MiB; this is not a ratings file",
    ),
    Case(
        "id_too_long.csv",
        "alice,film,1\n" + "b" * 2000 + ",film,2\n",
        "line 2: row id is 2,000 characters long; at most 1,024 are allowed",
        "line 2: row id is 2,000 characters long; at most 1,024 are allowed",
        model=STR_MODEL,
    ),
]
IDS = [case.name for case in CASES]


def _write(case: Case, folder: Path) -> Path:
    path = folder / case.name
    if callable(case.content):
        case.content(path)
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_bytes(case.content.encode("utf-8"))
    return path


def _only_input_left(folder: Path, path: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [path.name], "something was written"


def _check_error(result, path: Path, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: {path}: {message}\n"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_readers_follow_the_table(case, tmp_path):
    """The library readers: the parse is exactly the table's, or the same one-line error."""
    path = _write(case, tmp_path)
    args = case.train_args
    classes = parse_classes(args[args.index("--classes") + 1]) if "--classes" in args else None
    for expected, read in ((case.ratings, _read_ratings), (case.pairs, _read_pairs)):
        if expected is None:
            continue
        if isinstance(expected, str) and "not part of the training data" in expected:
            continue  # an unknown id: the model decides, see the mfx-predict test
        try:
            got = read(path, classes)
        except ValueError as exc:
            assert not isinstance(expected, Ok), f"{read.__name__}: {exc}"
            assert str(exc) == f"{path}: {expected}"
            continue
        assert isinstance(expected, Ok), f"{read.__name__} read {got}, expected {expected}"
        assert got == expected


def _read_ratings(path: Path, classes: list[Any] | None) -> Ok:
    raw = read_ratings(path)
    if classes is not None:
        Ratings.from_raw(raw, classes)  # --classes: every label must be one of them
    return Ok(raw.rows.tolist(), raw.cols.tolist(), raw.labels.tolist())


def _read_pairs(path: Path, classes: list[Any] | None = None) -> Ok:
    rows, cols = [], []
    for r, c in iter_pairs(path, chunksize=4):
        rows += r.tolist()
        cols += c.tolist()
    return Ok(rows, cols)


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mfx_train(case, tmp_path):
    pytest.importorskip("torch")
    from mfx.cli.train import main
    from mfx.train import load_checkpoint

    expected = case.train if case.train is not None else case.ratings
    path = _write(case, tmp_path)
    out = tmp_path / "model.pt"
    args = ["--data", str(path), "-o", str(out), "--epochs", "1", "-q", *case.train_args]
    result = CliRunner().invoke(main, args)
    if isinstance(expected, str):
        _check_error(result, path, expected)
        _only_input_left(tmp_path, path)
        return
    assert result.exit_code == 0, result.output
    assert result.output == ""
    checkpoint = load_checkpoint(out)
    assert checkpoint.rows == sorted(set(expected.rows))
    assert checkpoint.cols == sorted(set(expected.cols))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, out.name])


@pytest.mark.parametrize("case", [c for c in CASES if c.pairs is not None],
                         ids=[c.name for c in CASES if c.pairs is not None])
def test_mfx_predict(case, tmp_path):
    path = _write(case, tmp_path)
    out = tmp_path / "preds.csv"
    args = [str(case.model), "--input", str(path), "--output", str(out), "-q", *case.use_args]
    result = CliRunner().invoke(predict_main, args)
    if isinstance(case.pairs, str):
        _check_error(result, path, case.pairs)
        _only_input_left(tmp_path, path)
        return
    assert result.exit_code == 0, result.output
    got = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["row"] for r in got] == [str(v) for v in case.pairs.rows]
    assert [r["col"] for r in got] == [str(v) for v in case.pairs.cols]
    unknown = "prior" if "prior" in case.use_args else "error"
    predictor = Predictor(case.model, providers="cpu", unknown=unknown)
    want = predictor.predict(np.asarray(case.pairs.rows), np.asarray(case.pairs.cols))
    assert [r["label"] for r in got] == [_label_text(v) for v in want.tolist()]


def _label_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mfx_eval(case, tmp_path):
    expected = case.eval if case.eval is not None else case.ratings
    path = _write(case, tmp_path)
    out = tmp_path / "eval.json"
    args = [str(case.model), "--data", str(path), "--json", str(out), *case.use_args]
    result = CliRunner().invoke(eval_main, args)
    if isinstance(expected, str):
        _check_error(result, path, expected)
        _only_input_left(tmp_path, path)
        return
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["n_pairs"] == len(expected.rows)
    predictor = Predictor(case.model, providers="cpu", unknown="prior")
    predicted = predictor.predict(np.asarray(expected.rows), np.asarray(expected.cols))
    accuracy = float(np.mean(predicted == np.asarray(expected.labels, dtype=np.float64)))
    assert doc["accuracy"] == pytest.approx(accuracy)


def test_a_4_gib_line_is_refused_at_once(tmp_path):
    """The reader looks at the first 64 KiB only, so the size of the file does not matter."""
    path = tmp_path / "one_line.csv"
    _sparse_one_line(path)
    assert path.stat().st_size == 4 << 30
    runner = CliRunner()
    for main, args in (
        (predict_main, [str(INT_MODEL), "--input", str(path), "-o", str(tmp_path / "p.csv")]),
        (eval_main, [str(INT_MODEL), "--data", str(path)]),
    ):
        started = time.perf_counter()
        result = runner.invoke(main, args)
        elapsed = time.perf_counter() - started
        assert result.exit_code == 2
        assert "first line is longer than 64 KiB" in result.output
        assert elapsed < 2.0, f"took {elapsed:.2f}s"


def test_a_text_id_deep_in_a_big_file_is_one_line_no_warning(tmp_path):
    """pandas parses big files in pieces and warns about a column of numbers and text; the
    user gets the one error line, not the warning besides."""
    path = tmp_path / "big.csv"
    path.write_text("10,3,1\n20,17,2\n" * 250_000 + "abc,3,1\n")
    result = CliRunner().invoke(eval_main, [str(INT_MODEL), "--data", str(path)])
    _check_error(
        result,
        path,
        "line 500001: row id 'abc' is not a number, unlike the first row id '10'; "
        "row ids must be all integers or all text",
    )
