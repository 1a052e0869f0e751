"""``mfx-predict``: labels (and probabilities) for (row, column) pairs from an mfx ONNX model."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click
import numpy as np

from mfx._files import atomic_path
from mfx.cli._common import EXIT_BAD_INPUT, CommandError, boundary, setup_logging
from mfx.errors import UnknownIdError
from mfx.runtime import DEFAULT_CHUNK_SIZE, Prediction, Predictor

#: ``--format`` choices for pairs files (mfx.data.FORMATS without the matrix layouts).
PAIR_FORMATS = ("auto", "csv", "tsv", "dat", "udata", "whitespace")
#: Output kept in memory before it spills to a temporary file when writing to stdout.
_SPOOL_BYTES = 32 << 20
_UNKNOWN_HINT = "pass --unknown prior to answer such pairs with the training prior"


def _number(value: float) -> str:
    return f"{value:.6g}"


class _Output:
    """Rows of results as CSV or JSON lines, with a header/keys given once."""

    def __init__(self, columns: list[str], jsonl: bool) -> None:
        self.columns = columns
        self.jsonl = jsonl
        self.keys = [json.dumps(name) + ": " for name in columns]

    def header(self) -> str:
        """The CSV header line; nothing for JSON lines."""
        return "" if self.jsonl else ",".join(_csv_field(name) for name in self.columns) + "\n"

    def lines(self, fields: list[list[str]]) -> Iterator[str]:
        """Output lines of rows given as one list of already formatted values per column."""
        if self.jsonl:
            keys = self.keys
            return (
                "{" + ", ".join(k + v for k, v in zip(keys, values)) + "}\n"
                for values in zip(*fields)
            )
        return (",".join(values) + "\n" for values in zip(*fields))


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _formatter(jsonl: bool) -> Callable[[np.ndarray], list[str]]:
    """Raw ids (int64 or str) as CSV fields or JSON values."""

    def fmt(values: np.ndarray) -> list[str]:
        if values.dtype.kind in "iu":
            return [str(v) for v in values.tolist()]
        text = values.astype(str).tolist()
        return [json.dumps(v) for v in text] if jsonl else [_csv_field(v) for v in text]

    return fmt


def _label_texts(predictor: Predictor, jsonl: bool) -> np.ndarray:
    """Each class' label as an output field, indexed by class index."""
    values = predictor.classes.values
    if jsonl:
        return np.asarray([json.dumps(v) for v in values], dtype=object)
    return np.asarray([_csv_field(str(v)) for v in values], dtype=object)


def _data_line(path: str, record: int, header: bool) -> int:
    """1-based file line of data record ``record`` (blank lines and header skipped)."""
    seen = -1 if header else 0
    number = 0
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if seen == record:
                return number
            seen += 1
    return number


