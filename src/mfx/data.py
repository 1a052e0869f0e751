"""Reading ratings files and matrices into arrays (numpy + pandas' C reader, no torch).

Two shapes of input are understood:

* **triples**: one rating per line, ``row, column, label`` and optionally more fields (a
  timestamp, say) that are ignored. Comma, tab, ``::`` (MovieLens ``ratings.dat``), semicolon or
  whitespace separated, with or without a header line. MovieLens ``u.data``, ``ratings.dat`` and
  ``ratings.csv`` are all triples.
* **matrix**: a dense matrix (``.npy``, or CSV/TSV of numbers) with one row per matrix row; an
  empty or NaN cell is unknown. Row and column ids are the 0-based positions.

``format="auto"`` detects which from the extension and the first lines; an explicit format
overrides. Every problem is reported as :class:`~mfx.errors.DataError` with the file and line.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfx.errors import DataError
from mfx.ids import MAX_ID_CHARS, IdMap
from mfx.labels import Classes

#: ``--format`` choices.
FORMATS = ("auto", "csv", "tsv", "dat", "udata", "whitespace", "matrix", "npy")

_SEPARATORS = {"csv": ",", "tsv": "\t", "dat": "::", "udata": "\t", "whitespace": r"\s+"}
_HEADER_WORDS = {
    "user",
    "users",
    "userid",
    "user_id",
    "item",
    "items",
    "itemid",
    "item_id",
    "movie",
    "movieid",
    "movie_id",
    "rating",
    "ratings",
    "row",
    "rows",
    "col",
    "cols",
    "column",
    "columns",
    "label",
    "labels",
    "timestamp",
    "time",
    "score",
    "class",
    "id",
    "uid",
    "iid",
}
_SNIFF_BYTES = 1 << 16
#: A line longer than this stops the read (checked as the bytes stream in, so the memory a
#: file can make the reader spend does not grow with the file).
_MAX_LINE_BYTES = 1 << 20
_WHITESPACE_FIELD = re.compile(r'(?:"(?:[^"]|"")*"|[^\s"])+')
_INTEGER_TEXT = r"[+-]?\d+"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Layout:
    """How a text file is laid out, as found by :func:`sniff`."""

    path: str
    kind: str  # "triples", "matrix" or "npy"
    sep: str = ","
    header: bool = False
    n_fields: int = 0

    def split(self, line: str) -> list[str]:
        """The fields of one line; a quoted field may hold the separator."""
        if '"' not in line:
            return line.split() if self.sep == r"\s+" else line.split(self.sep)
        if self.sep == r"\s+":
            return [f.strip('"').replace('""', '"') for f in _WHITESPACE_FIELD.findall(line)]
        if len(self.sep) == 1:
            with contextlib.suppress(csv.Error, StopIteration):
                return next(csv.reader([line], delimiter=self.sep, quotechar='"'))
        return line.split(self.sep)


def _fail(path: str | os.PathLike[str], message: str, line: int | None = None) -> DataError:
    where = f"{path}: line {line}: " if line is not None else f"{path}: "
    err = DataError(where + message)
    err.line = line  # type: ignore[attr-defined]
    return err


def _open_check(path: str | os.PathLike[str]) -> bytes:
    """First bytes of a readable regular file; clear errors for missing, folders, binaries."""
    p = Path(path)
    if not p.exists():
        raise _fail(path, "file not found; check the path")
    if p.is_dir():
        raise _fail(path, "is a folder, not a file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    return head


def _decode_head(path: str | os.PathLike[str], head: bytes) -> list[str]:
    """Non-blank lines among the first bytes, decoded as UTF-8 (a BOM is fine)."""
    if b"\x00" in head:
        raise _fail(path, "looks like a binary file, not a text ratings file")
    newline = head.find(b"\n")
    if (newline < 0 and len(head) >= _SNIFF_BYTES) or newline > _MAX_LINE_BYTES:
        raise _fail(path, "first line is longer than 64 KiB; this is not a ratings file", 1)
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if len(head) >= _SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last one may be cut in the middle
    return [ln for ln in lines if ln.strip()]


_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def _sniff_sep(line: str) -> str:
    """The separator of a first line; what sits inside a quoted field does not count."""
    line = _QUOTED.sub("", line) if '"' in line else line
    if "::" in line:
        return "::"
    for sep in ("\t", ",", ";"):
        if sep in line:
            return sep
    return r"\s+"


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    names = {f.strip().strip('"').strip().lower() for f in first}
    if names & _HEADER_WORDS:
        return True
    if second is None or len(first) < 3 or len(second) < 3:
        return False
    # A line of text fields above a line with a numeric label is a header line.
    return not any(_is_number(f) for f in first[:3]) and _is_number(second[2])


def sniff(path: str | os.PathLike[str], format: str = "auto", header: bool | None = None) -> Layout:
    """Work out how ``path`` is laid out: triples or matrix, separator, header line."""
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    name = str(path)
    if format == "npy" or (format in ("auto", "matrix") and name.lower().endswith(".npy")):
        _open_check(path)
        return Layout(name, "npy")
    head = _open_check(path)
    if not head.strip():
        raise _fail(path, "file is empty; expected lines of row, column, label")
    lines = _decode_head(path, head)
    if not lines:
        raise _fail(path, "file has only blank lines; expected lines of row, column, label")
    sep = _SEPARATORS.get(format) or _sniff_sep(lines[0])
    layout = Layout(name, "triples", sep=sep)
    first = layout.split(lines[0])
    second = layout.split(lines[1]) if len(lines) > 1 else None
    if format == "udata":
        has_header = False
    elif header is not None:
        has_header = header
    else:
        has_header = _looks_like_header(first, second)
    if format == "matrix":
        kind = "matrix"
    elif format != "auto":
        kind = "triples"
    elif has_header:
        kind = "triples"
    elif len(first) >= 5 or any(f.strip() == "" for f in first):
        kind = "matrix"
    else:
        kind = "triples"
    if kind == "matrix":
        return Layout(name, "matrix", sep=sep, header=False, n_fields=len(first))
    if len(first) < 3 and not has_header:
        raise _fail(
            path,
            f"expected at least 3 fields (row, column, label) separated by {_sep_name(sep)}, "
            f"found {len(first)}; pass --format if the separator was misread",
            _physical_line(path, 0),
        )
    return Layout(name, "triples", sep=sep, header=has_header, n_fields=len(first))


def _sep_name(sep: str) -> str:
    return {",": "commas", "\t": "tabs", "::": "'::'", ";": "semicolons"}.get(sep, "whitespace")


def _lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The file's lines as text, each cut at :data:`_MAX_LINE_BYTES` characters.

    Only used on error paths, so a plain Python scan is fine; the cut keeps a huge line from
    being read into memory whole.
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        while True:
            line = fh.readline(_MAX_LINE_BYTES)
            if not line:
                return
            if len(line) == _MAX_LINE_BYTES and not line.endswith(("\n", "\r")):
                rest = line
                while rest and not rest.endswith(("\n", "\r")):
                    rest = fh.readline(_MAX_LINE_BYTES)
            yield line


def _physical_line(path: str | os.PathLike[str], record: int, header: bool = False) -> int:
    """1-based line number of the ``record``-th data line (blank lines and header skipped)."""
    seen = -1 if header else 0
    number = 0
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        if seen == record:
            return number
        seen += 1
    return max(number, 1)


def _line_text(path: str | os.PathLike[str], number: int) -> str:
    for i, line in enumerate(_lines(path), start=1):
        if i == number:
            return line.rstrip("\r\n")
    return ""


def _too_long(path: str | os.PathLike[str], line: int) -> DataError:
    return _fail(
        path, f"line is longer than {_MAX_LINE_BYTES >> 20} MiB; this is not a ratings file", line
    )


class _LineRuns:
    """Bytes since the last line break, fed block by block; a line over the limit raises.

    Blocks are at most :data:`_MAX_LINE_BYTES` long, so a line that starts and ends inside one
    block is short enough, and only the runs that cross block edges need counting: each block
    costs a search for its first and its last line break, not a pass over its bytes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._run = 0  # bytes since the last line break
        self._run_start = 0  # file offset where that run began
        self._offset = 0  # bytes fed so far

    def feed(self, block: bytes) -> None:
        first = block.find(b"\n")
        carriage = block.find(b"\r", 0, first if first >= 0 else len(block))
        if carriage >= 0:
            first = carriage
        if first < 0:
            self._run += len(block)
            if self._run > _MAX_LINE_BYTES:
                raise self._error()
        else:
            if self._run + first > _MAX_LINE_BYTES:
                raise self._error()
            last = block.rfind(b"\n")
            last = max(last, block.rfind(b"\r", last + 1))
            self._run = len(block) - last - 1
            self._run_start = self._offset + last + 1
        self._offset += len(block)

    def _error(self) -> DataError:
        # The line number counts line feeds before the long line (error path: one more pass).
        breaks = 0
        with open(self.path, "rb") as fh:
            left = self._run_start
            while left > 0 and (block := fh.read(min(left, 1 << 20))):
                breaks += block.count(b"\n")
                left -= len(block)
        return _too_long(self.path, breaks + 1)


