"""``python -m mfx``: list the commands."""

from __future__ import annotations

import mfx
from mfx.cli import COMMANDS


def main() -> None:
    print(f"mfx {mfx.__version__}: matrix-factorization classifiers, torch to ONNX to the edge\n")
    print("commands (each takes --help):")
    width = max(len(name) for name in COMMANDS)
    for name, summary in COMMANDS.items():
        print(f"  {name:<{width}}  {summary}")


if __name__ == "__main__":
    main()
