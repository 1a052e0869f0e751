"""Property tests for the readers: ratings written in any supported layout read back exactly.

Layouts: comma (quoted where a field needs it), tab, ``::`` and whitespace separated; with or
without a header line, a BOM, CRLF line ends, blank lines and a trailing timestamp field;
integer or text ids on each axis; integer, half-star or text labels.

What a writer must not do for the file to be unambiguous (the generators keep to it, and the
README's data formats section says so): text ids that all look like numbers are read as numbers
("007" is 7); a text id must not be a header word (``user``, ``rating`` ...) on the first line
of a file without a header, must not hold the separator unless quoted (a comma file may quote;
``::`` and whitespace files cannot), and text ids are stripped of surrounding spaces.
"""

from __future__ import annotations

import csv
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfx.data import _HEADER_WORDS, _MISSING_LABELS, iter_pairs, read_ratings

LAYOUTS = {"csv": ",", "tsv": "\t", "dat": "::", "whitespace": " "}
EXTENSIONS = {"csv": ".csv", "tsv": ".tsv", "dat": ".dat", "whitespace": ".txt"}
_BASE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.éßø日本Ωж"
#: Characters a text field may hold, beyond _BASE, in each layout.
_EXTRA = {"csv": ' ,"/|&()+!', "tsv": " ,;/|&()+!", "dat": "/|&()+!", "whitespace": "/|&()+!"}


def _plain_text(value: str) -> bool:
    """Text the reader must keep as text: not a number, a boolean, a header word or NA."""
    if value != value.strip() or not value or "::" in value:
        return False
    try:
        float(value)
        return False
    except ValueError:
        pass
    lowered = value.lower()
    return (
        lowered not in _HEADER_WORDS
        and lowered not in ("true", "false")
        and value not in _MISSING_LABELS
        and any(ch.isalpha() for ch in value)
    )


def _texts(layout: str) -> st.SearchStrategy[str]:
    alphabet = st.sampled_from(_BASE + _EXTRA[layout])
    return st.text(alphabet, min_size=1, max_size=12).filter(_plain_text)


@st.composite
def rating_files(draw):
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    n = draw(st.integers(1, 25))
    ids = {
        axis: draw(
            st.one_of(
                st.lists(st.integers(-(10**12), 10**15), min_size=n, max_size=n),
                st.lists(_texts(layout), min_size=n, max_size=n),
            )
        )
        for axis in ("rows", "cols")
    }
    label_kind = draw(st.sampled_from(["int", "half", "text"]))
    if label_kind == "int":
        labels = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    elif label_kind == "half":
        labels = [k / 2 for k in draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))]
    else:
        labels = draw(st.lists(_texts(layout), min_size=n, max_size=n))
    options = {
        "header": draw(st.booleans()),
        "bom": draw(st.booleans()),
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
        "timestamp": draw(st.booleans()),
        "blank_after": draw(st.sets(st.integers(0, n), max_size=3)),
    }
    return layout, ids["rows"], ids["cols"], labels, options


def _render(layout, rows, cols, labels, options) -> bytes:
    records = [[str(r), str(c), str(y)] for r, c, y in zip(rows, cols, labels)]
    if options["timestamp"]:
        records = [[*rec, str(978300760 + k)] for k, rec in enumerate(records)]
    header = ["row", "col", "label", "timestamp"][: len(records[0])]
    lines = []
    for record in ([header] if options["header"] else []) + records:
        if layout in ("csv", "tsv"):
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=LAYOUTS[layout], lineterminator="").writerow(record)
            lines.append(buffer.getvalue())
        else:
            lines.append(LAYOUTS[layout].join(record))
    out = []
    first = 1 if options["header"] else 0
    for k, line in enumerate(lines):
        out.append(line + options["newline"])
        if k - first in options["blank_after"]:
            out.append(options["newline"])
    text = ("\ufeff" if options["bom"] else "") + "".join(out)
    return text.encode("utf-8")


def _expected_labels(labels):
    return [float(y) for y in labels] if not isinstance(labels[0], str) else list(labels)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rating_files())
def test_ratings_round_trip_in_every_layout(tmp_path, spec):
    layout, rows, cols, labels, options = spec
    path = tmp_path / f"ratings{EXTENSIONS[layout]}"
    path.write_bytes(_render(layout, rows, cols, labels, options))
    raw = read_ratings(path)
    assert raw.rows.tolist() == rows
    assert raw.cols.tolist() == cols
    assert raw.labels.tolist() == _expected_labels(labels)
    assert raw.rows.dtype == (np.int64 if isinstance(rows[0], int) else raw.rows.dtype)
    # The same file as pairs for mfx-predict, streamed in small chunks.
    got_rows, got_cols = [], []
    for r, c in iter_pairs(path, chunksize=7):
        got_rows += r.tolist()
        got_cols += c.tolist()
    assert (got_rows, got_cols) == (rows, cols)