_NOT_UTF8 = "not UTF-8 text (binary, or another encoding: save the file as UTF-8)"


def _check_bytes(layout: Layout, fh: Any) -> None:
    """Refuse a line over :data:`_MAX_LINE_BYTES` or bytes that are not UTF-8, before parsing.

    One pass over the binary file ``fh`` in blocks of :data:`_MAX_LINE_BYTES` (so a file of one
    endless line costs one block of memory, and pandas, which buffers a whole line however
    long, never meets one), decoding only blocks that are not plain ASCII: a few percent of
    what parsing costs. pandas then reads the same file, rewound, as bytes: no Python call per
    block and no decoding to text and encoding back, which :class:`_LineGuard` costs.
    """
    runs = _LineRuns(layout.path)
    decoder = None
    pending = False  # the decoder holds the first bytes of a character cut by a block edge
    try:
        while block := fh.read(_MAX_LINE_BYTES):
            runs.feed(block)
            if pending or not block.isascii():
                decoder = decoder or codecs.getincrementaldecoder("utf-8")()
                decoder.decode(block)
                pending = bool(decoder.getstate()[0])
        if decoder is not None:
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _fail(layout.path, _NOT_UTF8, _bad_utf8_line(layout)) from None
    fh.seek(0)


class _LineGuard:
    """A binary file for pandas' reader that stops at a line over :data:`_MAX_LINE_BYTES`.

    pandas buffers a whole line (and then a whole field) however long it is; this check runs
    on each block as it is read, so a file of one endless line costs one block of memory.
    Used where pandas streams a file in chunks (:func:`iter_pairs`); whole reads scan first
    (:func:`_check_bytes`).
    """

    def __init__(self, path: str | os.PathLike[str], fh: Any) -> None:
        self.path = path
        self._fh = fh
        self._runs = _LineRuns(path)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_LINE_BYTES:
            size = _MAX_LINE_BYTES
        block = self._fh.read(size)
        self._runs.feed(block)
        return block

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:  # pandas' file-like test; it only calls read()
        return iter(self._fh)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _LineGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is a core dependency
        raise DataError("reading files needs pandas: pip install pandas") from exc
    return pd


