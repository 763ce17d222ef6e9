"""Variational linear layer: mean-field Gaussian weights and biases.

Posterior ``q(w) = N(μ, σ²)`` per weight with ``σ = exp(log_sigma)`` (log of the standard
deviation, not of the variance); prior ``p(w) = N(0, prior_std²)``. With ``center_inputs`` the
layer computes ``y = (x − m) wᵀ + b``, ``m`` the running mean of its inputs (a buffer, momentum
CENTER_MOMENTUM, updated in training): on inputs offset from 0 the posterior couples the bias to
every weight (intercept and slopes), a coupling a mean-field ``q`` cannot hold, so its band at the
inputs' mean comes out too wide by √(1 + Σ m_i²/Var x_i) for independent inputs (see
``tests/test_bayes.py``); centred, the bias is the output at the inputs' mean and the coupling is
gone. Three ways to evaluate (``x̃`` = x − m with centring, else x):

* training — local reparameterisation: ``y = x̃ μᵀ + b_μ + √(x̃² σ²ᵀ + σ_b²) ⊙ ε``,
  fresh ``ε`` per call and per row (Kingma et al. 2015);
* ``mean`` — the posterior means, deterministic;
* ``draws`` — ``M`` weight samples fixed until redrawn; rows of the input are split into ``M``
  equal consecutive blocks, block ``m`` using sample ``m``, as one batched matmul. ``M = 1`` is
  one ensemble member, reused for every call of a whole sampling trajectory.
"""
from __future__ import annotations

import math

import pyro.distributions as dist
from pyro.distributions.kl import kl_divergence
import torch
from torch import nn

LOG_SIGMA_RANGE = (-15.0, 2.0)
CENTER_MOMENTUM = 0.01   #: weight of each training batch's mean input in the running centre m


class VariationalLinear(nn.Module):
    """Drop-in replacement of :class:`torch.nn.Linear` with a Gaussian posterior over weights."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, prior_std: float = 1.0,
                 init_log_sigma: float = -9.0, center_inputs: bool = False):
        super().__init__()
        self.in_features, self.out_features, self.prior_std = in_features, out_features, prior_std
        self.weight_mean = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_log_sigma = nn.Parameter(torch.full((out_features, in_features), init_log_sigma))
        self.bias_mean = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.bias_log_sigma = nn.Parameter(torch.full((out_features,), init_log_sigma)) if bias else None
        nn.init.kaiming_uniform_(self.weight_mean, a=math.sqrt(5))
        if center_inputs and not bias:
            raise ValueError("center_inputs needs a bias: centring gives the layer an intercept")
        self.register_buffer("input_center", torch.zeros(in_features) if center_inputs else None)
        self.mode = "mean"
        self._weights: torch.Tensor | None = None  # (M, out, in) fixed draws
        self._biases: torch.Tensor | None = None   # (M, out)

    @classmethod
    def from_linear(cls, linear: nn.Linear, prior_std: float, init_log_sigma: float,
                    center_inputs: bool = False) -> "VariationalLinear":
        """A variational layer whose posterior means are ``linear``'s weights (the same function
        while the centre is 0)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, prior_std, init_log_sigma,
                    center_inputs and linear.bias is not None)
        with torch.no_grad():
            layer.weight_mean.copy_(linear.weight)
            if linear.bias is not None:
                layer.bias_mean.copy_(linear.bias)
        return layer.to(linear.weight.device)

    def _centered(self, x: torch.Tensor) -> torch.Tensor:
        """``x − m`` with centring (in training, ``m`` first moves towards the batch's mean
        input), else ``x``."""
        if self.input_center is None:
            return x
        if self.training:
            with torch.no_grad():
                self.input_center.lerp_(x.detach().reshape(-1, self.in_features).mean(0).to(self.input_center.dtype),
                                        CENTER_MOMENTUM)
        return x - self.input_center.to(x.dtype)

    def _sigma(self, log_sigma: torch.Tensor) -> torch.Tensor:
        return log_sigma.clamp(*LOG_SIGMA_RANGE).exp()

    def posteriors(self) -> list[dist.Normal]:
        """The posterior distributions of the weights (and biases)."""
        pairs = [(self.weight_mean, self.weight_log_sigma)]
        if self.bias_mean is not None:
            pairs.append((self.bias_mean, self.bias_log_sigma))
        return [dist.Normal(mean, self._sigma(log_sigma)) for mean, log_sigma in pairs]

    def width_parameters(self) -> list[nn.Parameter]:
        """The log σ parameters (the posterior widths)."""
        return [p for p in (self.weight_log_sigma, self.bias_log_sigma) if p is not None]

    def kl_divergence(self) -> torch.Tensor:
        """``Σ KL(q(w) ‖ p(w))`` over every weight and bias (summed, not averaged)."""
        return sum(kl_divergence(q, dist.Normal(torch.zeros_like(q.loc), self.prior_std)).sum()
                   for q in self.posteriors())

    def draw(self, draws: int, generators: list[torch.Generator]) -> None:
        """Fix ``draws`` weight samples, sample ``m`` from ``generators[m]``, and use them."""
        device = self.weight_mean.device
        weights, biases = [], []
        for generator in generators[:draws]:
            noise = torch.randn(self.weight_mean.shape, device=device, generator=generator)
            weights.append(self.weight_mean + self._sigma(self.weight_log_sigma) * noise)
            if self.bias_mean is not None:
                noise = torch.randn(self.bias_mean.shape, device=device, generator=generator)
                biases.append(self.bias_mean + self._sigma(self.bias_log_sigma) * noise)
        self._weights = torch.stack(weights).detach()
        self._biases = torch.stack(biases).detach() if biases else None
        self.mode = "draws"

    def use_mean(self) -> None:
        self._weights = self._biases = None
        self.mode = "mean"

    def drawn_offsets(self) -> torch.Tensor:
        """The fixed draws' offsets from the posterior means, ``[ΔW | Δb]`` ``(M, out, in + 1)``
        (Δb 0 without a bias)."""
        if self._weights is None:
            raise ValueError("no weights drawn: call draw first")
        biases = (torch.zeros_like(self._weights[..., 0]) if self._biases is None
                  else self._biases - self.bias_mean.detach())
        return torch.cat([self._weights - self.weight_mean.detach(), biases[..., None]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._centered(x)
        if self.training:
            mean = nn.functional.linear(x, self.weight_mean, self.bias_mean)
            variance = nn.functional.linear(
                x.square(), self._sigma(self.weight_log_sigma).square(),
                None if self.bias_log_sigma is None else self._sigma(self.bias_log_sigma).square())
            return mean + variance.clamp(min=1e-30).sqrt() * torch.randn_like(mean)
        if self.mode == "mean":
            return nn.functional.linear(x, self.weight_mean, self.bias_mean)
        draws = self._weights.shape[0]
        if draws == 1:
            return nn.functional.linear(x, self._weights[0], None if self._biases is None else self._biases[0])
        if x.shape[0] % draws:
            raise ValueError(f"a batch of {x.shape[0]} rows cannot be split over {draws} weight draws")
        blocks = x.reshape(draws, -1, self.in_features)  # (M, rows per draw, in)
        weights = self._weights.transpose(1, 2).to(x.dtype)
        out = (torch.bmm(blocks, weights) if self._biases is None
               else torch.baddbmm(self._biases[:, None, :].to(x.dtype), blocks, weights))
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias_mean is not None}, prior_std={self.prior_std}, "
                f"center_inputs={self.input_center is not None}, mode={self.mode}")


