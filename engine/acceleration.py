"""Speed settings of generation: precision, compilation, batch size from free memory, and
pinned-memory copies to the host that overlap the next chunk's compute.

``precision``: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32`` or ``bf16`` (autocast
on any device; the samplers keep their update formulas, splines and rotations in fp32).
``compile``: ``none`` or a :func:`torch.compile` mode (``default``, ``reduce-overhead`` — which
captures CUDA graphs — or ``max-autotune``) applied to the modules the sampler calls when sampling.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Callable

import torch

from bayesgen.core.errors import ConfigError
from bayesgen.core.sampler import Sampler

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
CPU_BATCH_SIZE = 50_000           #: rows per chunk on a CPU when the batch size is automatic
MEMORY_SHARE = 0.5                #: share of the free GPU memory one chunk may use
MAX_AUTO_BATCH = 4_000_000        #: cap on an automatic batch size


def check_speed_options(precision: str, compile_mode: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if compile_mode not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {compile_mode!r}; choose from {', '.join(COMPILE_MODES)}")


def resolved_precision(device: torch.device, precision: str) -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device``."""
    return "bf16" if precision == "bf16" or (precision == "auto" and device.type == "cuda") else "fp32"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    if resolved_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def compile_networks(sampler: Sampler, mode: str) -> None:
    """Replace each module the sampler calls when sampling (:meth:`Sampler.sampling_networks`)
    by its :func:`torch.compile` version (``mode != "none"``)."""
    if mode == "none":
        return
    for owner, name in sampler.sampling_networks():
        setattr(owner, name, torch.compile(getattr(owner, name), mode=None if mode == "default" else mode))


def auto_batch_size(device: torch.device, precision: str, sample: Callable[[int], torch.Tensor],
                    probe_rows: int = 4096) -> int:
    """Rows per chunk: on CUDA, as many as fit in MEMORY_SHARE of the free memory, from the peak
    memory of a probe ``sample(probe_rows)``; CPU_BATCH_SIZE elsewhere."""
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    with torch.no_grad(), autocast(device, precision):
        sample(probe_rows)
    torch.cuda.synchronize(device)
    per_row = max(1.0, (torch.cuda.max_memory_allocated(device) - baseline) / probe_rows)
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(MAX_AUTO_BATCH, max(probe_rows, MEMORY_SHARE * free / per_row)))


@dataclass
class HostCopy:
    """A device tensor on its way to host memory: pinned and asynchronous on CUDA."""

    tensor: torch.Tensor
    done: torch.cuda.Event | None

    @classmethod
    def start(cls, tensor: torch.Tensor) -> "HostCopy":
        tensor = tensor.float()
        if tensor.device.type != "cuda":
            return cls(tensor.cpu(), None)
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return cls(host, done)

    def numpy(self):
        if self.done is not None:
            self.done.synchronize()
        return self.tensor.numpy()