#: pandas' default missing-value spellings. They mark a missing *label*; in an id column they
#: are ordinary text ("NA" is Namibia, "null" a user name), so only an empty field is missing.
# fmt: off
_MISSING_LABELS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
# fmt: on


def _read_csv_options(
    layout: Layout, usecols: Sequence[int] | None, label: int | None = 2
) -> dict[str, Any]:
    """Options for pandas' C reader; ``label`` is the field holding labels (None: no labels)."""
    sep = layout.sep
    cols = None if usecols is None else list(usecols)
    step = 1
    if sep == "::":
        # The C reader takes one-character separators only; 'a::b::c' split on ':' is
        # 'a', '', 'b', '', 'c', so field k is column 2k.
        sep = ":"
        step = 2
        cols = [2 * c for c in cols] if cols is not None else None
    width = step * (max(layout.n_fields, 3) - 1) + 1
    missing: dict[int, list[str]] = {k: [""] for k in range(width)}
    if label is not None:
        missing[step * label] = _MISSING_LABELS
    return dict(
        sep=sep,
        header=0 if layout.header else None,
        usecols=cols,
        engine="c",
        encoding="utf-8-sig",
        skip_blank_lines=True,
        on_bad_lines="error",
        keep_default_na=False,
        na_values=missing,
    )


def _translate_parser_error(layout: Layout, exc: Exception) -> DataError:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        expected, line, saw = (int(g) for g in match.groups())
        if layout.sep == "::":
            expected, saw = (expected + 1) // 2, (saw + 1) // 2
        return _fail(
            layout.path,
            f"expected {expected} fields like the first line, found {saw}; "
            "every line needs the same number of fields",
            line,
        )
    if isinstance(exc, UnicodeDecodeError):
        return _fail(layout.path, _NOT_UTF8, _bad_utf8_line(layout))
    return _fail(layout.path, f"cannot parse: {text}")


