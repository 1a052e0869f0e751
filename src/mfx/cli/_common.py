"""What every command shares: the error boundary and progress display."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mfx.errors import (
    CheckpointError,
    DataError,
    DeviceError,
    MfxError,
    MissingDependencyError,
    ModelFormatError,
    UnknownIdError,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for bad input (data, ids, checkpoints, models, options).
EXIT_BAD_INPUT = 2


class CommandError(click.ClickException):
    """A one-line ``Error: ...`` with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _exit_code(exc: MfxError) -> int:
    if isinstance(exc, (DataError, CheckpointError, ModelFormatError, UnknownIdError, DeviceError)):
        return EXIT_BAD_INPUT
    return 1


def boundary(command: str) -> Callable[[F], F]:
    """Turn mfx's exceptions into one ``Error:`` line and an exit code, never a traceback."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except MissingDependencyError as exc:
                raise CommandError(f"{command} {exc}", 1) from None
            except MfxError as exc:
                raise CommandError(str(exc), _exit_code(exc)) from None
            except FileNotFoundError as exc:
                raise CommandError(f"{exc.filename or exc}: not found", EXIT_BAD_INPUT) from None
            except PermissionError as exc:
                raise CommandError(
                    f"{exc.filename or exc}: permission denied", EXIT_BAD_INPUT
                ) from None

        return run  # type: ignore[return-value]

    return wrap


def import_train(command: str) -> Any:
    """``mfx.train``, or the one-line install hint when torch is missing.

    Before torch loads its OpenMP runtime, idle OpenMP threads are told to sleep rather than
    spin, unless ``OMP_WAIT_POLICY`` is set. On a machine whose cores other work shares, spinning
    threads made a two-thread epoch of the 20M benchmark 6x slower (115.9 s against 18.3 s);
    on an idle machine they were 1.2x faster (12.3 s against 14.9 s): a dedicated machine can
    set ``OMP_WAIT_POLICY=ACTIVE`` (benchmarks/RESULTS.md).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import mfx.train as train_module
    except MissingDependencyError:
        raise CommandError(f"{command} needs PyTorch: pip install 'mfx[train]'", 1) from None
    return train_module


def setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )


class EpochProgress:
    """A one-line bar on a terminal, a few plain lines otherwise, nothing with ``quiet``."""

    def __init__(self, epochs: int, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(1, epochs // 20)

    def __call__(self, report: Any) -> None:
        if self.quiet:
            return
        valid = (
            f"  valid loss {report.valid_loss:.4f}  valid acc {report.valid_accuracy:.4f}"
            if report.valid_loss is not None
            else ""
        )
        phase = "refit " if report.phase == "refit" else ""
        text = (
            f"{phase}epoch {report.epoch:>{len(str(report.epochs))}}/{report.epochs}  "
            f"loss {report.train_loss:.4f}{valid}  {report.seconds:.2f}s"
        )
        if self.tty:
            width = 20
            done = int(width * report.epoch / report.epochs)
            bar = "#" * done + "." * (width - done)
            self.stream.write(f"\r[{bar}] {text}\033[K")
            self.stream.flush()
        elif (
            report.epoch == 1
            or report.epoch % self.every == 0
            or report.epoch == report.epochs
            or report.phase == "refit"
        ):
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
