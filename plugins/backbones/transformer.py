"""Permutation-equivariant transformer backbone for point clouds.

Features travel flat, ``x`` of shape ``(batch, N*C)`` in C order, and are unflattened with the
process's ``feature_shape = (N, C)`` (N points, C channels each); the output ``(batch, N*C')``
is the flat form of ``(batch, N, C')`` with ``C' = out_features // N``. There is no positional
encoding, so permuting the points permutes the output in the same way.

Conditions, ``cond`` of shape ``(batch, cond_features)``, as the backbone contract
(:mod:`bayesgen.core.backbone`) has them: with ``mask_features = N`` the first N columns are the
point mask (1.0 = real point, 0.0 = padding) and the remaining ``cond_features - N`` columns a
global condition (e.g. a class one-hot); with ``mask_features = 0`` all columns are a global
condition and every point is real. Padded points are excluded from the pooled context and from
the attention keys, so they never affect real points; an event without real points is attended
over all its points (to avoid NaN).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl


class FourierEmbedding(nn.Module):
    """``[sin(2π t B), cos(2π t B)]`` with fixed ``B ~ N(0, scale²)`` drawn from seed 0."""

    def __init__(self, dim: int, scale: float):
        super().__init__()
        frequencies = torch.randn(dim // 2, generator=torch.Generator().manual_seed(0)) * scale
        self.register_buffer("frequencies", frequencies)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * t.float()[:, None] * self.frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``h + E(emb)``, then masked self-attention and an MLP, each residual."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.embedding = nn.Linear(width, width)
        self.attention_norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor, emb: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = h + self.embedding(emb)[:, None, :]
        z = self.attention_norm(h)
        h = h + self.attention(z, z, z, key_padding_mask=padding, need_weights=False)[0]
        return h + self.mlp(self.mlp_norm(h))


class PointTransformer(nn.Module):
    """Permutation-equivariant transformer ``f(x, t, cond)`` over point clouds ``feature_shape = (N, C)``."""

    def __init__(self, in_features: int, out_features: int | None = None, cond_features: int = 0,
                 feature_shape: tuple[int, ...] | None = None, mask_features: int = 0, width: int = 128, depth: int = 4,
                 heads: int = 4, fourier_features: int = 64, fourier_scale: float = 16.0):
        super().__init__()
        if feature_shape is None or len(feature_shape) != 2:
            raise ConfigError(f"the transformer backbone needs point clouds: the process must declare a "
                             f"feature_shape (N, C), got {feature_shape}")
        self.points, channels = feature_shape
        if in_features != self.points * channels:
            raise ConfigError(f"the transformer backbone needs whole point clouds: in_features={in_features} "
                             f"is not N*C={self.points * channels} of feature_shape {tuple(feature_shape)} "
                             f"(the INN sampler's coupling halves are not clouds: use ddpm or cfm)")
        out_features = out_features or in_features
        if out_features % self.points:
            raise ConfigError(f"out_features={out_features} is not a multiple of the {self.points} points")
        if mask_features not in (0, self.points) or mask_features > cond_features:
            raise ConfigError(f"a point mask covers all {self.points} points within the {cond_features} condition "
                              f"columns, got mask_features={mask_features}")
        self.cond_features, self.mask_features = cond_features, mask_features
        global_features = cond_features - self.mask_features
        self.time_embedding = nn.Sequential(
            FourierEmbedding(fourier_features, fourier_scale),
            nn.Linear(2 * (fourier_features // 2), width), nn.SiLU(), nn.Linear(width, width))
        self.cond_embedding = nn.Linear(global_features, width) if global_features else None
        self.point_embedding = nn.Sequential(nn.Linear(channels, width), nn.SiLU(), nn.Linear(width, width))
        self.pooled_embedding = nn.Linear(width, width)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads) for _ in range(depth))
        self.output = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_features // self.points))
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        batch = x.shape[0]
        emb = self.time_embedding(t)
        real = x.new_ones(batch, self.points, 1)
        if self.cond_features:
            if cond is None:
                raise ValueError("this network was built with a condition; pass cond")
            if self.mask_features:
                real = (cond[:, :self.points, None] > 0.5).to(x.dtype)
            if self.cond_embedding is not None:
                emb = emb + self.cond_embedding(cond[:, self.mask_features:])
        h = self.point_embedding(x.reshape(batch, self.points, -1))
        pooled = (h * real).sum(1) / real.sum(1).clamp(min=1.0)
        h = h + (self.pooled_embedding(pooled) + emb)[:, None, :]
        padding = real[:, :, 0] == 0
        padding = padding & ~padding.all(dim=1, keepdim=True)
        # additive float mask: keeps MultiheadAttention off its eval-mode fast path, whose
        # nested-tensor handling of padding is several times slower on CPUs
        padding = torch.zeros_like(padding, dtype=h.dtype).masked_fill(padding, float("-inf"))
        for block in self.blocks:
            h = block(h, emb, padding)
        return self.output(h).reshape(batch, -1)


@hookimpl
def bayesgen_backbones():
    return {"transformer": PointTransformer}