def _bad_utf8_line(layout: Layout) -> int | None:
    """Line of the first byte that is not UTF-8 (error path: one pass in blocks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with open(layout.path, "rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # The decoder may hold up to 3 bytes of the previous block; close enough.
                return lines + block.count(b"\n", 0, max(exc.start, 0))
            lines += block.count(b"\n")
    return None


def _read_frame(
    layout: Layout, usecols: Sequence[int] | None, fh: Any, chunksize: int | None = None
):
    """pandas' C reader over ``fh``; errors become DataError.

    ``fh`` is a :class:`_LineGuard`, read as text (decoding checks the UTF-8 as it streams),
    or a binary file that :func:`_check_bytes` passed, read as the UTF-8 bytes it is (pandas'
    tokenizer drops a BOM).
    """
    pd = _pandas()
    options = _read_csv_options(layout, usecols, None if layout.kind == "pairs" else 2)
    if not isinstance(fh, _LineGuard):
        options.update(encoding="utf-8", compression=None)
    try:
        with warnings.catch_warnings():
            # A column of numbers and text makes pandas warn; the id and label checks then
            # report the line, so the warning would only be a second, vaguer message.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(fh, chunksize=chunksize, **options)
    except DataError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _translate_parser_error(layout, exc) from None
    except pd.errors.EmptyDataError:
        raise _fail(layout.path, "file is empty; expected lines of row, column, label") from None


#: Lines per piece when :func:`_read_plain_numbers` reads a file piece by piece.
_PIECE_LINES = 1 << 18


def _read_plain_numbers(layout: Layout, fh: Any) -> list[np.ndarray] | None:
    """Integer row and column ids and finite numeric labels, read piece by piece; or None.

    Reading the whole file at once, pandas parses it in pieces and then copies each field's
    column out of them, so every field is held twice, the ignored ones too. Here each piece is
    copied into arrays of rows, columns and labels alone and dropped: at MovieLens-20M's size a
    third less peak memory, and fewer fresh pages to fault in. A piece holding anything else
    (text, a float or missing id, a NaN, a short line, a parse error) gives None, and the
    whole-file read then takes over with its own checks and messages. The dtype pandas gives a
    piece's column says what every one of its values is, so pieces that all pass read exactly
    as the whole file would, however the file is cut into pieces.
    """
    pd = _pandas()
    step = 2 if layout.sep == "::" else 1
    fields = (0, step, 2 * step)
    options = {**_read_csv_options(layout, None), "encoding": "utf-8", "compression": None}
    size = os.fstat(fh.fileno()).st_size
    out: list[np.ndarray] = []
    count = 0
    try:
        with (
            warnings.catch_warnings(),
            pd.read_csv(fh, chunksize=_PIECE_LINES, **options) as reader,
        ):
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            for piece in reader:
                if piece.shape[1] <= fields[2]:
                    return None  # a header of fewer fields than the lines
                rows, cols, labels = (piece.iloc[:, k].to_numpy() for k in fields)
                if rows.dtype.kind != "i" or cols.dtype.kind != "i":
                    return None
                if labels.dtype.kind not in "if" or not np.isfinite(labels).all():
                    return None
                if layout.n_fields > 3 and piece.iloc[:, -1].isna().any():
                    return None  # maybe a short line
                n = len(piece)
                if not out:
                    # Room for the lines the first piece suggests, and a quarter more.
                    room = int(size / max(fh.tell(), 1) * n * 1.25) + n
                    out = [np.empty(room, np.int64), np.empty(room, np.int64), np.empty(room)]
                if count + n > out[0].size:
                    for array in out:  # realloc: large arrays grow without a copy
                        array.resize(2 * (count + n), refcheck=False)
                for array, column in zip(out, (rows, cols, labels)):
                    array[count : count + n] = column
                count += n
    except ValueError:  # a parse error (pandas' are ValueErrors): the whole read reports it
        return None
    if count == 0:
        return None
    for array in out:
        array.resize(count, refcheck=False)
    return out


@dataclass
class RawRatings:
    """Ratings as read: raw row ids, raw column ids and raw labels, one entry per rating."""

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    source: str = "<memory>"
    layout: Layout | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def line_of(self, position: int) -> int | None:
        """The file line of rating ``position`` (for error messages), when read from a file."""
        if self.layout is None or self.layout.kind == "npy":
            return None
        if self.layout.kind == "matrix":
            return None
        return _physical_line(self.layout.path, position, self.layout.header)


def _id_column(
    values: Any, layout: Layout, what: str, offset: int = 0, mixed: bool = False
) -> np.ndarray:
    """Validated raw ids from one parsed column: int64 or str.

    ``mixed=False`` (ratings) refuses a column whose first id is an integer and a later one is
    not: that is a damaged line far more often than a file of text ids. ``mixed=True``
    (pairs to predict) keeps such a column as text; the model then says which ids it knows.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "u":
        # pandas reads 2**63 .. 2**64-1 as uint64; a cast would wrap them to negative ids.
        big = np.flatnonzero(arr > np.uint64(_INT64_MAX))
        if big.size == 0:
            return arr.astype(np.int64)
        if mixed:
            return arr.astype(str)  # kept as written; the model says whether it knows it
        raise _bad_record(layout, offset + int(big[0]), _outside_int64(what, int(arr[big[0]])))
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            k = int(bad[0])
            shown = "empty" if np.isnan(arr[k]) else repr(float(arr[k]))
            raise _bad_record(
                layout, offset + k, f"{what} id is {shown}; ids must be integers or text"
            )
        # Beyond 2**53 a float no longer holds every integer: the id read may not be the one
        # written (and beyond 2**63 the cast to int64 is undefined).
        inexact = np.flatnonzero(np.abs(arr) > 2.0**53)
        if inexact.size:
            k = int(inexact[0])
            raise _bad_record(
                layout,
                offset + k,
                f"{what} id {float(arr[k])!r} is too large to be read exactly in this form; "
                "write ids as plain integers",
            )
        return arr.astype(np.int64)
    # Text (or a mix of numbers and text): every id is kept as its text, stripped.
    pd = _pandas()
    series = pd.Series(arr, dtype=object)
    missing = series.isna().to_numpy()
    if missing.any():
        raise _bad_record(layout, offset + int(np.flatnonzero(missing)[0]), f"empty {what} id")
    text = series.astype(str).str.strip()
    _check_lengths(text, layout, offset, f"{what} id")
    if not mixed and len(text):
        integer = text.str.fullmatch(_INTEGER_TEXT).to_numpy(dtype=bool)
        if integer.all():
            # Integers pandas did not convert: beyond int64, or digits of another script.
            numbers = [int(t) for t in text.tolist()]
            k = next((i for i, v in enumerate(numbers) if not _INT64_MIN <= v <= _INT64_MAX), -1)
            if k >= 0:
                raise _bad_record(layout, offset + k, _outside_int64(what, numbers[k]))
            return np.asarray(numbers, dtype=np.int64)
        if integer[0]:
            k = int(np.flatnonzero(~integer)[0])
            raise _bad_record(
                layout,
                offset + k,
                f"{what} id {text.iloc[k]!r} is not a number, unlike the first {what} id "
                f"{text.iloc[0]!r}; {what} ids must be all integers or all text",
            )
    out = text.to_numpy(dtype=str)
    empty = out == ""
    if empty.any():
        raise _bad_record(layout, offset + int(np.flatnonzero(empty)[0]), f"empty {what} id")
    return out


