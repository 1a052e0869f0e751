"""Start-up time and memory of the runtime against torch, each in a fresh interpreter.

    python benchmarks/footprint.py [--model M.onnx | --data ratings.csv] [--repeats 7]
                                   [--venvs] [--wheel-dir DIR] [--json PATH]

Each row runs ``--repeats`` fresh ``python`` processes and prints the median (and the fastest)
of: the wall time of the whole command (interpreter start-up included), the time of the import
statement alone, and the resident memory at the end (VmRSS) and at its peak (VmHWM), from
``/proc/self/status``:

* ``python -c "import mfx.runtime"`` and ``python -c "import torch"``;
* numpy, onnxruntime and a bare session on the model's bytes, run on one pair: what mfx's
  own figure below cannot go under;
* ``import mfx.runtime``, ``Predictor(model)`` and one ``predict`` of a single pair, on an
  ml-latest-small model (``--model``, or the built-in model of ``benchmarks/inference.py``:
  610 x 9,724, 10 classes, concat h=32, random weights, with ``--data``'s ids if given);
* the same with 65,536 pairs predicted from the class-index table (``class_table="eager"``).

``--venvs`` also builds two fresh virtual environments in a temporary folder and prints their
installed size (site-packages, MB): the runtime alone (``pip install <repo>``) and the training
one (``pip install torch==2.13.0`` then ``pip install '<repo>[train]'``). pip uses its usual
index and ``PIP_FIND_LINKS``; this takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

_PROBE = """
import time
_started = time.perf_counter()
{body}
_elapsed = time.perf_counter() - _started
status = dict(
    line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "VmHWM"))
)
print("FOOTPRINT", _elapsed, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]))
"""


def _run(body: str, python: str = sys.executable) -> tuple[float, float, int, int]:
    """(wall s, in-process s, VmRSS KiB, VmHWM KiB) of one fresh interpreter running ``body``."""
    script = _PROBE.format(body=textwrap.dedent(body).strip())
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, check=False, timeout=600
    )
    wall = time.perf_counter() - started
    line = [x for x in done.stdout.splitlines() if x.startswith("FOOTPRINT")]
    if done.returncode != 0 or not line:
        raise RuntimeError(f"probe failed: {done.stderr.strip()[-500:]}")
    _, inner, rss, hwm = line[-1].split()
    return wall, float(inner), int(rss), int(hwm)


def _measure(name: str, body: str, repeats: int) -> dict[str, Any]:
    runs = [_run(body) for _ in range(repeats)]
    walls, inners, rss, hwm = (list(column) for column in zip(*runs))
    return {
        "name": name,
        "wall_s": statistics.median(walls),
        "wall_s_min": min(walls),
        "inner_s": statistics.median(inners),
        "inner_s_min": min(inners),
        "rss_mb": statistics.median(rss) / 1024,
        "peak_mb": statistics.median(hwm) / 1024,
        "repeats": repeats,
    }


def _builtin_model(folder: Path, data: str | None) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from inference import _builtin_checkpoint

    from mfx.export import export_onnx

    path = folder / "ml-latest-small.onnx"
    export_onnx(_builtin_checkpoint(data, 0, 32), path, validation=None)
    return path


def _site_packages_mb(root: Path) -> float:
    total = 0
    for folder in root.glob("lib/python*/site-packages"):
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    total += path.stat().st_size
    return total / 1e6


def _venv_sizes(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plans = {
        "runtime": [[str(REPO)]],
        "training": [["torch==2.13.0"], [f"{REPO}[train]"]],
    }
    for name, installs in plans.items():
        root = folder / name
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        python = str(root / "bin" / "python")
        base = _site_packages_mb(root)
        started = time.perf_counter()
        for packages in installs:
            subprocess.run(
                [python, "-m", "pip", "install", "-q", "--no-cache-dir", *packages], check=True
            )
        frozen = subprocess.run(
            [python, "-m", "pip", "list", "--format=freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        out[name] = {
            "site_packages_mb": _site_packages_mb(root),
            "empty_venv_mb": base,
            "install_s": time.perf_counter() - started,
            "packages": frozen,
        }
        if name == "runtime":
            check = subprocess.run(
                [python, "-c", "import mfx.runtime, sys; print('torch' in sys.modules)"],
                capture_output=True,
                text=True,
                check=False,
            )
            out[name]["imports_ok"] = check.returncode == 0 and check.stdout.strip() == "False"
        shutil.rmtree(root)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="an ml-latest-small .onnx file")
    source.add_argument("--data", help="ratings file whose ids the built-in model takes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--venvs", action="store_true", help="also measure installed sizes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or _builtin_model(folder, args.data)
        rows = []
        probes = {
            "python -c pass": "pass",
            "import mfx.runtime": "import mfx.runtime",
            "import torch": "import torch",
            "bare onnxruntime session + run 1 pair": f"""
                import numpy as np
                import onnxruntime as ort
                with open({str(model)!r}, "rb") as file:
                    s = ort.InferenceSession(file.read(), providers=["CPUExecutionProvider"])
                s.run(["class_index"], {{"pairs": np.zeros((1, 2), dtype=np.int64)}})
            """,
            "import mfx.runtime + load + predict 1 pair": f"""
                import mfx.runtime
                p = mfx.runtime.Predictor({str(model)!r})
                p.predict(p.row_ids.ids[0].item(), p.col_ids.ids[0].item())
            """,
            "... + class table + predict 65,536 pairs": f"""
                import mfx.runtime
                import numpy as np
                p = mfx.runtime.Predictor({str(model)!r}, class_table="eager")
                rng = np.random.default_rng(0)
                p.predict(rng.integers(p.n_rows, size=65536), rng.integers(p.n_cols, size=65536),
                          index=True)
            """,
        }
        for name, body in probes.items():
            sys.stderr.write(f"  {name}\n")
            rows.append(_measure(name, body, args.repeats))
        sizes = _venv_sizes(folder) if args.venvs else None
        file_kib = model.stat().st_size / 1024

    out = sys.stdout
    out.write(
        f"model: {args.model or 'built-in ml-latest-small shape'} ({file_kib:.0f} KiB); "
        f"python {sys.version.split()[0]}; {os.cpu_count()} cores; median (min) of "
        f"{args.repeats} fresh processes\n\n"
    )
    head = f"{'':<46} {'command wall s':>16} {'statement s':>14} {'RSS MB':>8} {'peak MB':>8}"
    out.write(head + "\n" + "-" * len(head) + "\n")
    for row in rows:
        out.write(
            f"{row['name']:<46} {row['wall_s']:>8.3f} ({row['wall_s_min']:.3f}) "
            f"{row['inner_s']:>6.3f} ({row['inner_s_min']:.3f}) {row['rss_mb']:>8.1f} "
            f"{row['peak_mb']:>8.1f}\n"
        )
    if sizes:
        out.write("\ninstalled size (site-packages of a fresh venv)\n")
        for name, found in sizes.items():
            out.write(
                f"  {name:<10} {found['site_packages_mb']:>8.1f} MB  "
                f"(empty venv {found['empty_venv_mb']:.1f} MB; install {found['install_s']:.0f} s; "
                f"{len(found['packages'])} packages)\n"
            )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "venvs": sizes}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