class KroneckerLinear(VariationalLinear):
    """A linear layer whose weights and bias ``W̃ = [W | b]`` (``out × (in + 1)``) have the
    matrix-normal posterior of a Kronecker-factored Laplace fit (:mod:`bayesgen.bayes.laplace`):

        W̃ = M̃ + Q_out (Z ⊙ S) Q_inᵀ,   Z ~ N(0, 1) per entry,

    ``Q_in``, ``Q_out`` the eigenvectors of the two Kronecker factors and ``S`` the posterior
    standard deviation along each pair of them. It draws ensembles like its parent (``mean`` and
    ``draws`` modes; inputs centred alike); ``weight_log_sigma``/``bias_log_sigma`` hold the
    marginal widths. It is made from a trained network, not trained: training mode is an error."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, prior_std: float = 1.0,
                 init_log_sigma: float = -9.0, center_inputs: bool = False):
        if not bias:
            raise ValueError("a KroneckerLinear layer needs a bias (its posterior covers [W | b])")
        super().__init__(in_features, out_features, bias, prior_std, init_log_sigma, center_inputs)
        self.register_buffer("basis_in", torch.eye(in_features + 1))
        self.register_buffer("basis_out", torch.eye(out_features))
        self.register_buffer("scale", torch.zeros(out_features, in_features + 1))

    def draw(self, draws: int, generators: list[torch.Generator]) -> None:
        mean = torch.cat([self.weight_mean, self.bias_mean[:, None]], dim=1)
        samples = torch.stack([
            mean + self.basis_out @ (torch.randn(mean.shape, device=mean.device, generator=generator) * self.scale)
            @ self.basis_in.T for generator in generators[:draws]]).detach()
        self._weights, self._biases = samples[..., :-1].contiguous(), samples[..., -1].contiguous()
        self.mode = "draws"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("a KroneckerLinear layer holds a Laplace posterior and is not trained")
        return super().forward(x)
