"""Time embeddings shared by the backbones; ``t`` is a float in [0, 1]."""
from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """``[sin(ω_k t'), cos(ω_k t')]`` with ``t' = 1000 t`` and ``ω_k = 10000^(−k/(d/2))``."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        half = dim // 2
        frequencies = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = 1000.0 * t.float()[:, None] * self.frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def embed_time_and_condition(time_embedding: nn.Module, cond_embedding: nn.Module | None, t: torch.Tensor,
                             cond: torch.Tensor | None) -> torch.Tensor:
    """``time_embedding(t)``, plus ``cond_embedding(cond)`` for a network built with a condition."""
    emb = time_embedding(t)
    if cond_embedding is None:
        return emb
    if cond is None:
        raise ValueError("this network was built with a condition; pass cond")
    return emb + cond_embedding(cond)