def _outside_int64(what: str, value: int) -> str:
    return f"{what} id {value} is out of range: integer ids must fit in 64 bits"


def _check_lengths(text: Any, layout: Layout, offset: int, what: str) -> None:
    """Refuse a text field over :data:`MAX_ID_CHARS` before it sets a numpy array's width."""
    lengths = text.str.len().to_numpy()
    if lengths.size and int(lengths.max()) > MAX_ID_CHARS:
        k = int(np.argmax(lengths > MAX_ID_CHARS))
        raise _bad_record(
            layout,
            offset + k,
            f"{what} is {int(lengths[k]):,} characters long; at most {MAX_ID_CHARS:,} are allowed",
        )


def _label_column(values: Any, layout: Layout, offset: int = 0) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            k = int(bad[0])
            problem = (
                "empty label" if np.isnan(arr[k]) else f"label {arr[k].item()!r} is not finite"
            )
            raise _bad_record(layout, offset + k, problem)
        return arr
    pd = _pandas()
    series = pd.Series(arr, dtype=object)
    missing = series.isna().to_numpy()
    if missing.any():
        raise _bad_record(layout, offset + int(np.flatnonzero(missing)[0]), "empty label")
    text = series.astype(str).str.strip()
    _check_lengths(text, layout, offset, "label")
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    is_number = ~np.isnan(numbers)
    if is_number.all():
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise _bad_record(
                layout, offset + int(bad[0]), f"label {numbers[bad[0]].item()!r} is not finite"
            )
        return numbers
    if is_number.any():
        first_is_number = bool(is_number[0])
        k = int(np.flatnonzero(~is_number if first_is_number else is_number)[0])
        kind = "text" if first_is_number else "a number"
        raise _bad_record(
            layout, offset + k, f"label {text.iloc[k]!r} is {kind}, unlike the first label"
        )
    out = text.to_numpy(dtype=str)
    empty = out == ""
    if empty.any():
        raise _bad_record(layout, offset + int(np.flatnonzero(empty)[0]), "empty label")
    return out


def _bad_record(layout: Layout, record: int, problem: str) -> DataError:
    """An error for data record ``record``, naming its line; short lines are named as such."""
    line = _physical_line(layout.path, record, layout.header)
    fields = layout.split(_line_text(layout.path, line))
    need = 3 if layout.kind == "triples" else 2
    if len(fields) < need:
        what = "row, column, label" if need == 3 else "row, column"
        problem = f"expected at least {need} fields ({what}), found {len(fields)}"
    return _fail(layout.path, problem, line)


