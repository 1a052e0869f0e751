"""Data-parallel training: 2 CPU workers (gloo on loopback), bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mfx.cli.train import main
from mfx.synthetic import planted_ratings
from mfx.train import load_checkpoint

MFX_TRAIN = [sys.executable, "-m", "mfx.cli.train"]


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    raw, _ = planted_ratings(n_rows=200, n_cols=150, density=0.3, seed=5)
    path = tmp_path_factory.mktemp("dist") / "r.csv"
    path.write_text(
        "".join(f"{r},{c},{int(y)}\n" for r, c, y in zip(raw.rows, raw.cols, raw.labels))
    )
    return path


def _run(args, timeout=240):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_two_workers_match_single_process_quality(ratings, tmp_path):
    """Same seed and data: validation accuracy within 0.03 of the single-process run."""
    common = ["--data", str(ratings), "--epochs", "12", "--patience", "0", "--no-refit", "-q"]
    single = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "one.pt")])
    assert single.exit_code == 0, single.output
    two = _run([*MFX_TRAIN, *common, "--nproc", "2", "-o", str(tmp_path / "two.pt")])
    assert two.returncode == 0, two.stdout + two.stderr
    one_acc = load_checkpoint(tmp_path / "one.pt").metrics["valid_accuracy"]
    two_acc = load_checkpoint(tmp_path / "two.pt").metrics["valid_accuracy"]
    assert two_acc == pytest.approx(one_acc, abs=0.03)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.pt", "two.pt"]


def test_one_worker_under_torchrun_is_the_plain_trainer(ratings, tmp_path):
    common = ["--data", str(ratings), "--epochs", "3", "-q"]
    plain = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "plain.pt")])
    assert plain.exit_code == 0, plain.output
    launched = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "1",
            "-m",
            "mfx.train",
            *common,
            "-o",
            str(tmp_path / "torchrun.pt"),
        ]
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    a = load_checkpoint(tmp_path / "plain.pt").model.state_dict()
    b = load_checkpoint(tmp_path / "torchrun.pt").model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _worker_pids() -> list[int]:
    """torchrun's workers: processes running ``python -u -m mfx.train``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mfx.train" in args and b"torch.distributed.run" not in args:
            found.append(int(entry.name))
    return sorted(found)


def test_a_dead_worker_stops_the_run_and_resume_continues(ratings, tmp_path):
    out = tmp_path / "run.pt"
    args = ["--data", str(ratings), "--epochs", "300", "--patience", "0", "--no-refit", "-q"]
    proc = subprocess.Popen(
        [*MFX_TRAIN, *args, "--nproc", "2", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert out.exists(), "no snapshot was written"
        workers = _worker_pids()
        assert len(workers) >= 2
        os.kill(workers[-1], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    # The surviving worker learns of the failure either from torchrun's stop signal or from
    # its next collective, whichever comes first; both end in one line, without a traceback.
    assert (
        "Error: worker 0 of 2: stopped because another worker failed" in stderr
        or "Error: worker 0 of 2: another worker stopped (" in stderr
    ), stderr
    assert "[rank0]: Traceback" not in stderr
    assert (
        f"Error: training stopped: a worker failed (torchrun exit 1); the last checkpoint {out} "
        f"is intact; continue with: mfx-train --resume {out} --nproc 2"
    ) in stderr
    stopped_at = load_checkpoint(out).epochs_run  # intact: it loads
    resumed = _run([*MFX_TRAIN, "--resume", str(out), "--nproc", "2", "-q"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = load_checkpoint(out)
    assert final.epochs_run == 300 > stopped_at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def _shard_worker(rank, size, port, out, fused):
    """One of ``size`` workers: train, and record what this worker stepped on and ended with."""
    import torch.distributed as dist

    from mfx.config import TrainConfig
    from mfx.data import Ratings
    from mfx.train import distributed, fit, trainer
    from mfx.train import fused as fused_module

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size)
    )
    torch.set_num_threads(1)
    world = distributed.init(torch.device("cpu"))
    seen = []
    original_step = fused_module.FusedOrdinal.step
    original_forward = trainer.nn.CrossEntropyLoss.forward

    def counting_step(self, rows, cols, labels, sync=None):
        seen.append(rows.shape[0])
        return original_step(self, rows, cols, labels, sync)

    def counting_loss(self, logits, target):
        if logits.requires_grad:
            seen.append(target.shape[0])
        return original_forward(self, logits, target)

    fused_module.FusedOrdinal.step = counting_step
    trainer.nn.CrossEntropyLoss.forward = counting_loss
    raw, _ = planted_ratings(n_rows=80, n_cols=60, density=0.3, seed=2)
    train, valid = Ratings.from_raw(raw).split(0.2, seed=0)
    config = TrainConfig(
        epochs=2, batch_size=64, patience=None, refit=False, fused=fused, device="cpu"
    )
    result = fit(train, valid, config, world=world)
    torch.save(
        {"seen": seen, "n": len(train), "state": result.model.state_dict()},
        f"{out}/rank{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "autograd"])
def test_each_worker_trains_its_shard_and_all_hold_the_same_weights(tmp_path, fused):
    """Each of two workers steps on half of every epoch, in half batches; all end bit-identical."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_shard_worker, args=(2, port, str(tmp_path), fused), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    n = ranks[0]["n"]
    for saved in ranks:
        # Two epochs of this worker's half, in batches of half the global batch.
        assert sum(saved["seen"]) == 2 * (n // 2)
        assert max(saved["seen"]) == 32
    for key, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][key]), key
