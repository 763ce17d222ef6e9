"""Device selection and CPU threads."""
from __future__ import annotations

import torch

from bayesgen.core.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else must be a valid, available device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    return device


def set_threads(threads: int | None) -> None:
    """Let torch use ``threads`` CPU threads (``None``: leave torch's default, one per core).
    On a machine shared with others, more threads than one's share of the cores makes small
    networks many times slower, so give that share."""
    if threads is not None:
        torch.set_num_threads(threads)
