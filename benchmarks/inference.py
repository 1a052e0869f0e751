"""Inference throughput and latency of every way to answer (row, col) -> class, in one run.

    python benchmarks/inference.py [--model M.onnx | --checkpoint C.pt] [--data ratings.csv]
        [--batches 1,64,4096,65536,1048576] [--calls 10000] [--rounds 5] [--seconds 0.2]
        [--threads N] [--seed 0] [--json results.json]

Without ``--model`` or ``--checkpoint`` the model is built here: ml-latest-small's shape
(610 rows x 9,724 columns, the 10 half-star classes), the report's ``concat`` architecture with
h=32 and random weights; its ids are ml-latest-small's own with ``--data ratings.csv``, else
users 1..610 and 9,724 movie ids spread over 1..193,609 like the real ones. From a checkpoint
(built-in or ``--checkpoint``) it exports the default (folded) form at fp32, fp16 and int8, the
literal form, and a copy with string ids, then measures on the same random pairs:

* torch eager on the checkpoint (argmax of the module's logits);
* bare onnxruntime sessions on each export, ``run(['class_index'])`` (and ``run(None)``);
* a plain numpy reference on the folded tables: ``argmax(P[rows] + Q[cols])``;
* ``Predictor.predict`` with indices, integer raw ids and string raw ids, once answered from
  the class-index table (``class_table="eager"``) and once by the graph (``"off"``);
* the memory floor: ``np.add(rows, cols)``, which only reads the pairs and writes one int64.

Batch 1 is timed over ``--calls`` calls per variant (median and 99th percentile; the
Predictor is called with two Python ints, as one pair usually arrives); larger batches are
timed in ``--rounds`` rounds that visit every variant in turn (so a burst of load elsewhere
slows all alike), each variant running for about ``--seconds`` per round; figures are medians.
For each variant the script prints the bytes a pair must move (inputs read, table rows read,
outputs written) and the achieved GB/s, against a 256 MiB copy's bandwidth and the floor.
With ``--model`` only that file is measured (with the numpy reference when it is folded fp32).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mfx.runtime import Predictor

ML_ROWS, ML_COLS, ML_MAX_MOVIE = 610, 9_724, 193_609
HALF_STARS = [0.5 * (k + 1) for k in range(10)]
DEFAULT_BATCHES = (1, 64, 4_096, 65_536, 1_048_576)


@dataclass
class Pairs:
    """One batch of the shared random pairs, in every form a variant takes."""

    rows: np.ndarray
    cols: np.ndarray
    pairs: np.ndarray
    raw_rows: np.ndarray | None
    raw_cols: np.ndarray | None
    str_rows: np.ndarray | None
    str_cols: np.ndarray | None


@dataclass
class Variant:
    """A way of answering a batch: ``make(batch) -> call`` and the bytes each pair moves."""

    name: str
    make: Callable[[Pairs], Callable[[], object]]
    inputs: int
    table: int
    outputs: int
    group: str = ""
    times: dict[int, list[float]] = field(default_factory=dict)

    @property
    def bytes_per_pair(self) -> int:
        return self.inputs + self.table + self.outputs


def _machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
    }


def _copy_bandwidth(megabytes: int = 256) -> float:
    """GB/s of a large array copy (bytes read plus bytes written)."""
    source = np.ones(megabytes << 17, dtype=np.float64)
    target = np.empty_like(source)
    np.copyto(target, source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


# -- the model ---------------------------------------------------------------------------------


def _ml_ids(data: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if data:
        from mfx.data import read_ratings
        from mfx.ids import IdMap

        raw = read_ratings(data)
        return IdMap.fit(raw.rows, "row")[0].ids, IdMap.fit(raw.cols, "column")[0].ids
    rng = np.random.default_rng(seed + 1)
    middle = rng.choice(np.arange(2, ML_MAX_MOVIE), ML_COLS - 2, replace=False)
    movies = np.sort(np.concatenate([[1, ML_MAX_MOVIE], middle])).astype(np.int64)
    return np.arange(1, ML_ROWS + 1, dtype=np.int64), movies


def _builtin_checkpoint(data: str | None, seed: int, dim: int, arch: str = "concat") -> Any:
    import torch

    from mfx.ids import IdMap
    from mfx.labels import Classes
    from mfx.train import Checkpoint
    from mfx.train.models import build_model

    rows, cols = _ml_ids(data, seed)
    torch.manual_seed(seed)
    model = build_model(arch, rows.size, cols.size, dim, len(HALF_STARS)).eval()
    if arch != "concat":  # their initialisation leaves biases at zero: make every term count
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.normal_(0.0, 0.5)
    return Checkpoint(
        model=model, arch=arch, classes=Classes.from_list(HALF_STARS),
        row_ids=IdMap(rows, "row"), col_ids=IdMap(cols, "column"), config={"dim": dim},
        history={}, metrics={}, prior=[1.0 / len(HALF_STARS)] * len(HALF_STARS),
        source="<built-in, random weights>",
    )


def _string_ids(checkpoint: Any) -> Any:
    """The checkpoint with zero-padded text ids, whose sorted order is the integers' order."""
    from mfx.ids import IdMap

    def text(ids: Any, prefix: str, axis: str) -> IdMap:
        values = ids.ids
        width = len(str(int(values.max())))
        return IdMap(np.array([f"{prefix}{int(v):0{width}d}" for v in values]), axis)

    return dataclasses.replace(
        checkpoint,
        row_ids=text(checkpoint.row_ids, "user", "row"),
        col_ids=text(checkpoint.col_ids, "movie", "column"),
    )


