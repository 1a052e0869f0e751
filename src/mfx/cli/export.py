"""``mfx-export``: turn a checkpoint into one verified, self-contained ONNX file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mfx.cli._common import EXIT_BAD_INPUT, CommandError, boundary, import_train, setup_logging
from mfx.errors import VerificationError
from mfx.labels import parse_classes

if TYPE_CHECKING:  # the command imports mfx.export (and torch) only when it runs
    from mfx.export import ExportReport

#: Mirrors mfx.export.PRECISIONS, so --help and option checks need no torch import.
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CHECKPOINT = "mfx-model.pt"


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if n_bytes >= 1024**power:
            return f"{n_bytes / 1024**power:.1f} {unit}"
    return f"{n_bytes} bytes"  # pragma: no cover - unreachable


def _parse_opset(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"--opset {text!r}: not a whole number", EXIT_BAD_INPUT) from None


def report_lines(report: ExportReport) -> list[str]:
    """The short report printed after an export."""
    form = "folded P[row] + Q[col]" if report.folded else "literal graph"
    size = _size(report.size_bytes)
    if report.external_data is not None:
        size += f" + {_size(report.external_data.stat().st_size)} in {report.external_data.name}"
    parity = report.parity
    lines = [
        f"wrote {report.path} ({size}): {report.arch}, {form}, {report.precision}, "
        f"opset {report.opset}; {report.n_rows:,} rows x {report.n_cols:,} columns, "
        f"{report.n_classes} classes",
        f"parity vs torch on {parity.pairs:,} random pairs (batch "
        f"{', '.join(map(str, parity.batch_sizes))}): max |logits - torch| "
        f"{parity.max_abs_logits:.2e} "
        f"({parity.relative:.2e} of logit scale {parity.logit_scale:.3g}), "
        f"max |probabilities - torch| {parity.max_abs_probabilities:.2e}, "
        f"argmax agreement {parity.agreement:.2%}"
        + (f" ({parity.ties} ties)" if parity.ties and report.precision == "fp32" else ""),
    ]
    figures = report.validation
    if figures is not None:
        lines.append(
            f"validation: {figures.ratings:,} ratings ({figures.source}): accuracy torch "
            f"{figures.torch_accuracy:.4f}, onnx {figures.onnx_accuracy:.4f} "
            f"({figures.change:+.4f}), argmax agreement {figures.agreement:.2%}"
        )
    else:
        lines.append("validation: none (pass --valid-data FILE to measure accuracy)")
    if report.forced:
        lines.append(f"warning: agreement below {report.min_agreement:.0%}, written with --force")
    return lines


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Examples:\n\n"
        "  mfx-export                       # mfx-model.pt -> mfx-model.onnx\n\n"
        "  mfx-export model.onnx --checkpoint ml.pt --precision int8\n\n"
        "  mfx-export report.onnx --state-dict weights.pt --classes 0,1,2,3,4,5"
    ),
)
@click.argument("output", required=False, default="mfx-model.onnx")
@click.option(
    "-c",
    "--checkpoint",
    type=str,
    default=None,
    metavar="PATH",
    help=f"Checkpoint written by mfx-train  [default: {DEFAULT_CHECKPOINT}]",
)
@click.option(
    "--state-dict",
    type=str,
    default=None,
    metavar="PATH",
    help="A bare state_dict of the report's class instead of a checkpoint (needs --classes).",
)
@click.option(
    "--classes",
    "classes_text",
    type=str,
    default=None,
    metavar="LIST",
    help="With --state-dict: class values in index order, e.g. 0,1,2,3,4,5.",
)
@click.option(
    "--fold/--no-fold",
    default=True,
    show_default=True,
    help="Folded P[row] + Q[col] graph where the architecture has one, or the literal graph.",
)
@click.option(
    "--precision",
    type=str,
    default="fp32",
    show_default=True,
    metavar="|".join(PRECISIONS),
    help=f"Weight precision: {', '.join(PRECISIONS)}.",
)
@click.option(
    "--opset", "opset_text", type=str, default=None, metavar="N", help="ONNX opset  [default: 20]"
)
@click.option(
    "--valid-data",
    type=str,
    default="auto",
    show_default=True,
    metavar="PATH",
    help="Labelled ratings to report accuracy on; auto rebuilds the checkpoint's own "
    "validation split when its data is at hand, none skips it.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write an fp16/int8 model even if it agrees with torch on under 99% of pairs.",
)
@click.option("-q", "--quiet", is_flag=True, help="No report, only errors.")
@boundary("mfx-export")
def main(
    output,
    checkpoint,
    state_dict,
    classes_text,
    fold,
    precision,
    opset_text,
    valid_data,
    force,
    quiet,
):
    """Export a checkpoint to OUTPUT (default mfx-model.onnx): one ONNX file, verified.

    The file holds the graph (input pairs int64 [batch, 2]; outputs logits, probabilities,
    class_index) and the metadata a device needs (ids, classes, metrics). Before it appears,
    onnxruntime runs it against the torch model on random pairs at several batch sizes; a
    failed check writes nothing and exits non-zero.
    """
    setup_logging(quiet)
    if precision not in PRECISIONS:
        raise CommandError(
            f"--precision {precision}: choose {', '.join(PRECISIONS)}", EXIT_BAD_INPUT
        )
    opset = _parse_opset(opset_text)
    if state_dict is not None and checkpoint is not None:
        raise CommandError("give --checkpoint or --state-dict, not both", EXIT_BAD_INPUT)
    if state_dict is not None and classes_text is None:
        raise CommandError(
            "--state-dict needs --classes, the class values in index order (e.g. 0,1,2,3,4,5)",
            EXIT_BAD_INPUT,
        )
    if classes_text is not None and state_dict is None:
        raise CommandError("--classes only applies with --state-dict", EXIT_BAD_INPUT)
    import_train("mfx-export")
    import mfx.export as export

    if opset is not None and not export.MIN_OPSET <= opset <= export.graphs.highest_opset():
        raise CommandError(
            f"--opset {opset}: choose {export.MIN_OPSET}..{export.graphs.highest_opset()}",
            EXIT_BAD_INPUT,
        )
    try:
        export.check_output(output)
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename}: {exc.strerror}", EXIT_BAD_INPUT) from None
    if state_dict is not None:
        source = export.checkpoint_from_state_dict(state_dict, parse_classes(classes_text))
    else:
        source = checkpoint or DEFAULT_CHECKPOINT
    validation = None if valid_data == "none" else valid_data
    try:
        report = export.export_onnx(
            source,
            output,
            fold=fold,
            precision=precision,
            opset=opset,
            force=force,
            validation=validation,
        )
    except VerificationError as exc:
        raise CommandError(f"verification failed: {exc}; nothing written", 1) from None
    except OSError as exc:  # the output folder vanished or filled up while exporting
        raise CommandError(
            f"cannot write {output}: {exc.strerror or exc}", EXIT_BAD_INPUT
        ) from None
    if not quiet:
        for line in report_lines(report):
            click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    main()
