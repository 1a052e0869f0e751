"""``mfx-eval``: evaluate an exported model or a checkpoint on a test file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mfx._files import atomic_path
from mfx.cli._common import EXIT_BAD_INPUT, CommandError, boundary, setup_logging
from mfx.data import FORMATS
from mfx.evaluation import UNKNOWN_POLICIES, evaluate_model


def check_output_folder(path: str) -> None:
    """Refuse an output whose folder is missing before any work (and any output) is done."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise CommandError(f"{path}: the folder {folder} does not exist", EXIT_BAD_INPUT)


def write_plots(evaluation, folder: Path, history=None) -> list[Path]:
    """The evaluation's pictures (and the loss curve when a history is given) in ``folder``."""
    from mfx import plots

    folder.mkdir(parents=True, exist_ok=True)
    labels = evaluation.classes.to_list()
    written = [
        plots.confusion_heatmap(
            evaluation.confusion,
            labels,
            folder / "confusion.png",
            title=f"confusion matrix, accuracy {evaluation.accuracy:.3f}",
        ),
        plots.true_vs_predicted(
            evaluation.true_values,
            evaluation.predicted_values,
            folder / "true_vs_predicted.png",
            labels,
        ),
    ]
    if history and history.get("train_loss"):
        written.append(plots.loss_curve(history, folder / "loss.png"))
    return written


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("model", type=click.Path(dir_okay=False))
@click.option(
    "--data",
    required=True,
    type=click.Path(dir_okay=False),
    help="Test ratings (row, column, label), any format mfx-train reads.",
)
@click.option("--format", "format_", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--header/--no-header", default=None, help="Force or deny a header line.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Also write the figures as JSON (schema in mfx.evaluation).",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    help="Write confusion.png, true_vs_predicted.png (and loss.png for a checkpoint).",
)
@click.option(
    "--unknown",
    type=click.Choice(UNKNOWN_POLICIES),
    default="error",
    show_default=True,
    help="Test pairs with an id unseen in training: refuse, predict the prior, or drop.",
)
@click.option(
    "--provider",
    default="cpu",
    show_default=True,
    help="onnxruntime provider for an .onnx model: auto, cpu or cuda.",
)
@boundary("mfx-eval")
def main(model, data, format_, header, json_path, plots_dir, unknown, provider):
    """Evaluate MODEL (an .onnx file from mfx-export, or an mfx-model.pt checkpoint) on --data.

    An .onnx model is evaluated through mfx.runtime (no torch needed); a checkpoint through
    torch. Both give the same figures for the same model.
    """
    setup_logging(False)
    if json_path:
        check_output_folder(json_path)
    if plots_dir:
        from mfx import plots

        plots.require()
    evaluation = evaluate_model(
        model, data, format=format_, header=header, unknown=unknown, providers=provider
    )
    click.echo(f"model: {model}\ndata: {data}")
    click.echo(evaluation.format_text())
    if json_path:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n")
        click.echo(f"wrote {json_path}")
    if plots_dir:
        history = None
        if not str(model).lower().endswith(".onnx"):
            from mfx.cli._common import import_train

            history = import_train("mfx-eval").load_checkpoint(model).history
        for path in write_plots(evaluation, Path(plots_dir), history):
            click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