def _parse_inline(predictor: Predictor, pairs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Split each ROW:COL at the last ':' that gives a known row and column (string ids may
    hold ':'), or at the last ':' when none does (the id is then reported unknown)."""
    rows, cols = [], []
    for i, text in enumerate(pairs, start=1):
        if ":" not in text:
            raise CommandError(
                f"pair {i} {text!r}: write pairs as ROW:COL, e.g. 1:31 (split at the last ':')",
                EXIT_BAD_INPUT,
            )
        splits = [(text[:k].strip(), text[k + 1 :].strip()) for k in _colons(text)]
        splits = [(row, col) for row, col in splits if row and col]
        if not splits:
            raise CommandError(f"pair {i} {text!r}: empty row or column id", EXIT_BAD_INPUT)
        chosen = splits[0]
        if len(splits) > 1:
            r, c = predictor.lookup([s[0] for s in splits], [s[1] for s in splits])
            known = np.flatnonzero((r >= 0) & (c >= 0))
            if known.size:
                chosen = splits[int(known[0])]
        rows.append(chosen[0])
        cols.append(chosen[1])
    return _ids_like(rows), _ids_like(cols)


def _colons(text: str) -> list[int]:
    """Positions of ':' in ``text``, last first."""
    return [k for k in range(len(text) - 1, -1, -1) if text[k] == ":"]


def _ids_like(texts: list[str]) -> np.ndarray:
    """Integers when every text is one (so JSON output keeps numbers), else the texts."""
    try:
        return np.asarray([int(t) for t in texts], dtype=np.int64)
    except (ValueError, OverflowError):
        return np.asarray(texts, dtype=str)


class _PredictionText:
    """Output lines ``row,col,label[,p_...]`` of predictions (CSV or JSON lines).

    Picklable, so that ``--workers`` processes format their own chunks; both paths format
    through :meth:`lines`, so their output is the same to the byte.
    """

    def __init__(self, proba: bool, jsonl: bool) -> None:
        self.proba = proba
        self.jsonl = jsonl
        self._made: tuple[_Output, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"proba": self.proba, "jsonl": self.jsonl, "_made": None}

    def _parts(self, predictor: Predictor) -> tuple[_Output, np.ndarray]:
        if self._made is None:
            columns = ["row", "col", "label"]
            if self.proba:
                columns += [f"p_{v}" for v in predictor.classes.values]
            self._made = (_Output(columns, self.jsonl), _label_texts(predictor, self.jsonl))
        return self._made

    def header(self, predictor: Predictor) -> str:
        return self._parts(predictor)[0].header()

    def lines(
        self, predictor: Predictor, rows: np.ndarray, cols: np.ndarray, result: Prediction
    ) -> Iterator[str]:
        """Lines for ``result``, the predictions of the pairs ``rows``, ``cols``."""
        output, labels = self._parts(predictor)
        fmt = _formatter(self.jsonl)
        fields = [fmt(rows), fmt(cols), labels[result.class_index].tolist()]
        if result.probabilities is not None:
            fields += [[_number(p) for p in c.tolist()] for c in result.probabilities.T]
        return output.lines(fields)

    def __call__(
        self, predictor: Predictor, rows: np.ndarray, cols: np.ndarray, result: Prediction
    ) -> tuple[str, int, int]:
        """A whole chunk's text, pairs and unknown pairs (what a worker sends back)."""
        text = "".join(self.lines(predictor, rows, cols, result))
        return text, len(result), int(result.unknown.sum())


def _write_predictions(
    out: IO[str],
    predictor: Predictor,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    proba: bool,
    jsonl: bool,
    on_unknown: Callable[[UnknownIdError, int], CommandError],
    parallel: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Predict chunk by chunk and write ``row,col,label[,p_...]``; returns (pairs, unknown).

    With ``parallel`` (:func:`mfx.runtime.parallel.stream_parallel`'s options), worker
    processes predict and format the chunks and this process writes their text in order.
    """
    text = _PredictionText(proba, jsonl)
    out.write(text.header(predictor))
    count = unknown = 0
    if parallel is not None:
        from mfx.runtime import parallel as pool  # multiprocessing only when asked for

        results = pool.stream_parallel(
            predictor.path, chunks, proba=proba, transform=text, **parallel
        )
        try:
            for chunk_text, n, n_unknown in results:
                out.write(chunk_text)
                count += n
                unknown += n_unknown
        except UnknownIdError as exc:  # positions count from the start of the input
            raise on_unknown(exc, int(getattr(exc, "position", 0))) from None
        finally:
            results.close()
        return count, unknown
    offset = 0  # position of this chunk's first pair in the whole input
    for rows, cols in chunks:
        try:
            for result in predictor.iter_predict(rows, cols, proba=proba):
                part = slice(result.start, result.stop)
                out.writelines(text.lines(predictor, rows[part], cols[part], result))
                count += len(result)
                unknown += int(result.unknown.sum())
        except UnknownIdError as exc:
            raise on_unknown(exc, offset + int(getattr(exc, "position", 0))) from None
        offset += len(rows)
    return count, unknown


def _emit(output: str | None, write: Callable[[IO[str]], Any]) -> Any:
    """Run ``write`` on the output file (atomically) or on stdout, all or nothing."""
    if output is not None:
        with atomic_path(output) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                result = write(fh)
            return result
    with tempfile.SpooledTemporaryFile(
        max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8", newline=""
    ) as spool:
        result = write(spool)
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout)
        sys.stdout.flush()
        return result


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Examples:\n\n"
        "  mfx-predict model.onnx 1:31 1:1029       # CSV on stdout\n\n"
        "  mfx-predict model.onnx -i pairs.csv -o preds.csv --proba\n\n"
        "  mfx-predict model.onnx -i pairs.tsv -o preds.jsonl --unknown prior\n\n"
        "  mfx-predict model.onnx -i big.csv -o preds.csv --workers 4\n\n"
        "  mfx-predict model.onnx --row 1 --top-k 10\n\n"
        "Inline pairs split at the last ':' that gives a known row and column, so string ids "
        "may contain ':' (alice:film:2 is row 'alice', column 'film:2' when that column "
        "exists); when no split does, at the last ':'."
    ),
)
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("pairs", nargs=-1, metavar="[ROW:COL]...")
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(dir_okay=False),
    help="File of row,col raw-id pairs (CSV/TSV, header optional; more fields ignored).",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(PAIR_FORMATS),
    default="auto",
    show_default=True,
    help="Layout of --input; auto detects separator and header.",
)
@click.option(
    "--header/--no-header", default=None, help="Force or deny a header line (default: detect)."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write here (CSV, or JSON lines if it ends in .jsonl); default stdout.",
)
@click.option("--proba", is_flag=True, help="Add one probability column per class, p_<label>.")
@click.option(
    "--provider",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Execution provider; cuda fails if the GPU build is missing.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="onnxruntime threads (per worker with --workers)  [default: one per core; 1 per "
    "worker with --workers N > 1]",
)
@click.option(
    "--unknown",
    type=click.Choice(["error", "prior"]),
    default="error",
    show_default=True,
    help="Unknown row/column ids: fail naming them, or answer with the training prior.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Pairs read and predicted at a time (bounds memory).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Score --input in N worker processes, each with its own model; the output is the "
    "same, in the same order. 1: in this process.",
)
@click.option(
    "--row", "row_id", type=str, default=None, help="Recommend columns for this raw row id."
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help="How many columns to recommend for --row  [default: 10]",
)
@click.option(
    "--by",
    default="expected",
    show_default=True,
    help="Rank recommendations by the expected label, or by a class: P(label >= it), "
    "or P(label = it) for text classes.",
)
@click.option("--exclude", default=None, help="Comma-separated column ids never to recommend.")
@click.option("-q", "--quiet", is_flag=True, help="No summary, only errors.")
@boundary("mfx-predict")
def main(
    model,
    pairs,
    input_path,
    format_,
    header,
    output,
    proba,
    provider,
    threads,
    unknown,
    chunk_size,
    workers,
    row_id,
    top_k,
    by,
    exclude,
    quiet,
):
    """Predict labels for (row, column) pairs with an mfx ONNX model (numpy + onnxruntime).

    Pairs come from --input (a CSV/TSV file of raw ids, streamed in chunks) or inline as
    ROW:COL arguments. Output is CSV with columns row,col,label (plus p_<label> per class with
    --proba), or JSON lines when --output ends in .jsonl. The output file is written
    atomically: on any error (reported with its file line) nothing is written.

    With --workers N the chunks of --input are scored and formatted in N processes, each with
    its own copy of the model, and written here in input order: the same bytes as one process.

    With --row (and --top-k) it prints the best columns for that row instead: rank,col,score.
    """
    setup_logging(quiet)
    jsonl = output is not None and output.lower().endswith(".jsonl")
    recommending = row_id is not None or top_k is not None
    if recommending:
        if row_id is None:
            raise click.UsageError("--top-k needs --row ID")
        if pairs or input_path:
            raise click.UsageError("--row/--top-k recommend; leave out pairs and --input")
    elif pairs and input_path:
        raise click.UsageError("give pairs inline or with --input, not both")
    elif not pairs and not input_path:
        raise click.UsageError("no pairs: give ROW:COL arguments or --input FILE")
    elif exclude is not None:
        raise click.UsageError("--exclude goes with --row/--top-k")
    if workers > 1 and not input_path:
        raise click.UsageError("--workers goes with --input FILE")

    if output is not None and not Path(output).parent.is_dir():
        raise CommandError(
            f"{output}: the folder {Path(output).parent} does not exist", EXIT_BAD_INPUT
        )
    parallel = None
    if workers > 1:
        parallel = {
            "workers": workers,
            "providers": provider,
            "threads": threads,
            "unknown": unknown,
            "chunk_size": chunk_size,
        }
    # With --workers this copy only checks the model and names the output's columns.
    predictor = Predictor(
        model,
        providers=provider,
        threads=1 if parallel else threads,
        unknown=unknown,
        chunk_size=chunk_size,
    )
    try:
        if recommending:
            _recommend(predictor, row_id, top_k or 10, by, exclude, output, jsonl)
            return
        if input_path:
            count, n_unknown = _predict_file(
                predictor, input_path, format_, header, chunk_size, output, proba, jsonl, parallel
            )
        else:
            count, n_unknown = _predict_inline(predictor, pairs, output, proba, jsonl)
    except ValueError as exc:  # bad arguments reaching the library (e.g. --by)
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    if output is not None and not quiet:
        extra = f" ({n_unknown} with unknown ids, answered with the prior)" if n_unknown else ""
        click.echo(f"wrote {output}: {count} predictions{extra}", err=True)


def _predict_file(
    predictor: Predictor,
    path: str,
    format_: str,
    header: bool | None,
    chunk_size: int,
    output: str | None,
    proba: bool,
    jsonl: bool,
    parallel: dict[str, Any] | None = None,
) -> tuple[int, int]:
    from mfx.data import iter_pairs, sniff_pairs  # pandas only for commands that read files

    layout = sniff_pairs(path, format_, header)

    def on_unknown(exc: UnknownIdError, position: int) -> CommandError:
        line = _data_line(path, position, layout.header)
        return CommandError(
            f"{path}: line {line}: {getattr(exc, 'axis', 'row')} id "
            f"{getattr(exc, 'value', '?')!r} is not part of the training data; {_UNKNOWN_HINT}",
            EXIT_BAD_INPUT,
        )

    chunks = iter_pairs(path, format_, layout.header, chunksize=chunk_size)
    return _emit(
        output,
        lambda fh: _write_predictions(fh, predictor, chunks, proba, jsonl, on_unknown, parallel),
    )


def _predict_inline(
    predictor: Predictor, pairs: tuple[str, ...], output: str | None, proba: bool, jsonl: bool
) -> tuple[int, int]:
    rows, cols = _parse_inline(predictor, pairs)

    def on_unknown(exc: UnknownIdError, position: int) -> CommandError:
        return CommandError(
            f"pair {position + 1} {pairs[position]!r}: {getattr(exc, 'axis', 'row')} id "
            f"{getattr(exc, 'value', '?')!r} is not part of the training data; {_UNKNOWN_HINT}",
            EXIT_BAD_INPUT,
        )

    return _emit(
        output,
        lambda fh: _write_predictions(fh, predictor, [(rows, cols)], proba, jsonl, on_unknown),
    )


def _recommend(
    predictor: Predictor,
    row_id: str,
    k: int,
    by: str,
    exclude: str | None,
    output: str | None,
    jsonl: bool,
) -> None:
    row = _ids_like([row_id])
    excluded = _ids_like([t.strip() for t in exclude.split(",") if t.strip()]) if exclude else ()
    try:
        found = predictor.recommend(row[0].item(), k, exclude=excluded, by=by)
    except UnknownIdError:
        raise CommandError(
            f"--row {row_id!r} is not part of the training data; {_UNKNOWN_HINT}", EXIT_BAD_INPUT
        ) from None
    fmt = _formatter(jsonl)

    def write(fh: IO[str]) -> None:
        output = _Output(["rank", "col", "score"], jsonl)
        ranks = [str(i) for i in range(1, len(found.cols) + 1)]
        fh.write(output.header())
        fh.writelines(
            output.lines([ranks, fmt(found.cols), [_number(s) for s in found.scores.tolist()]])
        )

    _emit(output, write)


if __name__ == "__main__":  # pragma: no cover
    main()
