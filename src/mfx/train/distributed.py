"""Data-parallel training on ``torch.distributed``: gloo on CPU, NCCL on GPUs.

Launch with ``torchrun --nproc-per-node N -m mfx.train ...`` (the same options as
``mfx-train``) or ``mfx-train --nproc N ...``, which runs that command. Every worker reads the
ratings and builds the same id maps, classes and validation split (the reader is
deterministic), keeps an equal shard of the training ratings (every ``world``-th one), and
starts from the same initial weights (same seed). After each backward pass the gradients are
averaged across workers: dense ones with ``all_reduce``, the embedding tables' sparse ones by
gathering every worker's looked-up rows (``all_gather``), so updates stay sparse. All workers
then take the same optimizer step and hold identical weights; rank 0 alone writes checkpoints.

With one worker no collective runs and training is exactly the plain trainer's.
"""

from __future__ import annotations

import datetime
import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mfx.errors import MfxError

#: How long a collective waits for a worker that stopped answering.
TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("MFX_DIST_TIMEOUT", "60")))


@dataclass(frozen=True)
class World:
    """This process's place in the run."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True inside a worker started by torchrun (or any launcher that sets the env variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


class WorkerStopped(MfxError):
    """This worker was told to stop, because another worker of the run failed."""


def quiet_stop() -> None:
    """From now on this worker ignores stop requests: it is already on its way out.

    Called once a worker knows it is failing: torchrun's SIGTERM may still arrive while it
    writes its one-line error or shuts down, and must neither cut that line off nor add a
    traceback to it. (torchrun kills a worker that has not exited after its grace period.)
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_on_sigterm(world: World) -> None:
    def handler(signum: int, frame: object) -> None:
        quiet_stop()
        raise WorkerStopped(
            f"worker {world.rank} of {world.size}: stopped because another worker failed"
        )

    signal.signal(signal.SIGTERM, handler)


def init(device: torch.device) -> World:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA).

    torchrun sends SIGTERM to the other workers when one fails; each then stops with a
    one-line :class:`WorkerStopped` error instead of a traceback.
    """
    if not launched_by_torchrun():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    world = World(dist.get_rank(), dist.get_world_size())
    _stop_on_sigterm(world)
    return world


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(n: int, world: World) -> torch.Tensor:
    """Positions of this worker's ratings: every ``size``-th one, equal counts on all ranks.

    The last ``n % size`` ratings are left out so every worker takes the same number of steps.
    """
    usable = n - n % world.size
    return torch.arange(world.rank, usable, world.size)


class GradientSync:
    """Average gradients across workers; sparse ones stay sparse."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, model: nn.Module) -> None:
        if self.world.size == 1:
            return
        for parameter in model.parameters():
            grad = parameter.grad
            if grad is None:
                continue
            if grad.is_sparse:
                parameter.grad = self._sparse(grad)
            else:
                dist.all_reduce(grad)
                grad /= self.world.size

    def mean(self, total: torch.Tensor, count: int) -> float:
        """``total / count`` over all workers' shards (each worker holds ``count`` ratings)."""
        if self.world.size > 1:
            total = total.clone()
            dist.all_reduce(total)
        return float(total) / (count * self.world.size)

    def _sparse(self, grad: torch.Tensor) -> torch.Tensor:
        indices, values = self._gather(grad._indices(), grad._values())
        return torch.sparse_coo_tensor(indices, values / self.world.size, grad.shape)

    def gather_rows(
        self, rows: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every worker's touched ``rows`` (1-D) and their gradient ``values``, in rank order,
        divided by the worker count (so that summing them per row averages the gradients)."""
        indices, values = self._gather(rows.unsqueeze(0), values)
        return indices.squeeze(0), values / self.world.size

    def _gather(
        self, indices: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All workers' ``indices`` (``[k, n]``) and ``values`` (``[n, ...]``), concatenated."""
        count = torch.tensor([indices.shape[1]], dtype=torch.int64, device=indices.device)
        counts = [torch.zeros_like(count) for _ in range(self.world.size)]
        dist.all_gather(counts, count)
        longest = int(max(int(c) for c in counts))
        pad = longest - indices.shape[1]
        if pad:
            indices = torch.cat([indices, indices.new_zeros((indices.shape[0], pad))], 1)
            values = torch.cat([values, values.new_zeros((pad, *values.shape[1:]))], 0)
        all_indices = [torch.empty_like(indices) for _ in range(self.world.size)]
        all_values = [torch.empty_like(values) for _ in range(self.world.size)]
        dist.all_gather(all_indices, indices.contiguous())
        dist.all_gather(all_values, values.contiguous())
        kept_indices = [part[:, : int(c)] for part, c in zip(all_indices, counts)]
        kept_values = [part[: int(c)] for part, c in zip(all_values, counts)]
        return torch.cat(kept_indices, 1), torch.cat(kept_values, 0)
