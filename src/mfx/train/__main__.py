"""``python -m mfx.train``: the mfx-train command (what torchrun runs in each worker)."""

from mfx.cli.train import main

if __name__ == "__main__":
    main(prog_name="python -m mfx.train")
