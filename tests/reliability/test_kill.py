"""Crashes and interruptions: ``kill -9`` of mfx-train, mfx-export and mfx-predict.

Each command is first killed once with no output present (afterwards there is none, or a
complete one), then runs to completion (its output is the "previous" file and its run time
bounds the kill delays), then is started again and killed with SIGKILL at a random moment,
``MFX_KILLS`` times (default 3 in CI, 5 at ``MFX_STRESS_SCALE=1``). After every kill the
output is byte-identical to the previous one (or, when the run finished before the kill, a
complete new file); never partial. A kill can leave a ``.<name>.<pid>.<host>.<random>.tmp``
file beside the output; the next successful run of the command removes it.

The delays come from ``random.Random(MFX_KILL_SEED)`` (default: a fresh seed, shown in every
failure message) so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability_support import INT_MODEL, python_command, scaled

from mfx._files import _host_tag, atomic_path

KILLS = int(os.environ.get("MFX_KILLS", "0")) or scaled(5, minimum=3)
SEED = int(os.environ.get("MFX_KILL_SEED", str(time.time_ns() % 10**9)))
TIMEOUT = 300


def _temps(target: Path) -> list[str]:
    prefix = f".{target.name}."
    return sorted(p.name for p in target.parent.iterdir()
                  if p.name.startswith(prefix) and p.name.endswith(".tmp"))


def _run(command: list[str], cwd: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - started


def _kill_cycle(
    name: str,
    command: Callable[[int], list[str]],
    target: Path,
    check_complete: Callable[[Path], None],
) -> str:
    """Run, kill KILLS times at random moments, run again; returns a summary line."""
    rng = random.Random(f"{SEED}-{name}")
    folder = target.parent
    # No output yet: a killed first run leaves none, or (killed after its rename) a whole one.
    delay = rng.uniform(0.3, 3.0)
    proc = subprocess.Popen(
        command(0), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    if target.exists():
        check_complete(target)
    duration = _run(command(0), folder)
    check_complete(target)
    previous = target.read_bytes()
    notes = []
    leftovers = 0
    for k in range(1, KILLS + 1):
        # Every other kill aims at the end of the run, where the output is written.
        delay = rng.uniform(0.02, 1.0) * duration if k % 2 else rng.uniform(0.8, 1.1) * duration
        proc = subprocess.Popen(
            command(k), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
        where = f"{name}: kill {k} after {delay:.2f}s of {duration:.2f}s (MFX_KILL_SEED={SEED})"
        if proc.returncode == 0:  # finished before the kill: a complete new file
            check_complete(target)
            previous = target.read_bytes()
            notes.append("done")
            continue
        assert proc.returncode == -signal.SIGKILL, where
        assert target.exists(), f"{where}: the previous output vanished"
        leftovers = max(leftovers, len(_temps(target)))
        now = target.read_bytes()
        if now != previous:  # killed after its rename: the new file must be complete
            check_complete(target)
            previous = now
            notes.append(f"{delay:.1f}s (after the rename)")
            continue
        notes.append(f"{delay:.1f}s")
    _run(command(KILLS + 1), folder)
    check_complete(target)
    assert _temps(target) == [], f"{name}: temporary files left after a successful run"
    return (
        f"{name}: run {duration:.1f}s, {KILLS} kills at {', '.join(notes)}; "
        f"at most {leftovers} temp file(s) left by kills, none after the next run"
    )


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> tuple[Path, int]:
    """Pairs of tiny_int ids, enough for mfx-predict to run about a second."""
    folder = tmp_path_factory.mktemp("pairs")
    n = 400_000
    rng = np.random.default_rng(0)
    rows = np.array([10, 20, 35, 36, 50, 71, 1000])[rng.integers(0, 7, n)]
    cols = np.array([3, 17, 42, 99, 1029, 5000, 77777, 10**9, 5 * 10**12])[rng.integers(0, 9, n)]
    path = folder / "pairs.csv"
    path.write_text("row,col\n" + "\n".join(f"{r},{c}" for r, c in zip(rows, cols)) + "\n")
    return path, n


def test_kill_mfx_predict(tmp_path, pairs_file):
    pairs, n = pairs_file
    target = tmp_path / "preds.csv"

    def command(k: int) -> list[str]:
        extra = ["--proba"] if k % 2 else []
        return [*python_command("mfx.cli.predict"), str(INT_MODEL), "-i", str(pairs),
                "-o", str(target), "-q", *extra]

    def complete(path: Path) -> None:
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) == n + 2  # header, n rows, final newline

    print(_kill_cycle("mfx-predict", command, target, complete))


@pytest.mark.torch
def test_kill_mfx_train_and_export(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from mfx.runtime import Predictor
    from mfx.train import load_checkpoint

    checkpoint = tmp_path / "model.pt"

    def train(k: int) -> list[str]:
        return [*python_command("mfx.cli.train"), "-o", str(checkpoint), "--epochs", "2",
                "--seed", str(k), "-q"]

    print(_kill_cycle("mfx-train", train, checkpoint, lambda p: load_checkpoint(p)))
    onnx_file = tmp_path / "model.onnx"

    def export(k: int) -> list[str]:
        form = "--no-fold" if k % 2 else "--fold"  # different bytes, same exact parity
        return [*python_command("mfx.cli.export"), str(onnx_file), "--checkpoint",
                str(checkpoint), form, "-q"]

    print(_kill_cycle("mfx-export", export, onnx_file, lambda p: Predictor(p, providers="cpu")))


# -- the same guarantees, made deterministic: a writer killed in the middle of its write ----

_HALF_WRITER = textwrap.dedent(
    """
    import sys, time
    from mfx._files import _host_tag, atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"partial")
            fh.flush()
            print(tmp, flush=True)
            time.sleep(60)
    """
)


def _killed_mid_write(target: Path) -> Path:
    """Start a writer, let it write half a file, kill -9 it; return its temporary file."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HALF_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    tmp = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert tmp.exists() and tmp.read_bytes() == b"partial"
    return tmp


def test_a_writer_killed_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old, complete\n")
    stale = [_killed_mid_write(target) for _ in range(2)]
    assert target.read_bytes() == b"old, complete\n"
    assert all(p.name.startswith(".out.csv.") and p.name.endswith(".tmp") for p in stale)
    # Another file's temporary and a live writer's temporary must survive the clean-up.
    other = _killed_mid_write(tmp_path / "other.csv")
    live = tmp_path / f".out.csv.{os.getpid()}.{_host_tag()}.0123abcd.tmp"
    live.write_bytes(b"being written by this process")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new\n")
    assert target.read_bytes() == b"new\n"
    assert not any(p.exists() for p in stale)
    assert other.exists() and live.exists()


def test_a_temporary_of_a_running_writer_is_kept(tmp_path):
    target = tmp_path / "out.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HALF_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        running = Path(proc.stdout.readline().strip())
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"mine\n")
        assert running.exists(), "removed the temporary file of a writer still running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()


def test_the_temporary_file_gets_the_mode_a_plain_open_would(tmp_path):
    target = tmp_path / "out.csv"
    old = os.umask(0o027)
    try:
        with atomic_path(target) as tmp:
            assert tmp.stat().st_mode & 0o777 == 0o640
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o640
