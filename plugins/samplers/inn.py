"""Invertible coupling network trained by maximum likelihood.

``x = g(z)``, ``z ~ N(0, I)``:  ``log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|`` with ``f = g⁻¹``.
``f`` alternates fixed random mixings (``mixing``: Haar-random rotations, or permutations of the
features) with coupling blocks: the block splits the features into
``(x_a, x_b)`` and maps ``x_b`` through a monotonic rational-quadratic spline (zuko) whose
parameters a backbone computes from ``x_a`` (and the condition), ``x_a`` passing unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from zuko.transforms import MonotonicRQSTransform

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.sampler import Sampler, standard_normal_log_prob, weighted_mean


class SplineCoupling(nn.Module):
    """One coupling block: ``x_b ↦ RQS(x_b; θ(x_a))`` with ``bins`` spline bins on ``[−bound, bound]``."""

    def __init__(self, conditioner: nn.Module, n_features: int, bins: int, bound: float):
        super().__init__()
        self.conditioner, self.bins, self.bound = conditioner, bins, bound
        self.n_a = n_features // 2

    def _transform(self, x_a: torch.Tensor, cond) -> MonotonicRQSTransform:
        time = torch.zeros(x_a.shape[0], device=x_a.device, dtype=x_a.dtype)
        params = self.conditioner(x_a, time, cond).to(x_a.dtype)
        params = params.reshape(x_a.shape[0], -1, 3 * self.bins - 1)
        widths, heights, derivatives = params.split([self.bins, self.bins, self.bins - 1], dim=-1)
        return MonotonicRQSTransform(widths, heights, derivatives, bound=self.bound)

    def forward(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Data direction → latent: ``(y, log |det ∂y/∂x|)``."""
        x_a, x_b = x[:, :self.n_a], x[:, self.n_a:]
        y_b, ladj = self._transform(x_a, cond).call_and_ladj(x_b)
        return torch.cat([x_a, y_b], dim=-1), ladj.sum(-1)

    def inverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        y_a, y_b = y[:, :self.n_a], y[:, self.n_a:]
        return torch.cat([y_a, self._transform(y_a, cond).inv(y_b)], dim=-1)


def full_precision_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` outside any autocast region (a rotation in bf16 would break invertibility)."""
    with torch.autocast(a.device.type, enabled=False):
        return a @ b.to(a.dtype)


def random_rotation(n: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal ``(n, n)`` matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def random_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random ``(n, n)`` permutation matrix."""
    return torch.eye(n)[torch.randperm(n, generator=generator)]


#: values of the ``mixing`` option: the orthogonal map in front of each coupling block. A rotation
#: mixes every feature into every coupling; a permutation keeps each feature a coordinate of its
#: own, so that the splines can draw a sharp structure along one feature (a Jacobian peak, an edge)
MIXINGS = {"rotation": random_rotation, "permutation": random_permutation}


class CouplingINN(Sampler):
    """Invertible network: spline coupling blocks and random mixings, trained by likelihood.

    ``network`` is the list of coupling blocks (each registered once, its conditioner inside it);
    sampling calls the blocks' conditioners, which are what ``--compile`` compiles."""

    #: the recipe of docs/precision_mixing.md: permutations in front of the couplings (measured
    #: against rotations there), 10,000 steps, 17.5 min on both cores of a 2-core CPU, where 12,000
    #: measured the same and took 21 (on one thread 12,000 took 19 min on a faster day, precision.md)
    training_defaults = {"steps": 10_000, "batch_size": 1024, "lr": 1e-3, "warmup_steps": 500, "ema_decay": 0.9995,
                         "backbone_options": {"mlp": {"width": 128, "depth": 3}},
                         "sampler_options": {"blocks": 6, "bins": 16, "mixing": "permutation"}}

    def __init__(self, make_network: Callable[..., nn.Module], n_features: int, blocks: int = 6,
                 bins: int = 10, bound: float = 5.0, mixing: str = "rotation"):
        if n_features < 2:
            raise ConfigError("the inn sampler needs at least two features to couple")
        if mixing not in MIXINGS:
            raise ConfigError(f"unknown inn mixing {mixing!r}; known: {', '.join(MIXINGS)}")
        n_a = n_features // 2
        super().__init__(nn.ModuleList(
            SplineCoupling(make_network(n_a, (n_features - n_a) * (3 * bins - 1)), n_features, bins, bound)
            for _ in range(blocks)), n_features)
        generator = torch.Generator().manual_seed(n_features)
        self.register_buffer("rotations", torch.stack([MIXINGS[mixing](n_features, generator)
                                                       for _ in range(blocks)]))

    @property
    def couplings(self) -> nn.ModuleList:
        """The coupling blocks, in the data → latent order."""
        return self.network

    def sampling_networks(self) -> list[tuple[nn.Module, str]]:
        return [(coupling, "conditioner") for coupling in self.couplings]

    def to_latent(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log |det ∂z/∂x|)``; only the conditioners follow an enclosing autocast, the
        rotations and splines run in the input's precision."""
        logdet = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for rotation, coupling in zip(self.rotations, self.couplings):
            x, ladj = coupling(full_precision_matmul(x, rotation.T), cond)
            logdet = logdet + ladj
        return x, logdet

    def from_latent(self, z: torch.Tensor, cond=None) -> torch.Tensor:
        for rotation, coupling in zip(reversed(self.rotations), reversed(self.couplings)):
            z = full_precision_matmul(coupling.inverse(z, cond), rotation)
        return z

    def log_prob(self, x: torch.Tensor, cond=None, **_) -> torch.Tensor:
        """Exact ``log p(x)`` per event ``(n,)`` in feature space."""
        z, logdet = self.to_latent(x, cond)
        return standard_normal_log_prob(z) + logdet

    def loss(self, x, cond=None, generator=None, weights=None):
        return -weighted_mean(self.log_prob(x, cond), weights) * self.likelihood_scale()

    def likelihood_scale(self) -> float:
        """The loss is the NLL per event averaged over the features."""
        return 1.0 / self.n_features

    @torch.no_grad()
    def sample(self, n, cond=None, steps=None, solver=None, generator=None):
        z = torch.randn((n, self.n_features), device=self.device, generator=generator)
        return self.from_latent(z, cond)

    def evaluations_per_event(self, steps=None, solver=None):
        return len(self.couplings)


@hookimpl
def bayesgen_samplers():
    return {"inn": CouplingINN}