def _check_short_lines(layout: Layout, frame: Any) -> None:
    """Refuse a line with fewer fields than the first (pandas fills those with NaN)."""
    if layout.n_fields <= 3:
        return  # a short line then shows up as an empty id or label
    last = frame.iloc[:, frame.shape[1] - 1]
    missing = np.flatnonzero(last.isna().to_numpy())
    if missing.size:
        line = _physical_line(layout.path, int(missing[0]), layout.header)
        found = len(layout.split(_line_text(layout.path, line)))
        if found < layout.n_fields:
            raise _fail(
                layout.path,
                f"expected {layout.n_fields} fields like the first line, found {found}",
                line,
            )


def read_ratings(
    path: str | os.PathLike[str], format: str = "auto", header: bool | None = None
) -> RawRatings:
    """Read a ratings file (triples or a dense matrix) into raw ids and labels.

    Parameters
    ----------
    path
        The file.
    format
        One of :data:`FORMATS`; ``"auto"`` detects from the extension and the first lines.
    header
        Force (``True``) or deny (``False``) a header line; ``None`` detects it.

    Raises
    ------
    DataError
        With the file, the line and the problem, for anything that is not a ratings file.
    """
    layout = sniff(path, format, header)
    if layout.kind == "npy":
        return _read_npy_matrix(layout)
    if layout.kind == "matrix":
        return _read_text_matrix(layout)
    # All fields are parsed (no usecols) so that a line with more fields than the first is
    # an error rather than silently cut.
    with open(layout.path, "rb") as fh:
        _check_bytes(layout, fh)
        numbers = _read_plain_numbers(layout, fh)
        if numbers is not None:
            return RawRatings(*numbers, source=str(path), layout=layout)
        fh.seek(0)
        frame = _read_frame(layout, None, fh=fh)
    if len(frame) == 0:
        raise _fail(path, "has a header but no ratings; expected lines of row, column, label")
    _check_short_lines(layout, frame)
    step = 2 if layout.sep == "::" else 1
    columns = [frame.iloc[:, step * k].to_numpy() for k in range(3)]
    rows = _id_column(columns[0], layout, "row")
    cols = _id_column(columns[1], layout, "column")
    labels = _label_column(columns[2], layout)
    return RawRatings(rows, cols, labels, source=str(path), layout=layout)


