"""Residual MLP backbone for event vectors ``(batch, n_features)``."""
from __future__ import annotations

import torch
from torch import nn

from bayesgen.core.hooks import hookimpl
from bayesgen.plugins.backbones.embeddings import SinusoidalEmbedding, embed_time_and_condition


class ResidualBlock(nn.Module):
    """``h + W₂ σ(W₁ σ(LN(h)) + E(emb))``: pre-norm residual block with an additive embedding."""

    def __init__(self, width: int, embed_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.embedding = nn.Linear(embed_dim, width)
        self.outer = nn.Linear(width, width)
        self.activation = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.inner(self.activation(self.norm(h))) + self.embedding(emb)
        return h + self.outer(self.activation(z))


class ResidualMLP(nn.Module):
    """Residual MLP ``f(x, t, cond)`` with a sinusoidal time embedding and optional condition;
    structured features (``feature_shape``) are taken flat, without their symmetries."""

    def __init__(self, in_features: int, out_features: int | None = None, cond_features: int = 0,
                 width: int = 256, depth: int = 4, embed_dim: int = 64,
                 feature_shape: tuple[int, ...] | None = None):
        super().__init__()
        out_features = out_features or in_features
        self.time_embedding = nn.Sequential(
            SinusoidalEmbedding(embed_dim), nn.Linear(embed_dim, embed_dim), nn.SiLU())
        self.cond_embedding = nn.Linear(cond_features, embed_dim) if cond_features else None
        self.input = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, embed_dim) for _ in range(depth))
        self.output = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, out_features))
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = embed_time_and_condition(self.time_embedding, self.cond_embedding, t, cond)
        h = self.input(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.output(h)


@hookimpl
def bayesgen_backbones():
    return {"mlp": ResidualMLP}
