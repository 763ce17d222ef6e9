"""Independent, reproducible random streams derived from one user seed."""
from __future__ import annotations

import zlib

import numpy as np
import torch


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 63-bit seed for the stream named by ``keys`` (e.g. ``("train-data",)``, ``("batch", 7)``)."""
    words = [seed & 0xFFFFFFFF, seed >> 32] + [
        zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    low, high = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return (int(low) | int(high) << 32) & ((1 << 63) - 1)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)
