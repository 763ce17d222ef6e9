"""2D U-Net backbone for multi-channel images, e.g. jet images.

Features travel flat, ``x`` of shape ``(batch, C*H*W)`` in C order, and are unflattened with the
process's ``feature_shape = (C, H, W)``; the output ``(batch, C'*H*W)`` is the flat form of
``(batch, C', H, W)`` with ``C' = out_features // (H*W)``. Each of the ``len(channel_mults)``
levels halves the image, so H and W must be divisible by ``2**(len(channel_mults) - 1)``.
Self-attention runs at every level (and in the middle block) whose resolution ``max(h, w)`` is
at most ``attention_below``. ``cond`` of shape ``(batch, cond_features)`` (e.g. a class one-hot)
is embedded and added to the time embedding. GroupNorm uses ``gcd(groups, channels)`` groups.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.plugins.backbones.embeddings import SinusoidalEmbedding, embed_time_and_condition


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest common divisor of ``groups`` and ``channels`` as group count."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResidualBlock(nn.Module):
    """``skip(h) + conv(σ(GN(conv(σ(GN(h))) + E(emb))))`` with a 1×1 skip when channels change."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embed_dim, out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.activation = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.conv1(self.activation(self.norm1(h))) + self.embedding(emb)[:, :, None, None]
        return self.skip(h) + self.conv2(self.activation(self.norm2(z)))


class AttentionBlock(nn.Module):
    """``h + MHA(GN(h))`` over the ``h·w`` positions of the image."""

    def __init__(self, channels: int, groups: int, heads: int = 4):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.attention = nn.MultiheadAttention(channels, math.gcd(heads, channels), batch_first=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = h.shape
        z = self.norm(h).flatten(2).transpose(1, 2)
        z = self.attention(z, z, z, need_weights=False)[0]
        return h + z.transpose(1, 2).reshape(batch, channels, height, width)


class Downsample(nn.Module):
    """Stride-2 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(h)


class Upsample(nn.Module):
    """Nearest-neighbour ×2 upsampling followed by a 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """2D U-Net ``f(x, t, cond)`` over images ``feature_shape = (C, H, W)``, with skip connections
    and self-attention at low resolution."""

    def __init__(self, in_features: int, out_features: int | None = None, cond_features: int = 0,
                 feature_shape: tuple[int, ...] | None = None, channels: int = 32,
                 channel_mults: tuple[int, ...] = (1, 2, 2), attention_below: int = 16,
                 embed_dim: int = 128, groups: int = 8):
        super().__init__()
        if feature_shape is None or len(feature_shape) != 3:
            raise ConfigError(f"the U-Net backbone needs images: the process must declare an image "
                             f"feature_shape (C, H, W), got {feature_shape}")
        in_channels, height, width = feature_shape
        if in_features != in_channels * height * width:
            raise ConfigError(f"the U-Net backbone needs whole images: in_features={in_features} is not "
                             f"C*H*W={in_channels * height * width} of feature_shape {tuple(feature_shape)} "
                             f"(the INN sampler's coupling halves are not images: use ddpm or cfm)")
        factor = 2 ** (len(channel_mults) - 1)
        if height % factor or width % factor:
            raise ConfigError(f"image size {height}x{width} is not divisible by {factor} = "
                             f"2**{len(channel_mults) - 1} for {len(channel_mults)} levels "
                             f"(channel_mults={tuple(channel_mults)})")
        out_features = out_features or in_features
        if out_features % (height * width):
            raise ConfigError(f"out_features={out_features} is not a whole number of {height}x{width} channels")
        self.image_shape = (in_channels, height, width)
        self.cond_features = cond_features
        self.time_embedding = nn.Sequential(SinusoidalEmbedding(embed_dim), nn.Linear(embed_dim, embed_dim),
                                            nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.cond_embedding = nn.Linear(cond_features, embed_dim) if cond_features else None

        def attention(ch: int, level: int) -> nn.Module:
            size = max(height, width) // 2 ** level
            return AttentionBlock(ch, groups) if size <= attention_below else nn.Identity()

        self.input = nn.Conv2d(in_channels, channels, 3, padding=1)
        widths = [channels * mult for mult in channel_mults]
        last = len(widths) - 1
        self.down_blocks, self.down_attention, self.downsamples = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        ch = channels
        for level, out in enumerate(widths):
            self.down_blocks.append(ResidualBlock(ch, out, embed_dim, groups))
            self.down_attention.append(attention(out, level))
            self.downsamples.append(Downsample(out) if level < last else nn.Identity())
            ch = out
        self.middle_in = ResidualBlock(ch, ch, embed_dim, groups)
        self.middle_attention = attention(ch, last)
        self.middle_out = ResidualBlock(ch, ch, embed_dim, groups)
        self.up_blocks, self.up_attention, self.upsamples = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            self.up_blocks.append(ResidualBlock(ch + widths[level], widths[level], embed_dim, groups))
            ch = widths[level]
            self.up_attention.append(attention(ch, level))
            self.upsamples.append(Upsample(ch) if level > 0 else nn.Identity())
        self.output = nn.Sequential(group_norm(ch, groups), nn.SiLU(),
                                    nn.Conv2d(ch, out_features // (height * width), 3, padding=1))
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = embed_time_and_condition(self.time_embedding, self.cond_embedding, t, cond)
        h = self.input(x.reshape(x.shape[0], *self.image_shape))
        skips = []
        for block, attention, downsample in zip(self.down_blocks, self.down_attention, self.downsamples):
            h = attention(block(h, emb))
            skips.append(h)
            h = downsample(h)
        h = self.middle_out(self.middle_attention(self.middle_in(h, emb)), emb)
        for block, attention, upsample in zip(self.up_blocks, self.up_attention, self.upsamples):
            h = upsample(attention(block(torch.cat([h, skips.pop()], dim=1), emb)))
        return self.output(h).reshape(x.shape[0], -1)


@hookimpl
def bayesgen_backbones():
    return {"unet": UNet}
