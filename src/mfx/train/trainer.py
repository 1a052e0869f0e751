"""The trainer: data in, a fitted model and its history out.

:func:`train` is what ``mfx-train`` calls: it reads the data (or builds the default dataset),
splits off validation, and runs :func:`fit`, which owns the optimisation loop, early stopping
on the validation loss (restoring the best weights), and Ctrl-C handling.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mfx.config import PRESETS, REPORT_CLASSES, TrainConfig
from mfx.data import Ratings, RawRatings, read_ratings
from mfx.errors import DeviceError
from mfx.synthetic import planted_ratings
from mfx.train import fused as fused_step
from mfx.train._malloc import freed_memory_kept
from mfx.train.distributed import GradientSync, World, shard
from mfx.train.models import build_model

log = logging.getLogger(__name__)


@dataclass
class EpochReport:
    """What :func:`fit` tells its ``on_epoch`` callback after each epoch."""

    epoch: int
    epochs: int
    train_loss: float
    valid_loss: float | None
    valid_accuracy: float | None
    seconds: float
    best: bool
    phase: str = "train"
    #: The part of ``seconds`` spent in training steps (the rest is validation).
    train_seconds: float | None = None


@dataclass
class TrainResult:
    """A fitted model with everything a checkpoint records."""

    model: nn.Module
    config: TrainConfig
    train_data: Ratings
    valid_data: Ratings | None
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    interrupted: bool
    device: str
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""
    refit: bool = False


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when torch has it; ``cuda`` without CUDA is a clear error."""
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"--device {name}: CUDA is not available to this torch ({torch.__version__}); "
            "use --device cpu or auto"
        )
    return torch.device(name)


