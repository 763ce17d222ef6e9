"""The interface every sampler plugin implements.

A sampler owns a network ``f(x, t, cond)`` (``x``: ``(batch, n_features)``, ``t``: ``(batch,)``
in [0, 1]) together with a training loss and a sampling procedure. Core trains and samples
through this interface alone and never branches on a sampler's name.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Sampler(nn.Module, ABC):
    """A generative model over standardised features ``(n, n_features)``."""

    def __init__(self, network: nn.Module, n_features: int):
        super().__init__()
        self.network = network
        self.n_features = n_features

    @abstractmethod
    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss on a batch of features ``x``; noise is drawn from ``generator``."""

    @abstractmethod
    def sample(self, n: int, cond: torch.Tensor | None = None, steps: int | None = None,
               solver: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` feature vectors ``(n, n_features)`` on the sampler's device; ``steps`` and
        ``solver`` default to the sampler's own choice."""

    @abstractmethod
    def evaluations_per_event(self, steps: int | None = None, solver: str | None = None) -> int:
        """Network evaluations needed to generate one event with these settings."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