def iter_pairs(
    path: str | os.PathLike[str],
    format: str = "auto",
    header: bool | None = None,
    chunksize: int = 1 << 20,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (raw row ids, raw column ids) from a file of pairs, ``chunksize`` lines at a time.

    Lines need two fields (row, column); more are ignored. Errors name the file and line.
    """
    layout = sniff_pairs(path, format, header)
    offset = 0
    pd = _pandas()
    with _LineGuard(layout.path, open(layout.path, "rb")) as fh:
        reader = _read_frame(layout, (0, 1), chunksize=chunksize, fh=fh)
        chunks = iter(reader)
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                    chunk = next(chunks)
            except StopIteration:
                break
            except DataError:
                raise
            except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
                raise _translate_parser_error(layout, exc) from None
            rows = _id_column(chunk.iloc[:, 0].to_numpy(), layout, "row", offset, mixed=True)
            cols = _id_column(chunk.iloc[:, 1].to_numpy(), layout, "column", offset, mixed=True)
            offset += len(chunk)
            yield rows, cols
    if offset == 0:
        raise _fail(path, "has no pairs; expected lines of row, column")


def sniff_pairs(
    path: str | os.PathLike[str], format: str = "auto", header: bool | None = None
) -> Layout:
    """Layout of a pairs file: like :func:`sniff`, but two fields per line suffice."""
    if format in ("matrix", "npy"):
        raise DataError(f"format {format!r} holds ratings, not (row, column) pairs")
    head = _open_check(path)
    if not head.strip():
        raise _fail(path, "file is empty; expected lines of row, column")
    lines = _decode_head(path, head)
    if not lines:
        raise _fail(path, "file has only blank lines; expected lines of row, column")
    sep = _SEPARATORS.get(format) or _sniff_sep(lines[0])
    layout = Layout(str(path), "pairs", sep=sep)
    first = layout.split(lines[0])
    if header is None:
        names = {f.strip().strip('"').strip().lower() for f in first}
        header = bool(names & _HEADER_WORDS)
    if len(first) < 2:
        raise _fail(
            path,
            f"expected at least 2 fields (row, column) separated by {_sep_name(sep)}, "
            f"found {len(first)}",
            _physical_line(path, 0),
        )
    return Layout(str(path), "pairs", sep=sep, header=header, n_fields=len(first))


def _matrix_to_raw(matrix: np.ndarray, layout: Layout) -> RawRatings:
    if matrix.ndim != 2:
        raise _fail(layout.path, f"a matrix must be two-dimensional, got shape {matrix.shape}")
    if matrix.dtype.kind not in "iuf":
        raise _fail(layout.path, f"a matrix must hold numbers, got {matrix.dtype}")
    values = matrix.astype(np.float64)
    known = ~np.isnan(values)
    infinite = np.isinf(values)
    if infinite.any():
        i, j = (int(v) for v in np.argwhere(infinite)[0])
        raise _fail(layout.path, f"cell ({i}, {j}) is {values[i, j]}; ratings must be finite")
    rows, cols = np.nonzero(known)
    if rows.size == 0:
        raise _fail(layout.path, "the matrix has no known cells")
    return RawRatings(
        rows.astype(np.int64),
        cols.astype(np.int64),
        values[rows, cols],
        source=layout.path,
        layout=layout,
    )


def _read_npy_matrix(layout: Layout) -> RawRatings:
    try:
        matrix = np.load(layout.path, allow_pickle=False)
    except ValueError as exc:
        raise _fail(layout.path, f"not a numeric .npy matrix ({exc})") from None
    except OSError as exc:
        raise _fail(layout.path, f"not a .npy file ({exc})") from None
    return _matrix_to_raw(np.asarray(matrix), layout)


def _read_text_matrix(layout: Layout) -> RawRatings:
    """A dense matrix of numbers; empty or NaN cells are unknown. Ragged rows are refused."""
    widths: list[tuple[int, int]] = []
    for number, line in enumerate(_lines(layout.path), start=1):
        if len(line) == _MAX_LINE_BYTES and not line.endswith(("\n", "\r")):
            raise _too_long(layout.path, number)
        if not line.strip():
            continue
        widths.append((number, len(layout.split(line.rstrip("\r\n")))))
    if not widths:
        raise _fail(layout.path, "file is empty; expected a matrix of numbers")
    width = widths[0][1]
    for number, w in widths:
        if w != width:
            raise _fail(
                layout.path,
                f"matrix row has {w} cells but the first row has {width}; rows must be equal",
                number,
            )
    pd = _pandas()
    try:
        with _LineGuard(layout.path, open(layout.path, "rb")) as fh:
            frame = pd.read_csv(
                fh,
                sep=":" if layout.sep == "::" else layout.sep,
                header=None,
                engine="c",
                encoding="utf-8-sig",
                skip_blank_lines=True,
                skipinitialspace=True,
            )
    except DataError:
        raise
    except (pd.errors.ParserError, ValueError) as exc:
        raise _translate_parser_error(layout, exc) from None
    for k in range(frame.shape[1]):
        column = frame.iloc[:, k]
        # Not `dtype == object`: pandas 3 gives text columns its own "str" dtype.
        if not pd.api.types.is_numeric_dtype(column.dtype):
            numbers = pd.to_numeric(column, errors="coerce")
            bad = numbers.isna() & column.notna()
            if bad.any():
                r = int(np.flatnonzero(bad.to_numpy())[0])
                raise _fail(
                    layout.path,
                    f"cell {column.iloc[r]!r} in column {k + 1} is not a number",
                    widths[r][0],
                )
            frame[k] = numbers
    return _matrix_to_raw(frame.to_numpy(dtype=np.float64), layout)


@dataclass
class Ratings:
    """Ratings mapped to indices: what a model trains on.

    ``rows``, ``cols`` and ``labels`` are int64 arrays of equal length (row index, column
    index, class index); ``row_ids``, ``col_ids`` and ``classes`` translate them back.
    """

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    row_ids: IdMap
    col_ids: IdMap
    classes: Classes
    source: str = "<memory>"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if not (self.rows.shape == self.cols.shape == (n,)):
            raise ValueError("rows, cols and labels must be one-dimensional and equally long")
        _check_range(self.rows, len(self.row_ids), "row")
        _check_range(self.cols, len(self.col_ids), "column")
        _check_range(self.labels, len(self.classes), "class")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_cols(self) -> int:
        return len(self.col_ids)

    @classmethod
    def from_raw(cls, raw: RawRatings, classes: Sequence[Any] | None = None) -> Ratings:
        """Map raw ids and labels to indices; ``classes`` fixes the class list explicitly."""
        if len(raw) == 0:
            raise DataError(f"{raw.source}: no ratings")
        try:
            class_map, labels = Classes.fit(raw.labels, classes)
        except DataError as exc:
            position = getattr(exc, "position", None)
            line = raw.line_of(position) if position is not None else None
            if line is not None:
                raise _fail(raw.source, str(exc), line) from None
            raise DataError(f"{raw.source}: {exc}") from None
        row_ids, rows = IdMap.fit(raw.rows, "row")
        col_ids, cols = IdMap.fit(raw.cols, "column")
        return cls(rows, cols, labels, row_ids, col_ids, class_map, source=raw.source)

    def like(self, raw: RawRatings, unknown: str = "error") -> Ratings:
        """Map ``raw`` with this data's id maps and classes (for test data).

        ``unknown="error"`` refuses ids not seen here, naming how many and the first few;
        ``"drop"`` leaves those ratings out and records the count in ``extra["unknown"]``.
        """
        if unknown not in ("error", "drop"):
            raise ValueError("unknown must be 'error' or 'drop'")
        rows, cols, labels, unseen = map_raw(raw, self.row_ids, self.col_ids, self.classes)
        count = int(unseen.sum())
        if count and unknown == "error":
            where, shown = describe_unseen(raw, unseen)
            raise DataError(
                f"{where}{count} rating(s) have a row or column id not in the training "
                f"data, first {shown}; pass --unknown drop to leave them out"
            )
        keep = ~unseen
        out = Ratings(
            rows[keep],
            cols[keep],
            labels[keep],
            self.row_ids,
            self.col_ids,
            self.classes,
            source=raw.source,
        )
        out.extra["unknown"] = count
        return out

    def subset(self, index: np.ndarray) -> Ratings:
        """The ratings at ``index`` (positions or a boolean mask), sharing the maps."""
        return Ratings(
            self.rows[index],
            self.cols[index],
            self.labels[index],
            self.row_ids,
            self.col_ids,
            self.classes,
            source=self.source,
        )

    def concat(self, other: Ratings) -> Ratings:
        """These ratings followed by ``other``'s (which must share the id maps and classes)."""
        if (
            other.row_ids is not self.row_ids
            or other.col_ids is not self.col_ids
            or other.classes != self.classes
        ):
            raise ValueError("can only concatenate ratings that share id maps and classes")
        return Ratings(
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.cols, other.cols]),
            np.concatenate([self.labels, other.labels]),
            self.row_ids,
            self.col_ids,
            self.classes,
            source=self.source,
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[Ratings, Ratings]:
        """A random (train, validation) split with ``fraction`` of the ratings in validation."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        n_valid = max(1, int(round(fraction * len(self))))
        if n_valid >= len(self):
            raise DataError(f"{self.source}: too few ratings ({len(self)}) to hold out validation")
        return self.subset(np.sort(order[n_valid:])), self.subset(np.sort(order[:n_valid]))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


def map_raw(
    raw: RawRatings, row_ids: IdMap, col_ids: IdMap, classes: Classes
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``raw`` as row, column and class indices under existing maps, plus an unseen-id mask.

    A label outside ``classes`` is a :class:`DataError` naming its line; a pair whose row or
    column id is not in the maps gets index -1 and ``True`` in the mask.
    """
    try:
        _, labels = Classes.fit(raw.labels, classes.to_list())
    except DataError as exc:
        position = getattr(exc, "position", None)
        line = raw.line_of(position) if position is not None else None
        raise _fail(raw.source, str(exc), line) from None
    rows = row_ids.lookup(raw.rows)
    cols = col_ids.lookup(raw.cols)
    return rows, cols, labels, (rows < 0) | (cols < 0)


def describe_unseen(raw: RawRatings, unseen: np.ndarray) -> tuple[str, str]:
    """``"file: line N: "`` of the first unseen pair and the first few pairs, for messages."""
    first = np.flatnonzero(unseen)[:3]
    shown = ", ".join(f"({_plain(raw.rows[k])!r}, {_plain(raw.cols[k])!r})" for k in first)
    line = raw.line_of(int(first[0]))
    where = f"{raw.source}: line {line}: " if line is not None else f"{raw.source}: "
    return where, shown


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_range(values: np.ndarray, size: int, what: str) -> None:
    if values.dtype.kind not in "iu":
        raise ValueError(f"{what} indices must be integers, got {values.dtype}")
    if values.size and (int(values.min()) < 0 or int(values.max()) >= size):
        raise ValueError(f"{what} index out of range 0..{size - 1}")


def load_ratings(
    path: str | os.PathLike[str],
    format: str = "auto",
    classes: Sequence[Any] | None = None,
    header: bool | None = None,
) -> Ratings:
    """Read ``path`` and map it to indices: :func:`read_ratings` then :meth:`Ratings.from_raw`."""
    return Ratings.from_raw(read_ratings(path, format, header), classes)