def _tensors(data: Ratings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = torch.from_numpy(np.stack([data.rows, data.cols], axis=1)).to(device)
    return pairs, torch.from_numpy(data.labels).to(device)


@torch.no_grad()
def evaluate(
    model: nn.Module, pairs: torch.Tensor, labels: torch.Tensor, batch: int = 1 << 16
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on the given pairs."""
    was_training = model.training
    model.eval()
    total_loss, hits = 0.0, 0
    for start in range(0, pairs.shape[0], batch):
        logits = model(pairs[start : start + batch])
        target = labels[start : start + batch]
        total_loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        hits += int((logits.argmax(dim=1) == target).sum())
    model.train(was_training)
    n = max(1, pairs.shape[0])
    return total_loss / n, hits / n


def fit(
    train_data: Ratings,
    valid_data: Ratings | None,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
    *,
    snapshot: Callable[[Snapshot], None] | None = None,
    snapshot_every: int = 1,
    resume: dict[str, Any] | None = None,
    world: World | None = None,
) -> TrainResult:
    """Train ``config.arch`` on ``train_data``; early-stop on ``valid_data`` when given.

    Same data, config and seed give bit-identical weights. Ctrl-C stops after the current batch
    and returns the best model so far with ``interrupted=True``.

    Every ``snapshot_every`` epochs ``snapshot`` receives a :class:`Snapshot`: the best model so
    far and the full training state (weights, optimizer moments, shuffling generator, early
    stopping counters, history). Passing that state back as ``resume`` continues the run from
    there and ends with the same weights as a run that was never interrupted. The snapshot
    refers to the live tensors: save or copy it inside the callback.

    ``world`` (from :func:`mfx.train.distributed.init`) trains this process's shard as one of
    several data-parallel workers; see :mod:`mfx.train.distributed`.
    """
    with freed_memory_kept():
        return _fit_deterministically(
            train_data, valid_data, config, on_epoch, snapshot, snapshot_every, resume, world
        )


def _fit_deterministically(
    train_data: Ratings,
    valid_data: Ratings | None,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None,
    snapshot: Callable[[Snapshot], None] | None,
    snapshot_every: int,
    resume: dict[str, Any] | None,
    world: World | None,
) -> TrainResult:
    # Multi-threaded CPU scatter-adds (the embedding gradients) otherwise sum in a varying
    # order; deterministic kernels make the same seed give bit-identical weights.
    previous = torch.are_deterministic_algorithms_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN, which costs more than some of the
    # kernels; nothing here reads memory it did not write.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        if resume is not None and resume.get("phase") == "refit":
            first = _first_from_state(resume["first"], config, train_data, valid_data)
            return _refit(first, on_epoch, snapshot, snapshot_every, resume, world)

        def train_snapshot(state: dict[str, Any]) -> None:
            if snapshot is not None:
                snapshot(Snapshot(state["best_state"] or state["model"], state, "train"))

        result = _fit(
            train_data,
            valid_data,
            config,
            on_epoch,
            snapshot=train_snapshot if snapshot else None,
            every=snapshot_every,
            resume=resume,
            world=world,
        )
        if config.refit and result.valid_data is not None and not result.interrupted:
            result = _refit(result, on_epoch, snapshot, snapshot_every, None, world)
        return result
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill


@dataclass
class Snapshot:
    """What :func:`fit` hands its ``snapshot`` callback: a model to keep and the run's state."""

    state_dict: dict[str, torch.Tensor]
    resume: dict[str, Any]
    phase: str


def _first_summary(first: TrainResult) -> dict[str, Any]:
    """What the refit phase needs of the first phase, as plain data (for resuming)."""
    return {
        "state_dict": {k: v.detach().clone() for k, v in first.model.state_dict().items()},
        "history": first.history,
        "metrics": first.metrics,
        "best_epoch": first.best_epoch,
        "epochs_run": first.epochs_run,
        "seconds": first.seconds,
    }


def _first_from_state(
    summary: dict[str, Any], config: TrainConfig, train_data: Ratings, valid_data: Ratings | None
) -> TrainResult:
    model = build_model(
        config.arch, train_data.n_rows, train_data.n_cols, config.dim, len(train_data.classes)
    )
    model.load_state_dict(summary["state_dict"])
    return TrainResult(
        model=model,
        config=config,
        train_data=train_data,
        valid_data=valid_data,
        history={k: list(v) for k, v in summary["history"].items()},
        best_epoch=int(summary["best_epoch"]),
        epochs_run=int(summary["epochs_run"]),
        interrupted=False,
        device=config.device,
        seconds=float(summary["seconds"]),
        metrics=dict(summary["metrics"]),
        source=train_data.source,
    )


def _fused(
    model: nn.Module, config: TrainConfig, resume: dict[str, Any] | None = None
) -> fused_step.FusedOrdinal | None:
    """The fused step for ``model`` when the config asks for it and the model has one.

    A resumed run continues on the path that wrote its state, whatever ``config.fused`` says
    (a checkpoint from before the fused step has no such setting and SparseAdam's state).
    """
    wanted = config.sparse and config.fused
    if resume is not None and config.sparse:
        wanted = fused_step.is_state(resume["optimizers"][0])
    if wanted and fused_step.supports(model):
        return fused_step.FusedOrdinal(model, lr=config.lr, l2=config.l2)
    return None


def _optimizers(
    model: nn.Module, config: TrainConfig, fused: fused_step.FusedOrdinal | None = None
) -> list[Any]:
    """Adam; with ``sparse``, SparseAdam for the embedding tables and Adam for the rest.

    SparseAdam updates only the rows a batch looked up (lazy Adam), so a step costs what the
    batch touches rather than the size of the tables. With a fused step, that step updates the
    tables itself (and its state is saved with the optimizers').
    """
    if not config.sparse:
        return [
            torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        ]
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    table_ids = {id(t) for t in tables}
    rest = [p for p in model.parameters() if id(p) not in table_ids]
    optimizers: list[Any] = [fused or torch.optim.SparseAdam(tables, lr=config.lr)]
    if rest:
        optimizers.append(torch.optim.Adam(rest, lr=config.lr, weight_decay=config.weight_decay))
    return optimizers


def _refit(
    first: TrainResult,
    on_epoch: Callable[[EpochReport], None] | None,
    snapshot: Callable[[Snapshot], None] | None,
    snapshot_every: int,
    resume: dict[str, Any] | None,
    world: World | None = None,
) -> TrainResult:
    """Train again from scratch on training + validation data for the best epoch count.

    Early stopping picked the epoch count on held-out data; the final model then learns from
    all of it. The validation figures kept are those of the early-stopped model, measured
    before the validation ratings were seen.
    """
    combined = first.train_data.concat(first.valid_data)
    # The batch early stopping counted its epochs in, even where the automatic size for the
    # larger combined data would be the next power of two (and half the steps per epoch).
    config = dataclasses.replace(
        first.config,
        epochs=max(1, first.best_epoch),
        patience=None,
        refit=False,
        batch_size=first.config.batch_for(len(first.train_data)),
    )
    summary = resume["first"] if resume is not None else _first_summary(first)

    def report(epoch: EpochReport) -> None:
        if on_epoch is not None:
            on_epoch(dataclasses.replace(epoch, phase="refit"))

    def refit_snapshot(state: dict[str, Any]) -> None:
        if snapshot is not None:
            # Until the refit ends, the model to keep is the early-stopped one.
            snapshot(Snapshot(summary["state_dict"], {**state, "first": summary}, "refit"))

    final = _fit(
        combined,
        None,
        config,
        report,
        snapshot=refit_snapshot if snapshot else None,
        every=snapshot_every,
        resume=resume,
        phase="refit",
        world=world,
    )
    if final.interrupted:
        log.warning("refit interrupted; keeping the early-stopped model")
        return dataclasses.replace(first, interrupted=True)
    metrics = {k: v for k, v in first.metrics.items() if k.startswith("valid_")}
    metrics.update(final.metrics)
    history = dict(first.history)
    history["refit_train_loss"] = final.history["train_loss"]
    return dataclasses.replace(
        final,
        config=first.config,
        valid_data=first.valid_data,
        history=history,
        best_epoch=first.best_epoch,
        epochs_run=first.epochs_run + final.epochs_run,
        seconds=first.seconds + final.seconds,
        metrics=metrics,
        refit=True,
    )


def _fit(
    train_data: Ratings,
    valid_data: Ratings | None,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None,
    *,
    snapshot: Callable[[dict[str, Any]], None] | None = None,
    every: int = 1,
    resume: dict[str, Any] | None = None,
    phase: str = "train",
    world: World | None = None,
) -> TrainResult:
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(
        config.arch,
        train_data.n_rows,
        train_data.n_cols,
        config.dim,
        len(train_data.classes),
        sparse=config.sparse,
    ).to(device)
    fused = _fused(model, config, resume)
    optimizers = _optimizers(model, config, fused)
    # The fused step's optimizer state sits first in the list; the others are torch's.
    torch_optimizers = optimizers[1:] if fused is not None else optimizers
    loss_fn = nn.CrossEntropyLoss()
    pairs, labels = _tensors(train_data, device)
    valid = _tensors(valid_data, device) if valid_data is not None and len(valid_data) else None
    shuffle = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"train_loss": [], "valid_loss": [], "valid_accuracy": []}
    best_loss, best_epoch, best_state = math.inf, 0, None
    stale, epochs_run, interrupted = 0, 0, False
    if resume is not None:
        if resume.get("phase", "train") != phase:
            raise ValueError(f"cannot resume a {resume.get('phase')!r} state in phase {phase!r}")
        model.load_state_dict(resume["model"])
        if fused is not None:
            fused.reload()
        for optimizer, saved in zip(optimizers, resume["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        shuffle.set_state(resume["generator"])
        history = {k: list(v) for k, v in resume["history"].items()}
        best_loss, best_epoch = float(resume["best_loss"]), int(resume["best_epoch"])
        best_state, stale = resume["best_state"], int(resume["stale"])
        epochs_run = int(resume["epoch"])
    started = time.perf_counter()
    world = world or World()
    full_pairs, full_labels = pairs, labels
    batch_size = config.batch_for(pairs.shape[0])
    if world.size > 1:
        # Equal shards and a per-worker batch that adds up to the configured global batch.
        mine = shard(pairs.shape[0], world).to(device)
        pairs, labels = pairs[mine], labels[mine]
        batch_size = max(1, batch_size // world.size)
    sync = GradientSync(world)
    n = pairs.shape[0]
    penalise = config.l2 > 0 and hasattr(model, "forward_with_penalty")
    model.train()
    try:
        for epoch in range(epochs_run + 1, config.epochs + 1):
            epoch_start = time.perf_counter()
            order = torch.randperm(n, generator=shuffle).to(device)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                for optimizer in torch_optimizers:
                    optimizer.zero_grad(set_to_none=True)
                batch_pairs = pairs[batch]
                if fused is not None:
                    total += fused.step(
                        batch_pairs[:, 0], batch_pairs[:, 1], labels[batch], sync
                    ).double()
                    sync(model)
                    for optimizer in torch_optimizers:
                        optimizer.step()
                    continue
                if penalise:
                    logits, penalty = model.forward_with_penalty(batch_pairs)
                    loss = loss_fn(logits, labels[batch])
                    (loss + config.l2 * penalty).backward()
                else:
                    loss = loss_fn(model(batch_pairs), labels[batch])
                    loss.backward()
                sync(model)
                for optimizer in optimizers:
                    optimizer.step()
                total += loss.detach().double() * batch.shape[0]
            epochs_run = epoch
            if fused is not None:
                fused.write_back()
            train_seconds = time.perf_counter() - epoch_start
            train_loss = sync.mean(total, n)
            history["train_loss"].append(train_loss)
            valid_loss = valid_accuracy = None
            improved = False
            if valid is not None:
                valid_loss, valid_accuracy = evaluate(model, *valid)
                history["valid_loss"].append(valid_loss)
                history["valid_accuracy"].append(valid_accuracy)
                if valid_loss < best_loss:
                    best_loss, best_epoch, improved, stale = valid_loss, epoch, True, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            else:
                best_epoch, improved = epoch, True
            if on_epoch is not None:
                on_epoch(
                    EpochReport(
                        epoch,
                        config.epochs,
                        train_loss,
                        valid_loss,
                        valid_accuracy,
                        time.perf_counter() - epoch_start,
                        improved,
                        train_seconds=train_seconds,
                    )
                )
            stop = config.patience is not None and valid is not None and stale >= config.patience
            if snapshot is not None and epoch % every == 0 and not stop and epoch < config.epochs:
                snapshot(
                    {
                        "phase": phase,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
                        "generator": shuffle.get_state(),
                        "best_loss": best_loss,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                        "stale": stale,
                        "history": history,
                    }
                )
            if stop:
                log.info("early stop after epoch %d; best epoch %d", epoch, best_epoch)
                break
    except KeyboardInterrupt:
        if fused is not None:
            fused.write_back()
        interrupted = True
        log.warning("interrupted after %d epoch(s); keeping the best model so far", epochs_run)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    metrics: dict[str, float] = {}
    metrics["train_loss"], metrics["train_accuracy"] = evaluate(model, full_pairs, full_labels)
    if valid is not None:
        metrics["valid_loss"], metrics["valid_accuracy"] = evaluate(model, *valid)
    return TrainResult(
        model=model.cpu(),
        config=config,
        train_data=train_data,
        valid_data=valid_data,
        history=history,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        interrupted=interrupted,
        device=str(device),
        seconds=time.perf_counter() - started,
        metrics=metrics,
        source=train_data.source,
    )


def _report_classes(raw: RawRatings) -> list[int] | None:
    """The report's classes 0..5 when every label is one of them."""
    labels = np.asarray(raw.labels)
    if labels.dtype.kind not in "iuf":
        return None
    if np.all(np.isin(labels, REPORT_CLASSES)):
        return list(REPORT_CLASSES)
    return None


def prepare_data(
    data: str | RawRatings | None = None,
    *,
    format: str = "auto",
    header: bool | None = None,
    classes: Sequence[Any] | None = None,
    test: str | RawRatings | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    unknown: str = "drop",
    report_classes: bool = False,
) -> tuple[Ratings, Ratings | None]:
    """Read (or generate) the data and split it into training and validation ratings."""
    if data is None:
        raw, _ = planted_ratings()
    elif isinstance(data, RawRatings):
        raw = data
    else:
        raw = read_ratings(data, format, header)
    if classes is None and report_classes:
        classes = _report_classes(raw)
    ratings = Ratings.from_raw(raw, classes)
    if test is not None:
        test_raw = test if isinstance(test, RawRatings) else read_ratings(test, format, header)
        valid = ratings.like(test_raw, unknown=unknown)
        if valid.extra.get("unknown"):
            log.warning(
                "%s: left out %d rating(s) whose row or column is not in the training data",
                test_raw.source,
                valid.extra["unknown"],
            )
        return ratings, valid
    if valid_fraction > 0:
        return ratings.split(valid_fraction, seed)
    return ratings, None


def train(
    data: str | RawRatings | None = None,
    config: TrainConfig | None = None,
    *,
    format: str = "auto",
    header: bool | None = None,
    classes: Sequence[Any] | None = None,
    test: str | RawRatings | None = None,
    preset: str | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Read ``data`` (a path, raw ratings, or ``None`` for the built-in dataset) and fit a model.

    This is the library form of ``mfx-train``.
    """
    config = config or TrainConfig(**PRESETS.get(preset or "", {}))
    train_data, valid_data = prepare_data(
        data,
        format=format,
        header=header,
        classes=classes,
        test=test,
        valid_fraction=config.valid_fraction,
        seed=config.seed,
        report_classes=preset == "report",
    )
    return fit(train_data, valid_data, config, on_epoch)
