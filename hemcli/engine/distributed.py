"""Data-parallel training across processes started by ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node N -m hemcli classify ...`` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set. Each takes its ``Shard`` of every global batch, gradients are
averaged by DDP, sums (loss, correct counts) are added over ranks, and only rank 0 writes results
and checkpoints. Without those variables everything here is a no-op for one process.
"""
from __future__ import annotations

import os

import torch

from hemcli.engine.batches import Shard


def env_shard() -> Shard:
    """This process's rank and the world size, from torchrun's environment (0 of 1 without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Shard(int(os.environ.get("RANK", "0")) if world > 1 else 0, world)


def is_main() -> bool:
    return env_shard().rank == 0


def local_rank() -> int | None:
    """torchrun's LOCAL_RANK (the GPU this process drives) in a multi-process run, else None."""
    return int(os.environ.get("LOCAL_RANK", "0")) if env_shard().world > 1 else None


def start(device: torch.device) -> Shard:
    """Join the process group (NCCL on CUDA, gloo on CPU) once; the shard of this process."""
    shard = env_shard()
    if shard.world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=shard.rank, world_size=shard.world)
    return shard


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` added over every rank (unchanged for one process)."""
    if active():
        values = values.clone()
        torch.distributed.all_reduce(values)
    return values


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DDP when the process group is up, else itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def barrier() -> None:
    if active():
        torch.distributed.barrier()


def stop() -> None:
    if active():
        torch.distributed.destroy_process_group()
