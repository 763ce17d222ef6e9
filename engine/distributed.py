"""Multi-process training with PyTorch's DistributedDataParallel, launched by ``torchrun``.

Each process (rank) takes every ``world_size``-th event of the step's global batch and draws
its own noise stream; DDP averages the gradients, rank 0 writes checkpoints and logs.
Backend: NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bayesgen.core.errors import ConfigError


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start(device_name: str) -> tuple[Ranks, torch.device]:
    """Join the process group that ``torchrun`` set up; the device is this rank's GPU or the CPU."""
    if "WORLD_SIZE" not in os.environ:
        raise ConfigError("--distributed needs a launcher: run `torchrun --nproc_per_node N -m bayesgen "
                          "train --distributed ...`")
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(ranks.local_rank)
        return ranks, torch.device("cuda", ranks.local_rank)
    return ranks, torch.device("cpu")


def check_in_sync(module: torch.nn.Module) -> None:
    """Raise if the ranks' copies of ``module`` differ (their gradients were not averaged alike)."""
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    low, high = checksum.clone(), checksum.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.isclose(low, high, rtol=1e-6, atol=0.0).item():
        raise RuntimeError(f"ranks disagree on the trained weights (checksums {low.item()} … {high.item()})")


def smallest(value: int, device: torch.device) -> int:
    """The smallest of the ranks' ``value`` (e.g. a batch size all ranks can hold)."""
    return _all_reduce(value, device, dist.ReduceOp.MIN)


def total(value: int, device: torch.device) -> int:
    """The sum of the ranks' ``value`` (e.g. events counted on each)."""
    return _all_reduce(value, device, dist.ReduceOp.SUM)


def _all_reduce(value: int, device: torch.device, op: dist.ReduceOp) -> int:
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=op)
    return int(tensor.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