def _folded_tables(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """P and Q of a folded fp32 file (read with the onnx package, when installed), else None."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None

    model = onnx.load(str(path))
    found = {t.name: t for t in model.graph.initializer}
    if "row_logits" not in found or "col_logits" not in found:
        return None
    return numpy_helper.to_array(found["row_logits"]), numpy_helper.to_array(found["col_logits"])


# -- variants ----------------------------------------------------------------------------------


def _session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _session_variant(name: str, path: Path, threads: int | None, table: int, everything: bool,
                     group: str) -> Variant:
    session = _session(path, threads)
    names = None if everything else ["class_index"]
    n_classes = session.get_outputs()[0].shape[1]
    outputs = 8 + (8 * n_classes if everything else 0)

    def make(batch: Pairs) -> Callable[[], object]:
        feed = {"pairs": batch.pairs}
        return lambda: session.run(names, feed)

    return Variant(name, make, 16, table, outputs, group)


def _predictor_variants(
    path: Path, threads: int | None, kind: str, group: str, row_bytes: int
) -> list[Variant]:
    out = []
    for mode in ("eager", "off"):
        predictor = Predictor(path, providers="cpu", threads=threads, class_table=mode)
        if mode == "eager" and predictor.class_table is None:
            continue
        source = "table" if mode == "eager" else "graph"
        table = 1 if mode == "eager" else 0

        if kind == "index":
            def make(batch: Pairs, p: Predictor = predictor) -> Callable[[], object]:
                if batch.rows.size == 1:
                    r, c = int(batch.rows[0]), int(batch.cols[0])
                    return lambda: p.predict(r, c, index=True)
                return lambda: p.predict(batch.rows, batch.cols, index=True)
            inputs = 16
        elif kind == "int":
            def make(batch: Pairs, p: Predictor = predictor) -> Callable[[], object]:
                if batch.rows.size == 1:
                    r, c = int(batch.raw_rows[0]), int(batch.raw_cols[0])
                    return lambda: p.predict(r, c)
                return lambda: p.predict(batch.raw_rows, batch.raw_cols)
            inputs = 16
            table += 8  # the id -> index (or offset) entry of the sparse axis
        else:
            def make(batch: Pairs, p: Predictor = predictor) -> Callable[[], object]:
                if batch.rows.size == 1:
                    r, c = str(batch.str_rows[0]), str(batch.str_cols[0])
                    return lambda: p.predict(r, c)
                return lambda: p.predict(batch.str_rows, batch.str_cols)
            inputs = 0  # set from the arrays' item sizes below
        if mode == "off":
            table += row_bytes
        label = {"index": "indices", "int": "int ids", "str": "str ids"}[kind]
        out.append(Variant(f"Predictor.predict, {label}, {source}", make, inputs, table, 8, group))
    return out


def _numpy_variant(p: np.ndarray, q: np.ndarray) -> Variant:
    def make(batch: Pairs) -> Callable[[], object]:
        rows, cols = batch.rows, batch.cols
        return lambda: np.argmax(p[rows] + q[cols], axis=1)

    return Variant("numpy: argmax(P[rows] + Q[cols])", make, 16, 2 * p.itemsize * p.shape[1], 8,
                   "reference")


def _torch_variant(checkpoint: Any, threads: int | None) -> Variant:
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = checkpoint.model.eval()
    dim = int(model.U.weight.shape[1]) if hasattr(model, "U") else 0

    def make(batch: Pairs) -> Callable[[], object]:
        pairs = torch.from_numpy(batch.pairs)

        def call() -> object:
            with torch.inference_mode():
                return torch.argmax(model(pairs), dim=1)

        return call

    return Variant("torch eager (checkpoint)", make, 16, 2 * 4 * dim, 8, "reference")


def _floor_variant() -> Variant:
    def make(batch: Pairs) -> Callable[[], object]:
        rows, cols = batch.rows, batch.cols
        return lambda: np.add(rows, cols)

    return Variant("floor: np.add(rows, cols)", make, 16, 0, 8, "reference")


# -- timing ------------------------------------------------------------------------------------


def _time_calls(call: Callable[[], object], count: int) -> list[float]:
    clock = time.perf_counter
    out = []
    for _ in range(count):
        start = clock()
        call()
        out.append(clock() - start)
    return out


def _measure(variants: list[Variant], batches: list[Pairs], args: argparse.Namespace) -> None:
    for batch in batches:
        size = batch.rows.size
        calls = []
        for variant in variants:
            try:
                call = variant.make(batch)
            except (AttributeError, TypeError):
                continue
            started = time.perf_counter()
            call()  # warm-up: allocations, first-run kernel choices
            first = time.perf_counter() - started
            calls.append((variant, call, first))
        for variant, _, _ in calls:
            variant.times[size] = []
        if size == 1:
            per_round = max(1, args.calls // args.rounds)
            for _variant, call, _ in calls:
                _time_calls(call, min(1000, per_round))
            for _ in range(args.rounds):
                for variant, call, _ in calls:
                    variant.times[size] += _time_calls(call, per_round)
        else:
            for _ in range(args.rounds):
                for variant, call, first in calls:
                    count = int(min(200, max(1, args.seconds / max(first, 1e-7))))
                    variant.times[size] += _time_calls(call, count)
        sys.stderr.write(f"  batch {size:,} measured\n")


def _summary(variants: list[Variant], sizes: list[int], copy_gbs: float) -> dict[str, Any]:
    floor = next((v for v in variants if v.name.startswith("floor")), None)
    table: dict[str, Any] = {}
    for size in sizes:
        rows = {}
        floor_rate = None
        if floor is not None and floor.times.get(size):
            floor_rate = size / statistics.median(floor.times[size])
        for variant in variants:
            times = variant.times.get(size)
            if not times:
                continue
            ordered = sorted(times)
            median = statistics.median(ordered)
            rate = size / median
            entry = {
                "pairs_per_s": rate,
                "median_s": median,
                "calls": len(times),
                "bytes_per_pair": variant.bytes_per_pair,
                "gb_per_s": rate * variant.bytes_per_pair / 1e9,
                "of_copy_bandwidth": rate * variant.bytes_per_pair / 1e9 / copy_gbs,
            }
            if size == 1:
                entry["p99_s"] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            if floor_rate:
                entry["floor_over_this"] = floor_rate / rate
            rows[variant.name] = entry
        table[str(size)] = rows
    return table


def _ratio(results: dict[str, Any], size: int, slow: str, fast: str) -> float | None:
    """How many times faster ``fast`` ran than ``slow`` at batch ``size`` (same run)."""
    found = results.get(str(size), {})
    if slow not in found or fast not in found:
        return None
    return found[fast]["pairs_per_s"] / found[slow]["pairs_per_s"]


def _targets(results: dict[str, Any], sizes: list[int]) -> list[tuple[str, float | None, str]]:
    index_table = "Predictor.predict, indices, table"
    index_graph = "Predictor.predict, indices, graph"
    best_index = index_table if any(index_table in results[str(s)] for s in sizes) else index_graph
    out = []
    for size in (65_536, 1_048_576):
        if size not in sizes:
            continue
        for reference in ("numpy: argmax(P[rows] + Q[cols])", "torch eager (checkpoint)"):
            value = _ratio(results, size, reference, best_index)
            out.append((f"{best_index} vs {reference} @ {size:,}", value, ">= 3x"))
        for kind in ("int ids", "str ids"):
            raw = best_index.replace("indices", kind)
            value = _ratio(results, size, raw, best_index)
            goal = "<= 1.30x" if kind == "int ids" else "(measure)"
            out.append((f"{raw}: time over index input @ {size:,}", value, goal))
        for name in (best_index, index_graph):
            found = results.get(str(size), {}).get(name)
            if found and "floor_over_this" in found:
                out.append((f"memory floor / {name} @ {size:,}", found["floor_over_this"],
                            "aim <= 20x"))
    if 1 in sizes:
        one = results["1"]
        bare = one.get("onnxruntime default export: run(class_index)")
        for name in (index_table, index_graph, "Predictor.predict, int ids, table",
                     "Predictor.predict, int ids, graph"):
            if name in one and bare:
                out.append((f"{name} @ 1: median over bare session's",
                            one[name]["median_s"] / bare["median_s"], "<= 2x"))
                out.append((f"{name} @ 1: median (us)", one[name]["median_s"] * 1e6, "< 15"))
    return out


def _print(variants: list[Variant], results: dict[str, Any], sizes: list[int],
           copy_gbs: float, out: Any) -> None:
    for size in sizes:
        rows = results.get(str(size), {})
        if not rows:
            continue
        out.write(f"\nbatch {size:,}\n")
        if size == 1:
            head = (f"  {'variant':<52} {'median us':>10} {'p99 us':>9} {'pairs/s':>12} "
                    f"{'B/pair':>7} {'GB/s':>7}")
        else:
            head = (f"  {'variant':<52} {'pairs/s':>14} {'B/pair':>7} {'GB/s':>7} "
                    f"{'% copy':>7} {'floor/x':>8}")
        out.write(head + "\n  " + "-" * (len(head) - 2) + "\n")
        for variant in variants:
            entry = rows.get(variant.name)
            if entry is None:
                continue
            if size == 1:
                out.write(
                    f"  {variant.name:<52} {entry['median_s'] * 1e6:>10.2f} "
                    f"{entry['p99_s'] * 1e6:>9.2f} {entry['pairs_per_s']:>12,.0f} "
                    f"{entry['bytes_per_pair']:>7} {entry['gb_per_s']:>7.3f}\n"
                )
            else:
                out.write(
                    f"  {variant.name:<52} {entry['pairs_per_s']:>14,.0f} "
                    f"{entry['bytes_per_pair']:>7} {entry['gb_per_s']:>7.2f} "
                    f"{100 * entry['of_copy_bandwidth']:>6.1f}% "
                    f"{entry.get('floor_over_this', float('nan')):>7.1f}x\n"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="measure this ONNX file only")
    source.add_argument("--checkpoint", type=Path, help="export every form from this checkpoint")
    parser.add_argument("--data", help="ratings file whose ids the built-in model takes")
    parser.add_argument("--dim", type=int, default=32, help="h of the built-in model")
    parser.add_argument("--arch", default="concat", help="architecture of the built-in model")
    parser.add_argument("--batches", default=",".join(str(b) for b in DEFAULT_BATCHES))
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls at batch 1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.2, help="per variant and round")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for onnxruntime and torch (default: theirs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated words; skip variants "
                        "whose name contains one (e.g. torch,literal)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    sizes = [int(b) for b in args.batches.split(",")]
    skip = [word for word in args.skip.split(",") if word]

    variants: list[Variant] = []
    described: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        files: dict[str, Path] = {}
        checkpoint = None
        if args.model is not None:
            files["default"] = args.model
        else:
            from mfx.export import export_onnx
            from mfx.train import load_checkpoint

            if args.checkpoint is not None:
                checkpoint = load_checkpoint(args.checkpoint)
            else:
                checkpoint = _builtin_checkpoint(args.data, args.seed, args.dim, args.arch)
            sys.stderr.write("exporting the default, literal, fp16, int8 and string-id forms\n")
            from mfx.export import FOLDED_FORMS

            forms = {
                "default": dict(),
                "literal": dict(fold=False),
                "fp16": dict(precision="fp16", force=True),
                "int8": dict(precision="int8", force=True),
            }
            if checkpoint.arch not in FOLDED_FORMS:
                del forms["literal"]  # the default export is the literal one already
            for name, options in forms.items():
                files[name] = Path(folder) / f"{name}.onnx"
                export_onnx(checkpoint, files[name], validation=None, **options)
            if checkpoint.row_ids.kind == "int" and checkpoint.col_ids.kind == "int":
                files["str"] = Path(folder) / "str.onnx"
                export_onnx(_string_ids(checkpoint), files["str"], validation=None)
        probe = Predictor(files["default"], providers="cpu", class_table="off")
        info = probe.metadata
        n_classes = len(info.classes)
        folded = info.folded
        described = {
            "source": str(args.model or args.checkpoint or checkpoint.source),
            "arch": info.arch, "n_rows": probe.n_rows, "n_cols": probe.n_cols,
            "classes": n_classes, "folded": folded, "precision": info.precision,
            "row_ids": info.row_ids.kind, "col_ids": info.col_ids.kind,
            "file_bytes": files["default"].stat().st_size,
        }
        dim = described_dim = None
        if checkpoint is not None:
            dim = described_dim = int(checkpoint.config.get("dim", 0)) or None
            described["dim"] = described_dim
            variants.append(_torch_variant(checkpoint, args.threads))
        tables = _folded_tables(files["default"]) if folded else None
        if tables is not None:
            variants.append(_numpy_variant(*tables))
        row_bytes = 2 * 4 * n_classes if folded else 2 * 4 * (dim or 0)
        if "literal" in files:
            variants.append(_session_variant("onnxruntime literal export: run(class_index)",
                                             files["literal"], args.threads, 2 * 4 * (dim or 0),
                                             False, "onnxruntime"))
        variants.append(_session_variant("onnxruntime default export: run(class_index)",
                                         files["default"], args.threads, row_bytes, False,
                                         "onnxruntime"))
        variants.append(_session_variant("onnxruntime default export: run(None)",
                                         files["default"], args.threads, row_bytes, True,
                                         "onnxruntime"))
        if "fp16" in files:
            variants.append(_session_variant("onnxruntime fp16 export: run(class_index)",
                                             files["fp16"], args.threads, 2 * 2 * n_classes,
                                             False, "onnxruntime"))
            variants.append(_session_variant("onnxruntime int8 export: run(class_index)",
                                             files["int8"], args.threads, 2 * (n_classes + 4),
                                             False, "onnxruntime"))
        variants += _predictor_variants(
            files["default"], args.threads, "index", "Predictor", row_bytes
        )
        id_kind = info.row_ids.kind if info.row_ids.kind == info.col_ids.kind else "mixed"
        if id_kind == "int":
            variants += _predictor_variants(
                files["default"], args.threads, "int", "Predictor", row_bytes
            )
        str_file = files.get("str", files["default"] if id_kind == "str" else None)
        if str_file is not None:
            variants += _predictor_variants(str_file, args.threads, "str", "Predictor", row_bytes)
        variants.append(_floor_variant())
        variants = [v for v in variants if not any(word in v.name for word in skip)]

        rng = np.random.default_rng(args.seed)
        most = max(sizes)
        rows = rng.integers(0, probe.n_rows, most)
        cols = rng.integers(0, probe.n_cols, most)
        pairs = np.stack([rows, cols], axis=1).astype(np.int64)
        raw_rows = info.row_ids.ids[rows] if info.row_ids.kind == "int" else None
        raw_cols = info.col_ids.ids[cols] if info.col_ids.kind == "int" else None
        str_rows = str_cols = None
        if str_file is not None:
            text = Predictor(str_file, providers="cpu", class_table="off").metadata
            str_rows, str_cols = text.row_ids.ids[rows], text.col_ids.ids[cols]
            for variant in variants:
                if "str ids" in variant.name:
                    variant.inputs = str_rows.itemsize + str_cols.itemsize
        batches = [
            Pairs(rows[:b], cols[:b], np.ascontiguousarray(pairs[:b]),
                  None if raw_rows is None else raw_rows[:b],
                  None if raw_cols is None else raw_cols[:b],
                  None if str_rows is None else str_rows[:b],
                  None if str_cols is None else str_cols[:b])
            for b in sizes
        ]
        copy_gbs = _copy_bandwidth()
        machine = _machine()
        out = sys.stdout
        out.write(
            f"{described['source']}: {described['arch']}, {probe.n_rows:,} rows x "
            f"{probe.n_cols:,} columns, {n_classes} classes"
            f"{f', h={described_dim}' if described_dim else ''}, "
            f"{'folded' if folded else 'literal'} {info.precision}, "
            f"{described['file_bytes'] / 1024:.0f} KiB\n"
            f"{machine['cpu']}, {machine['cores']} cores; onnxruntime {ort.__version__}, "
            f"numpy {np.__version__}; threads {args.threads or 'default'}; "
            f"{machine['date']}\n"
            f"copy bandwidth (256 MiB, read + write): {copy_gbs:.1f} GB/s; "
            f"B/pair = inputs read + table rows read + outputs written\n"
        )
        sys.stderr.write("measuring\n")
        _measure(variants, batches, args)
    results = _summary(variants, sizes, copy_gbs)
    _print(variants, results, sizes, copy_gbs, out)
    targets = _targets(results, sizes)
    out.write("\ntargets (ratios from this run)\n")
    for name, value, goal in targets:
        shown = "-" if value is None else f"{value:.2f}"
        out.write(f"  {name:<88} {shown:>8}  (target {goal})\n")
    if args.json:
        document = {
            "machine": machine, "model": described, "copy_gb_per_s": copy_gbs,
            "threads": args.threads, "rounds": args.rounds, "calls_at_batch_1": args.calls,
            "results": results,
            "targets": [{"name": n, "value": v, "target": g} for n, v, g in targets],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
