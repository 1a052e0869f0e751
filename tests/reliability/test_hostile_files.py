"""Hostile files: pickled code in checkpoints, external data that escapes, metadata bombs.

Every one is refused with one clear line (exit code 2 through the commands) before it can do
harm: the pickled code never runs, onnxruntime never opens a file outside the model's folder
(the outside file is a FIFO, so opening it would hang the test), and a metadata bomb is refused
in bounded time and memory (measured in a fresh process).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from reliability_support import DATA, INT_MODEL, python_command

from mfx.cli.eval import main as eval_main
from mfx.cli.predict import main as predict_main
from mfx.errors import ModelFormatError
from mfx.runtime import Predictor

TEST_RATINGS = "10,3,1\n20,17,2\n35,42,3\n"


class _Evil:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_error_line(result, path: Path, starts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {path}: {starts}"), lines[0]


# -- checkpoints that would run code -------------------------------------------------------


@pytest.fixture()
def evil_files(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pt"
    torch.save({"mfx_checkpoint": 1, "payload": _Evil(str(marker))}, checkpoint)
    state_dict = tmp_path / "evil_state.pt"
    torch.save({"U.weight": torch.zeros(2, 1), "hook": _Evil(str(marker))}, state_dict)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil(str(marker))))
    data = tmp_path / "test.csv"
    data.write_text(TEST_RATINGS)
    return marker, checkpoint, state_dict, raw, data


REFUSED = "refused: the file holds Python objects that loading would execute"


@pytest.mark.torch
def test_pickled_code_is_refused_by_mfx_export(evil_files, tmp_path):
    pytest.importorskip("onnx")
    from mfx.cli.export import main as export_main

    marker, checkpoint, state_dict, raw, _ = evil_files
    out = tmp_path / "out.onnx"
    for args, path in (
        (["--checkpoint", str(checkpoint)], checkpoint),
        (["--checkpoint", str(raw)], raw),
        (["--state-dict", str(state_dict), "--classes", "0,1"], state_dict),
    ):
        result = CliRunner().invoke(export_main, [str(out), *args, "-q"])
        if path is raw:  # a bare pickle is not a torch zip file: refused as such
            _one_error_line(result, path, "")
        else:
            _one_error_line(result, path, REFUSED)
        assert not marker.exists(), "the pickled code ran"
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.onnx.")]


@pytest.mark.torch
def test_pickled_code_is_refused_by_mfx_eval(evil_files, tmp_path):
    marker, checkpoint, _, raw, data = evil_files
    out = tmp_path / "eval.json"
    for path in (checkpoint, raw):
        result = CliRunner().invoke(eval_main, [str(path), "--data", str(data), "--json", str(out)])
        _one_error_line(result, path, REFUSED if path is checkpoint else "")
        assert not marker.exists(), "the pickled code ran"
        assert not out.exists()


# -- external data outside the model's folder ----------------------------------------------


def _patched_ext_model(folder: Path, location: bytes) -> Path:
    """tests/data/tiny_ext.onnx with its 16-byte data location replaced (same length)."""
    assert len(location) == len(b"tiny_ext.weights")
    model = folder / "tiny_ext.onnx"
    model.write_bytes((DATA / "tiny_ext.onnx").read_bytes().replace(b"tiny_ext.weights", location))
    return model


def _escapes(tmp_path: Path) -> list[tuple[str, Path, str]]:
    """(name, model, expected start of the error) for each way out of the folder."""
    cases = [
        ("parent", DATA / "escape_parent.onnx", "initializer 'P' points to external data at "
         "'../escape.bin', outside the model's folder"),
        ("absolute", DATA / "escape_absolute.onnx", "initializer 'P' points to external data at "
         "'/etc/mfx-escape.bin', outside the model's folder"),
    ]
    outside = tmp_path / "outside"
    outside.mkdir()
    fifo = outside / "secret"
    os.mkfifo(fifo)  # opening it for reading would block: proof that nobody opened it
    (outside / "tiny.weights").symlink_to(fifo)
    link_folder = tmp_path / "link_file"
    link_folder.mkdir()
    model = _patched_ext_model(link_folder, b"tiny_ext.weights")
    (link_folder / "tiny_ext.weights").symlink_to(fifo)
    cases.append(("symlink_file", model, "initializer 'P': external data 'tiny_ext.weights' "
                  "resolves to"))
    dir_folder = tmp_path / "link_dir"
    dir_folder.mkdir()
    model = _patched_ext_model(dir_folder, b"sub/tiny.weights")
    (dir_folder / "sub").symlink_to(outside, target_is_directory=True)
    cases.append(("symlink_dir", model, "initializer 'P': external data 'sub/tiny.weights' "
                  "resolves to"))
    fifo_folder = tmp_path / "fifo_inside"
    fifo_folder.mkdir()
    model = _patched_ext_model(fifo_folder, b"tiny_ext.weights")
    os.mkfifo(fifo_folder / "tiny_ext.weights")
    cases.append(("fifo_inside", model, "initializer 'P': external data 'tiny_ext.weights' is "
                  "not a regular file"))
    return cases


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links")
def test_external_data_escapes_are_refused_before_anything_opens_them(tmp_path):
    data = tmp_path / "test.csv"
    data.write_text(TEST_RATINGS)
    for name, model, starts in _escapes(tmp_path):
        with pytest.raises(ModelFormatError) as caught:
            Predictor(model, providers="cpu")
        assert str(caught.value).startswith(f"{model}: {starts}"), name
        # The commands, in a subprocess with a timeout: a FIFO opened by mistake would hang.
        for command in (
            [*python_command("mfx.cli.predict"), str(model), "10:3"],
            [*python_command("mfx.cli.eval"), str(model), "--data", str(data)],
        ):
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 2, (name, proc.stderr)
            assert proc.stdout == ""
            assert proc.stderr.startswith(f"Error: {model}: {starts}"), (name, proc.stderr)
            assert proc.stderr.count("\n") == 1, proc.stderr


def test_the_external_data_model_itself_still_loads(tmp_path):
    folder = tmp_path / "ok"
    folder.mkdir()
    shutil.copy(DATA / "tiny_ext.onnx", folder)
    shutil.copy(DATA / "tiny_ext.weights", folder)
    assert Predictor(folder / "tiny_ext.onnx", providers="cpu").predict(10, 3) is not None


# -- models whose tables disagree with their metadata (committed fixtures) ------------------


@pytest.mark.parametrize(
    "name, starts",
    [
        ("rows_extra", "the model's row table has more than the 7 rows its metadata"),
        ("rows_short", "the model fails on row index 6, column index 8 although its metadata"),
        ("not_mfx", "not an mfx model"),
        ("future_format", "mfx.format 99 is not supported"),
    ],
)
def test_inconsistent_models_through_the_commands(tmp_path, name, starts):
    model = DATA / f"{name}.onnx"
    data = tmp_path / "test.csv"
    data.write_text(TEST_RATINGS)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(predict_main, [str(model), "-i", str(data), "-o", str(out)])
    _one_error_line(result, model, starts)
    result = CliRunner().invoke(eval_main, [str(model), "--data", str(data)])
    _one_error_line(result, model, starts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.csv"]


# -- crafted metadata (needs the onnx package to write the models) ---------------------------

ROWS = [10, 20, 35, 36, 50, 71, 1000]


def _crafted(folder: Path, name: str, **changes: str) -> Path:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(INT_MODEL))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(changes)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


CRAFTED = [
    ("string_100mb", {"mfx.rows": json.dumps(["x" * (100 << 20)])},
     "metadata mfx.rows is 104,857,604 characters long, far more than 7 ids can take"),
    ("list_bomb", {"mfx.rows": "[" + "[]," * (10 << 20) + "[]]", "mfx.n_rows": str(10 << 20)},
     "metadata mfx.rows nests 2 levels deep, expected a flat JSON list"),
    ("object_bomb", {"mfx.cols": "[" + "{}," * 1000 + "{}]", "mfx.n_cols": "1001"},
     "metadata mfx.cols nests 2 levels deep, expected a flat JSON list"),
    ("deep_metrics", {"mfx.metrics": "[" * 100_000 + "]" * 100_000},
     "metadata mfx.metrics nests 100000 levels deep, expected at most 32 levels"),
    ("deep_in_strings_is_fine", {"mfx.metrics": json.dumps({"note": "[" * 1000})}, None),
    ("n_rows_absurd", {"mfx.n_rows": str(10**15)},
     "metadata declares 1,000,000,000,000,000 rows and 9 columns, more ids than a file of"),
    ("n_rows_not_a_number", {"mfx.n_rows": "7" * 5000},
     "metadata mfx.n_rows is 5,000 characters long, over the 64 a valid model needs"),
    ("n_rows_disagrees", {"mfx.n_rows": "6"},
     "metadata mfx.n_rows=6 disagrees with the 7 ids listed"),
    ("table_disagrees", {"mfx.rows": json.dumps(ROWS[:-1]), "mfx.n_rows": "6"},
     "the model's row table has more than the 6 rows its metadata (mfx.n_rows) lists"),
    ("id_beyond_int64", {"mfx.rows": json.dumps([*ROWS[:-1], 2**70])},
     "metadata mfx.rows holds an id outside int64"),
    ("id_too_long", {"mfx.rows": json.dumps(["x" * 5000, "a", "b", "c", "d", "e", "f"])},
     "metadata mfx.rows holds an id of 5,000 characters; at most 1,024 are allowed"),
    ("ids_unsorted", {"mfx.rows": json.dumps(ROWS[::-1])},
     "metadata mfx.rows: row ids must be distinct and sorted ascending"),
    ("ids_mixed", {"mfx.rows": json.dumps([*ROWS[:-1], "x"])},
     "metadata mfx.rows must hold only integers or only strings"),
    ("classes_twice", {"mfx.classes": json.dumps([0.5, 1, 1.0, 2, 2.5, 3, 3.5, 4, 4.5, 5])},
     "metadata mfx.classes: class 1 is listed twice"),
    ("classes_count", {"mfx.classes": json.dumps([1, 2, 3]), "mfx.prior": "[0.2, 0.3, 0.5]"},
     "output 'logits' has 10 classes but the metadata lists 3"),
    ("prior_infinite", {"mfx.prior": json.dumps([float("inf")] + [0.1] * 9)},
     "metadata mfx.prior must hold finite, non-negative frequencies"),
    ("prior_negative", {"mfx.prior": json.dumps([-1.0] + [0.2] * 9)},
     "metadata mfx.prior must hold finite, non-negative frequencies"),
    ("not_json", {"mfx.classes": "[0.5, 1,"}, "metadata mfx.classes is not valid JSON"),
    ("class_nan", {"mfx.classes": "[NaN, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]"},
     "metadata mfx.classes: class nan is not a finite number"),
]


@pytest.mark.parametrize("name, changes, starts", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_metadata_is_refused_at_load(tmp_path, name, changes, starts):
    model = _crafted(tmp_path, name, **changes)
    if starts is None:
        Predictor(model, providers="cpu")
        return
    with pytest.raises(ModelFormatError) as caught:
        Predictor(model, providers="cpu")
    assert str(caught.value).startswith(f"{model}: {starts}")
    result = CliRunner().invoke(predict_main, [str(model), "10:3"])
    _one_error_line(result, model, starts)


_LOAD = textwrap.dedent(
    """
    import sys, time
    from mfx.runtime import Predictor

    def peak():  # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM"))

    before = peak()
    started = time.perf_counter()
    try:
        Predictor(sys.argv[1], providers="cpu")
        outcome = "loaded"
    except Exception as exc:
        outcome = type(exc).__name__
    seconds = time.perf_counter() - started
    print(outcome, seconds, (peak() - before) * 1024)
    """
)


def _load_cost(model: Path) -> tuple[str, float, int]:
    """Outcome, seconds and peak-memory growth (bytes) of loading ``model`` in a new process."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, str(model)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    outcome, seconds, grown = proc.stdout.split()
    return outcome, float(seconds), int(grown)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("name", ["string_100mb", "list_bomb"])
def test_a_metadata_bomb_is_refused_in_bounded_time_and_memory(tmp_path, name):
    """Refused within 5 s, growing memory by at most 3x the file (it is read once, and the
    scan decodes its metadata); before the checks, parsing the 30 MB list bomb took 870 MB."""
    changes, _ = next((c[1], c[2]) for c in CRAFTED if c[0] == name)
    model = _crafted(tmp_path, name, **changes)
    size = model.stat().st_size
    outcome, seconds, grown = _load_cost(model)
    assert outcome == "ModelFormatError"
    assert seconds < 5.0, f"{name}: {seconds:.2f}s"
    assert grown < 3 * size + (32 << 20), f"{name}: grew {grown / 2**20:.0f} MiB for a " \
        f"{size / 2**20:.0f} MiB file"
    print(f"{name}: {size / 2**20:.0f} MiB file refused in {seconds:.2f}s, "
          f"peak memory +{grown / 2**20:.0f} MiB")
