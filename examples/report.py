"""The report's experiment, end to end: train, plot, export, evaluate torch vs ONNX.

"Matrix Factorization for Classification: A Neural Network Approach" trains its model (h=1,
c=6, Adam, lr 0.1, 1000 epochs, batch 16, cross-entropy) on an 8x8 matrix of ratings 0..5 and
evaluates it on a new 8x8 matrix (Table 1: 47 of 64 correct, 73%). The report does not publish
its matrices, so they are generated here by :func:`mfx.synthetic.report_matrices` (seed 0): one
planted additive pattern ``2.5 + 1.25 (a_i + b_j)`` and two independent noisy draws of it,
rounded to 0..5, the first for training and the second for testing.

Run it with ``python examples/report.py --out report-out`` (about 10 s). Every step is one of
the mfx commands, printed before it runs, so the same can be done by hand.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mfx.synthetic import report_matrices

REPORT_CORRECT, REPORT_TOTAL = 47, 64


def run(*args: str) -> str:
    """Run one mfx command (as ``python -m``), echo it, and return its standard output."""
    module = {
        "mfx-train": "mfx.cli.train",
        "mfx-export": "mfx.cli.export",
        "mfx-eval": "mfx.cli.eval",
    }[args[0]]
    print("$ " + " ".join(args), flush=True)
    proc = subprocess.run([sys.executable, "-m", module, *args[1:]], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("report-out"), help="output folder")
    parser.add_argument("--epochs", type=int, default=1000, help="1000 is the report's setting")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated matrices")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    train_matrix, test_matrix = report_matrices(seed=args.seed)
    np.savetxt(out / "train.csv", train_matrix, fmt="%d", delimiter=",")
    np.savetxt(out / "test.csv", test_matrix, fmt="%d", delimiter=",")
    print("training matrix (ratings 0..5):\n" + str(train_matrix))
    print("test matrix (a second noisy draw of the same pattern):\n" + str(test_matrix) + "\n")

    checkpoint, onnx_file = out / "report.pt", out / "report.onnx"
    run(
        "mfx-train",
        "--data",
        str(out / "train.csv"),
        "--format",
        "matrix",
        "--preset",
        "report",
        "--epochs",
        str(args.epochs),
        "--seed",
        "0",
        "-o",
        str(checkpoint),
        "--plots",
        str(out),
        "--quiet",
    )
    run("mfx-export", str(onnx_file), "--checkpoint", str(checkpoint))
    torch_text = run(
        "mfx-eval",
        str(checkpoint),
        "--data",
        str(out / "test.csv"),
        "--format",
        "matrix",
        "--json",
        str(out / "eval_torch.json"),
        "--plots",
        str(out),
    )
    run(
        "mfx-eval",
        str(onnx_file),
        "--data",
        str(out / "test.csv"),
        "--format",
        "matrix",
        "--json",
        str(out / "eval_onnx.json"),
    )

    torch_eval = json.loads((out / "eval_torch.json").read_text())
    onnx_eval = json.loads((out / "eval_onnx.json").read_text())
    table = torch_text.split("confusion matrix", 1)[1].splitlines()
    print(
        "\nmfx on the test matrix: confusion matrix"
        + "\n".join(line for line in table if not line.startswith("wrote"))
    )
    correct = int(np.trace(np.asarray(torch_eval["confusion"])))
    print(f"{'':22}{'report (Table 1)':>18}{'mfx (torch)':>14}{'mfx (ONNX)':>14}")
    print(
        f"{'correct of 64':22}{REPORT_CORRECT:>18}{correct:>14}"
        f"{int(np.trace(np.asarray(onnx_eval['confusion']))):>14}"
    )
    print(
        f"{'accuracy':22}{REPORT_CORRECT / REPORT_TOTAL:>18.3f}{torch_eval['accuracy']:>14.3f}"
        f"{onnx_eval['accuracy']:>14.3f}"
    )
    same = {k: torch_eval[k] == onnx_eval[k] for k in ("accuracy", "confusion", "per_class")}
    close = abs(torch_eval["log_loss"] - onnx_eval["log_loss"]) < 1e-5
    print(
        f"torch and ONNX agree: accuracy, confusion and per-class figures identical: "
        f"{all(same.values())}; log-loss within 1e-5: {close}"
    )
    print(f"figures: {out / 'loss.png'}, {out / 'confusion.png'}, {out / 'true_vs_predicted.png'}")
    if not (all(same.values()) and close):
        sys.exit("torch and ONNX evaluations differ")


if __name__ == "__main__":
    main()
