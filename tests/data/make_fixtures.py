"""Build the small ONNX fixtures the runtime tests use (needs the ``onnx`` package).

Run once and commit what it writes beside itself::

    python tests/data/make_fixtures.py            # or: ... --out DIR

The runtime tests then need neither torch nor onnx. Every model has the mfx contract's folded
form: initializers ``P [n_rows, c]`` and ``Q [n_cols, c]``, ``logits = P[pairs[:, 0]] +
Q[pairs[:, 1]]``, ``probabilities = Softmax(logits)``, ``class_index = ArgMax(logits)``, with a
dynamic ``batch`` dimension. Weights come from ``numpy.random.default_rng`` with fixed seeds; the
same ``P``, ``Q`` and ids are saved as ``<name>.npz`` (load with ``allow_pickle=False``) for the
numpy reference. IR version and opset are pinned so the output does not depend on the onnx
version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mfx.model_format import encode_metadata

IR_VERSION = 8
OPSET = 17
FIXTURE_VERSION = "fixture"
HERE = Path(__file__).resolve().parent

#: name -> (seed, rows, cols, classes, prior)
VALID = {
    # Integer raw ids, not contiguous; the column ids span far more than a dense table holds,
    # so row look-ups take IdMap's dense path and column look-ups its searchsorted path.
    "tiny_int": (
        1,
        [10, 20, 35, 36, 50, 71, 1000],
        [3, 17, 42, 99, 1029, 5_000, 77_777, 10**9, 5 * 10**12],
        [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0],
        [1, 2, 3, 5, 8, 13, 21, 34, 8, 5],
    ),
    # String ids (one holding ':', as inline CLI pairs split at the last ':') and text classes.
    "tiny_str": (
        2,
        ["alice", "bob", "carol", "dave", "erin"],
        ["film:1", "film:2", "film:3", "show:1", "show:2", "show:3"],
        ["dislike", "like", "meh"],
        [0.3, 0.5, 0.2],
    ),
    # Contiguous integer ids 0..n-1 and integer classes 1..5: dense tables, int64 labels.
    "tiny_stars": (
        3,
        list(range(30)),
        list(range(40)),
        [1, 2, 3, 4, 5],
        [0.1, 0.15, 0.3, 0.25, 0.2],
    ),
}


def weights(seed: int, n_rows: int, n_cols: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, 1.5, size=(n_rows, n_classes)).astype(np.float32)
    q = rng.normal(0.0, 1.5, size=(n_cols, n_classes)).astype(np.float32)
    return p, q


def folded_model(
    p: np.ndarray,
    q: np.ndarray,
    metadata: dict[str, str] | None,
    *,
    input_name: str = "pairs",
    input_type: int = TensorProto.INT64,
    outputs: tuple[str, ...] = ("logits", "probabilities", "class_index"),
) -> onnx.ModelProto:
    """The folded mfx graph over tables ``p`` and ``q``."""
    n_classes = p.shape[1]
    pairs = input_name
    nodes = []
    if input_type != TensorProto.INT64:
        nodes.append(helper.make_node("Cast", [input_name], ["pairs64"], to=TensorProto.INT64))
        pairs = "pairs64"
    nodes += [
        helper.make_node("Gather", [pairs, "first"], ["row_index"], axis=1),
        helper.make_node("Gather", [pairs, "second"], ["col_index"], axis=1),
        helper.make_node("Gather", ["P", "row_index"], ["row_part"], axis=0),
        helper.make_node("Gather", ["Q", "col_index"], ["col_part"], axis=0),
        helper.make_node("Add", ["row_part", "col_part"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        helper.make_node("ArgMax", ["logits"], ["class_index"], axis=1, keepdims=0),
    ]
    shapes = {
        "logits": (TensorProto.FLOAT, ["batch", n_classes]),
        "probabilities": (TensorProto.FLOAT, ["batch", n_classes]),
        "class_index": (TensorProto.INT64, ["batch"]),
    }
    graph = helper.make_graph(
        nodes,
        "mfx_folded",
        [helper.make_tensor_value_info(input_name, input_type, ["batch", 2])],
        [helper.make_tensor_value_info(name, *shapes[name]) for name in outputs],
        [
            numpy_helper.from_array(p, "P"),
            numpy_helper.from_array(q, "Q"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "first"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "second"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if metadata:
        helper.set_model_props(model, metadata)
    return model


def metadata_for(
    rows: list[Any], cols: list[Any], classes: list[Any], prior: list[float], **overrides: str
) -> dict[str, str]:
    total = float(sum(prior))
    meta = encode_metadata(
        version=FIXTURE_VERSION,
        arch="concat",
        classes=classes,
        rows=rows,
        cols=cols,
        prior=[p / total for p in prior],
        metrics={"train_accuracy": 1.0},
        folded=True,
        precision="fp32",
    )
    meta.update(overrides)
    return meta


def _save(model: onnx.ModelProto, path: Path) -> None:
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _external(tensor: TensorProto, location: str) -> None:
    """Mark ``tensor`` as stored in ``location`` (the bytes are not written anywhere)."""
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key = key
        entry.value = value


def build(out: Path) -> list[Path]:
    """Write every fixture into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(model: onnx.ModelProto, name: str) -> None:
        _save(model, out / name)
        written.append(out / name)

    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (seed, rows, cols, classes, prior) in VALID.items():
        p, q = weights(seed, len(rows), len(cols), len(classes))
        tables[name] = (p, q)
        save(folded_model(p, q, metadata_for(rows, cols, classes, prior)), f"{name}.onnx")
        reference = out / f"{name}.npz"
        np.savez(
            reference,
            P=p,
            Q=q,
            rows=np.asarray(rows),
            cols=np.asarray(cols),
            classes=np.asarray([str(c) for c in classes]),
        )
        written.append(reference)

    _, rows, cols, classes, prior = VALID["tiny_int"]
    p, q = tables["tiny_int"]
    meta = metadata_for(rows, cols, classes, prior)

    # A valid ONNX model that is not an mfx model: no metadata.
    save(folded_model(p, q, None), "not_mfx.onnx")
    # mfx metadata, but a layout version this mfx does not read.
    save(
        folded_model(p, q, metadata_for(rows, cols, classes, prior, **{"mfx.format": "99"})),
        "future_format.onnx",
    )
    # Contract violations in the graph's signature.
    save(folded_model(p, q, meta, input_name="x"), "wrong_input_name.onnx")
    save(folded_model(p, q, meta, input_type=TensorProto.INT32), "wrong_input_type.onnx")
    save(folded_model(p, q, meta, outputs=("logits", "probabilities")), "no_class_index.onnx")
    # Tables that disagree with the metadata: one row short, one row extra.
    save(folded_model(p[:-1], q, meta), "rows_short.onnx")
    save(folded_model(np.vstack([p, p[:1]]), q, meta), "rows_extra.onnx")

    # External data beside the model: legitimate, must load.
    legit = folded_model(p, q, meta)
    blob = bytearray()
    for tensor in legit.graph.initializer:
        if tensor.name in ("P", "Q"):
            data = tensor.raw_data
            offset = len(blob)
            blob += data
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
            entries = (
                ("location", "tiny_ext.weights"),
                ("offset", str(offset)),
                ("length", str(len(data))),
            )
            for key, value in entries:
                entry = tensor.external_data.add()
                entry.key = key
                entry.value = value
    (out / "tiny_ext.weights").write_bytes(bytes(blob))
    written.append(out / "tiny_ext.weights")
    (out / "tiny_ext.onnx").write_bytes(legit.SerializeToString())
    written.append(out / "tiny_ext.onnx")

    # External data that escapes the model's folder: must be refused before onnxruntime opens
    # it. The targets are never written.
    for name, location in (
        ("escape_parent.onnx", "../escape.bin"),
        ("escape_absolute.onnx", "/etc/mfx-escape.bin"),
    ):
        model = folded_model(p, q, meta)
        _external(model.graph.initializer[0], location)
        (out / name).write_bytes(model.SerializeToString())
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: here)")
    args = parser.parse_args(argv)
    for path in build(args.out):
        sys.stdout.write(f"{path.name}: {path.stat().st_size} bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
