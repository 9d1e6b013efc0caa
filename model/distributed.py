"""Running under torchrun: this process's rank and device, and collectives that are no-ops alone."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """Where this process stands: rank `rank` of `world` processes, computing on `device`."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and progress."""
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum numbers over all processes (every process gets the sums)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def join(device: str | None = None) -> Group:
    """Join torchrun's process group if there is one (gloo on CPU, nccl on GPU).

    The device is `device` if given, else this process's GPU when there is one, else the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Group(rank, world, dev)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
