"""Command-line entry points: one small module per command, each parses, calls, prints."""

#: Command name -> one-line description, for ``python -m mfx``.
COMMANDS = {
    "mfx-train": "train a classifier on a ratings file (or the built-in dataset) -> mfx-model.pt",
    "mfx-export": "export a checkpoint to one verified, self-contained ONNX file",
    "mfx-predict": "predict labels (or probabilities, or top-k columns) from an .onnx file",
    "mfx-eval": "evaluate an .onnx file or a checkpoint on a test file: figures and plots",
}
