"""``mfx-train``: train a classifier and write a checkpoint."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import click

from mfx.cli._common import CommandError, EpochProgress, boundary, import_train, setup_logging
from mfx.config import ARCH_NAMES, PRESETS, TrainConfig
from mfx.data import FORMATS
from mfx.errors import CheckpointError
from mfx.labels import parse_classes

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Examples:\n\n"
        "  mfx-train                                  # built-in planted dataset\n\n"
        "  mfx-train --data ratings.csv -o model.pt   # MovieLens ratings.csv, raw ids\n\n"
        "  mfx-train --data matrix.csv --preset report --classes 0,1,2,3,4,5"
    ),
)
@click.option(
    "--data", type=click.Path(dir_okay=False), help="Ratings file; omit for the built-in dataset."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Input layout; auto detects triples vs matrix, separator and header.",
)
@click.option(
    "--header/--no-header", default=None, help="Force or deny a header line (default: detect)."
)
@click.option(
    "--test", type=click.Path(dir_okay=False), help="Held-out ratings file used for validation."
)
@click.option(
    "--valid-fraction",
    type=float,
    default=None,
    help=f"Fraction of ratings held out for validation  [default: {_DEFAULTS['valid_fraction']}]",
)
@click.option(
    "--arch",
    type=click.Choice(ARCH_NAMES),
    default=None,
    help=f"Architecture  [default: {_DEFAULTS['arch']}]",
)
@click.option(
    "--dim", type=int, default=None, help=f"Embedding size h  [default: {_DEFAULTS['dim']}]"
)
@click.option(
    "--epochs", type=int, default=None, help=f"Maximum epochs  [default: {_DEFAULTS['epochs']}]"
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Batch size  [default: 4096, or for over a million ratings the power of two that "
    "keeps about 256 steps per epoch, at most 65536]",
)
@click.option(
    "--lr", type=float, default=None, help=f"Adam learning rate  [default: {_DEFAULTS['lr']}]"
)
@click.option("--weight-decay", type=float, default=None, help="Adam weight decay  [default: 0]")
@click.option(
    "--l2",
    type=float,
    default=None,
    help="Per-example L2 on the looked-up factors (product, ordinal)  "
    f"[default: {_DEFAULTS['l2']}]",
)
@click.option(
    "--patience",
    type=int,
    default=None,
    help="Stop after this many epochs without validation improvement; 0 never stops early  "
    f"[default: {_DEFAULTS['patience']}]",
)
@click.option(
    "--refit/--no-refit",
    default=None,
    help="After early stopping, retrain on training + validation data for the best epoch "
    f"count  [default: {'refit' if _DEFAULTS['refit'] else 'no-refit'}]",
)
@click.option(
    "--sparse/--no-sparse",
    default=None,
    help="Sparse (lazy) Adam updates for the embedding tables, or dense Adam  "
    f"[default: {'sparse' if _DEFAULTS['sparse'] else 'no-sparse'}]",
)
@click.option(
    "--fused/--no-fused",
    default=None,
    help="Train the ordinal model with the fused closed-form step (same arithmetic as "
    "autograd + SparseAdam, several times faster); --no-fused runs autograd  "
    f"[default: {'fused' if _DEFAULTS['fused'] else 'no-fused'}]",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same weights)."
)
@click.option("--device", type=str, default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--preset",
    type=click.Choice(["report"]),
    default=None,
    help="report: the report's settings exactly (h=1, c=6, Adam lr 0.1, 1000 epochs, batch 16).",
)
@click.option(
    "--classes",
    "classes_text",
    type=str,
    default=None,
    help="Comma-separated class values in index order, e.g. 0,1,2,3,4,5.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="mfx-model.pt",
    show_default=True,
    help="Checkpoint to write.",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the loss curve (loss.png) into this folder at the end.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Save a resumable checkpoint to -o every N epochs (0: only at the end).",
)
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Continue the interrupted run saved in this checkpoint (same data, same settings); "
    "-o defaults to it.",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel workers on this machine (runs torchrun --nproc-per-node N -m mfx.train).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress, only errors.")
@boundary("mfx-train")
def main(
    data,
    format_,
    header,
    test,
    valid_fraction,
    arch,
    dim,
    epochs,
    batch_size,
    lr,
    weight_decay,
    l2,
    patience,
    refit,
    sparse,
    fused,
    seed,
    device,
    preset,
    classes_text,
    output,
    plots_dir,
    checkpoint_every,
    resume_path,
    nproc,
    quiet,
):
    """Train a matrix-factorization classifier on (row, column, label) ratings.

    Reads the ratings, maps raw ids to indices, holds out a validation split (or uses --test),
    trains with early stopping and writes one checkpoint (-o, default mfx-model.pt) that
    mfx-export turns into an ONNX file.
    """
    train_module = import_train("mfx-train")
    from mfx.train import distributed

    if nproc > 1 and not distributed.launched_by_torchrun():
        target = resume_path if resume_path and output == "mfx-model.pt" else output
        code = _launch_workers(nproc)
        if code != 0:
            kept = (
                f"the last checkpoint {target} is intact; continue with: "
                f"mfx-train --resume {target} --nproc {nproc}"
                if Path(target).exists()
                else "no checkpoint was saved yet"
            )
            raise CommandError(f"training stopped: a worker failed (torchrun exit {code}); {kept}")
        return
    world = distributed.init(train_module.resolve_device(device))
    quiet = quiet or not world.main
    setup_logging(quiet)
    resume = None
    if resume_path:
        saved = train_module.load_resume_state(resume_path)
        resume = saved["resume"]
        config = TrainConfig(**saved["config"])
        run = dict(saved.get("run", {}))
        source = click.get_current_context().get_parameter_source("output")
        if source is not None and source.name == "DEFAULT":
            output = resume_path
    else:
        config = _config(
            preset,
            seed,
            device,
            valid_fraction=valid_fraction,
            arch=arch,
            dim=dim,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            l2=l2,
            patience=patience,
            refit=refit,
            sparse=sparse,
            fused=fused,
        )
        run = {
            "data": str(Path(data).resolve()) if data else None,
            "format": format_,
            "header": header,
            "classes": parse_classes(classes_text) if classes_text else None,
            "test": str(Path(test).resolve()) if test else None,
            "preset": preset,
        }
    if plots_dir:
        from mfx import plots

        plots.require()
    device_used = train_module.resolve_device(config.device)
    started = time.perf_counter()
    train_data, valid_data = train_module.prepare_data(
        run["data"],
        format=run["format"],
        header=run["header"],
        classes=run["classes"],
        test=run["test"],
        valid_fraction=config.valid_fraction,
        seed=config.seed,
        report_classes=run["preset"] == "report",
    )
    if resume is not None:
        _check_same_data(saved, train_data, resume_path)
    say = (lambda *_: None) if quiet else (lambda text: click.echo(text, err=True))
    say(
        f"data: {train_data.source}: {len(train_data)} training ratings"
        + (f", {len(valid_data)} validation" if valid_data is not None else "")
        + f"; {train_data.n_rows} rows x {train_data.n_cols} columns; "
        f"{len(train_data.classes)} classes {train_data.classes.to_list()}"
    )
    say(f"training {config.arch} (h={config.dim}) on {device_used}")
    progress = EpochProgress(config.epochs, quiet)
    saved_epochs: list[int] = []

    def snapshot(state) -> None:
        payload = train_module.snapshot_payload(state, train_data, config, run)
        train_module.save_checkpoint(output, payload)
        saved_epochs.append(int(state.resume["epoch"]))

    try:
        result = train_module.fit(
            train_data,
            valid_data,
            config,
            on_epoch=progress,
            snapshot=snapshot if checkpoint_every and world.main else None,
            snapshot_every=max(1, checkpoint_every),
            resume=resume,
            world=world,
        )
    except RuntimeError as exc:
        if world.size == 1:
            raise
        distributed.quiet_stop()
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no answer"
        kept = f"the last checkpoint {output} is intact; " if Path(output).exists() else ""
        raise CommandError(
            f"worker {world.rank} of {world.size}: another worker stopped ({first}); {kept}"
            f"continue with: mfx-train --resume {output} --nproc {world.size}",
            1,
        ) from None
    finally:
        progress.close()
    if not world.main:
        distributed.shutdown()
        return
    if result.interrupted and saved_epochs:
        # The last snapshot holds the same best model plus the state to go on from.
        click.echo(
            f"interrupted: saved the best model so far (epoch {result.best_epoch}) to {output}; "
            f"continue with: mfx-train --resume {output}",
            err=True,
        )
        return
    train_module.save_checkpoint(output, result, run)
    distributed.shutdown()
    elapsed = time.perf_counter() - started
    metrics = result.metrics
    if result.interrupted:
        click.echo(
            f"interrupted: saved the best model so far (epoch {result.best_epoch}) to {output}",
            err=True,
        )
    valid = (
        f", valid accuracy {metrics['valid_accuracy']:.4f}" if "valid_accuracy" in metrics else ""
    )
    refit_note = (
        f", then refit on training + validation for {result.best_epoch}" if result.refit else ""
    )
    say(
        f"done: {result.epochs_run - (result.best_epoch if result.refit else 0)} epochs "
        f"(best {result.best_epoch}){refit_note} in {elapsed:.1f}s; "
        f"train accuracy {metrics['train_accuracy']:.4f}{valid}"
    )
    say(f"wrote {output}")
    if plots_dir:
        Path(plots_dir).mkdir(parents=True, exist_ok=True)
        say(f"wrote {plots.loss_curve(result.history, Path(plots_dir) / 'loss.png')}")


def _launch_workers(nproc: int) -> int:
    """Run this same command in ``nproc`` workers under torchrun; return its exit code."""
    import subprocess
    import sys

    cleaned, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            cleaned.append(arg)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "mfx.train",
        *cleaned,
    ]
    # torchrun would set 1 thread per worker and print a banner saying so; share the cores
    # out instead (the user's own OMP_NUM_THREADS wins).
    env = dict(os.environ)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // nproc)))
    return subprocess.call(command, env=env)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(preset: str | None, seed: int, device: str, **overrides) -> TrainConfig:
    """The preset's settings, then every option the user gave."""
    settings = dict(PRESETS.get(preset or "", {}))
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("patience") == 0:
        settings["patience"] = None
    try:
        return TrainConfig(seed=seed, device=device, **settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _check_same_data(saved: dict, train_data, path: str) -> None:
    """Resuming on data that maps differently would silently train a different model."""
    rows = saved["rows"].tolist() if hasattr(saved["rows"], "tolist") else list(saved["rows"])
    cols = saved["cols"].tolist() if hasattr(saved["cols"], "tolist") else list(saved["cols"])
    if (
        rows != train_data.row_ids.to_list()
        or cols != train_data.col_ids.to_list()
        or list(saved["classes"]) != train_data.classes.to_list()
    ):
        raise CheckpointError(
            f"{path}: the data no longer gives this run's ids and classes; cannot resume"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
