"""Denoising diffusion (DDPM) with ancestral and DDIM sampling.

Forward process, ``t = 0 … T−1``:  ``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε``,  ``ᾱ_t = ∏_{s≤t} (1 − β_s)``.
The network sees ``(x_t, (t+1)/T)`` and predicts either ``ε`` or ``v = √ᾱ_t ε − √(1−ᾱ_t) x₀``.
While sampling, the predicted ``x̂₀`` is clipped to the training features' range widened by
``clip_margin`` of its width on each side (``clip = "range"``, as improved diffusion clips images
to [−1, 1]) and ``ε̂`` re-derived from it, so no trajectory leaves the region the network learnt.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.sampler import Sampler, weighted_mean

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")
SOLVERS = ("ancestral", "ddim")
CLIPS = ("range", "none")


def beta_schedule(name: str, timesteps: int) -> np.ndarray:
    """β_t for ``linear`` (1e-4 → 0.02 at T = 1000, scaled by 1000/T) or ``cosine`` (Nichol &
    Dhariwal) schedules; β ≤ 0.999 so that ᾱ stays positive for short schedules."""
    if name == "linear":
        scale = 1000.0 / timesteps
        return np.clip(np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64), 0.0, 0.999)
    if name == "cosine":
        s = 0.008
        steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
        alpha_bar = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, 0.999)
    raise ConfigError(f"unknown noise schedule {name!r}; known: {', '.join(SCHEDULES)}")


class GaussianDiffusion(nn.Module):
    """Owns the noise schedule and every diffusion formula; networks know nothing of it."""

    def __init__(self, timesteps: int = 1000, schedule: str = "linear", prediction: str = "eps",
                 clip: str = "range", clip_margin: float = 0.1):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ConfigError(f"unknown prediction {prediction!r}; known: {', '.join(PREDICTIONS)}")
        if clip not in CLIPS:
            raise ConfigError(f"unknown clip {clip!r}; known: {', '.join(CLIPS)}")
        if clip_margin < 0:
            raise ConfigError(f"clip_margin must be non-negative, got {clip_margin}")
        self.clip, self.clip_margin = clip, clip_margin
        if timesteps < 2:
            raise ConfigError(f"timesteps must be at least 2, got {timesteps}")
        self.timesteps, self.schedule, self.prediction = timesteps, schedule, prediction
        betas = beta_schedule(schedule, timesteps)
        alpha_bar = np.cumprod(1.0 - betas)
        alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
        # Posterior q(x_{t−1} | x_t, x₀) = N(c₀ x₀ + c_t x_t, β̃_t), β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t).
        posterior_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        tables = {
            "alpha_bar": alpha_bar,
            "posterior_c0": betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_ct": (1.0 - alpha_bar_prev) * np.sqrt(1.0 - betas) / (1.0 - alpha_bar),
            "posterior_log_var": np.log(np.append(posterior_var[1], posterior_var[1:])),
        }
        for name, table in tables.items():
            self.register_buffer(name, torch.tensor(table, dtype=torch.float32), persistent=False)

    def network_time(self, t: torch.Tensor) -> torch.Tensor:
        """Integer step ``t`` → the network's time input ``(t+1)/T`` in (0, 1]."""
        return (t.float() + 1.0) / self.timesteps

    def _coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha_bar = self.alpha_bar[t][:, None]
        return alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε``."""
        a, s = self._coefficients(t)
        return a * x0 + s * noise

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network regresses: ``ε`` or ``v = √ᾱ ε − √(1−ᾱ) x₀``."""
        if self.prediction == "eps":
            return noise
        a, s = self._coefficients(t)
        return a * noise - s * x0

    def clip_bounds(self, feature_range: torch.Tensor | None) -> torch.Tensor | None:
        """``(2, n_features)`` bounds of x̂₀: the training range ``[low, high]`` widened by
        ``clip_margin · (high − low)`` on each side; ``None`` (no clipping) with ``clip = "none"``
        or no recorded range."""
        if self.clip == "none" or feature_range is None:
            return None
        margin = self.clip_margin * (feature_range[1] - feature_range[0])
        return torch.stack([feature_range[0] - margin, feature_range[1] + margin])

    def split(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor,
              bounds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Network output → ``(x̂₀, ε̂)``; with ``bounds`` (see :meth:`clip_bounds`) x̂₀ is clipped
        to them and ``ε̂ = (x_t − √ᾱ x̂₀)/√(1−ᾱ)`` follows the clipped x̂₀."""
        a, s = self._coefficients(t)
        if self.prediction == "eps":
            x0, eps = (x_t - s * output) / a, output
        else:
            x0, eps = a * x_t - s * output, s * x_t + a * output
        if bounds is None:
            return x0, eps
        x0 = torch.clamp(x0, bounds[0], bounds[1])
        return x0, (x_t - a * x0) / s

    def ancestral_step(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor,
                       noise: torch.Tensor, bounds: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``x_{t−1} ~ q(x_{t−1} | x_t, x̂₀)``; no noise is added at ``t = 0``."""
        x0, _ = self.split(x_t, t, output, bounds)
        mean = self.posterior_c0[t][:, None] * x0 + self.posterior_ct[t][:, None] * x_t
        std = (0.5 * self.posterior_log_var[t][:, None]).exp() * (t > 0).float()[:, None]
        return mean + std * noise

    def ddim_step(self, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, output: torch.Tensor,
                  noise: torch.Tensor | None = None, eta: float = 0.0,
                  bounds: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM update to ``t_prev`` (``−1`` means the data): ``√ᾱ' x̂₀ + √(1−ᾱ'−σ²) ε̂ + σ z``."""
        x0, eps = self.split(x_t, t, output, bounds)
        alpha_bar = self.alpha_bar[t][:, None]
        alpha_bar_prev = torch.where(t_prev[:, None] >= 0, self.alpha_bar[t_prev.clamp(min=0)][:, None],
                                     torch.ones_like(alpha_bar))
        sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
        x_prev = alpha_bar_prev.sqrt() * x0 + (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * eps
        return x_prev + sigma * noise if noise is not None and eta > 0 else x_prev

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` integer times from ``T−1`` down to ``0``, evenly spaced."""
        if not 1 <= steps <= self.timesteps:
            raise ConfigError(f"DDIM steps must be between 1 and {self.timesteps}, got {steps}")
        return sorted({int(round(v)) for v in np.linspace(0, self.timesteps - 1, steps)}, reverse=True)


class DDPM(Sampler):
    """Denoising diffusion: linear/cosine schedule, ε/v prediction, ancestral or DDIM sampling,
    x̂₀ clipped to the training range (``clip = "range"`` or ``"none"``, ``clip_margin``)."""

    #: the recipe measured for ≤ 20 min on one CPU thread (docs/precision.md)
    training_defaults = {"steps": 24_000, "batch_size": 1024, "lr": 1e-3, "warmup_steps": 500, "ema_decay": 0.9995,
                         "backbone_options": {"mlp": {"width": 256, "depth": 4}},
                         "sampler_options": {"schedule": "cosine", "prediction": "v"}}

    def __init__(self, make_network: Callable[..., nn.Module], n_features: int, timesteps: int = 1000,
                 schedule: str = "linear", prediction: str = "eps", ddim_eta: float = 0.0,
                 clip: str = "range", clip_margin: float = 0.1):
        super().__init__(make_network(n_features), n_features)
        self.diffusion = GaussianDiffusion(timesteps, schedule, prediction, clip, clip_margin)
        self.ddim_eta = ddim_eta

    def loss(self, x, cond=None, generator=None, weights=None):
        t = torch.randint(0, self.diffusion.timesteps, (x.shape[0],), device=x.device, generator=generator)
        noise = torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype)
        x_t = self.diffusion.q_sample(x, t, noise)
        output = self.network(x_t, self.diffusion.network_time(t), cond)
        return weighted_mean((output.float() - self.diffusion.target(x, t, noise)).square().mean(-1), weights)

    def _solver(self, steps: int | None, solver: str | None) -> tuple[str, int]:
        steps = steps or self.diffusion.timesteps
        solver = solver or ("ancestral" if steps == self.diffusion.timesteps else "ddim")
        if solver not in SOLVERS:
            raise ConfigError(f"unknown ddpm solver {solver!r}; known: {', '.join(SOLVERS)}")
        if solver == "ancestral" and steps != self.diffusion.timesteps:
            raise ConfigError(f"ancestral sampling takes all {self.diffusion.timesteps} steps; "
                              f"use --solver ddim for {steps}")
        return solver, steps

    @torch.no_grad()
    def sample(self, n, cond=None, steps=None, solver=None, generator=None):
        solver, steps = self._solver(steps, solver)
        device = self.device
        x = torch.randn((n, self.n_features), device=device, generator=generator)
        bounds = self.diffusion.clip_bounds(self.feature_range)
        times = (list(range(self.diffusion.timesteps - 1, -1, -1)) if solver == "ancestral"
                 else self.diffusion.ddim_timesteps(steps))
        for i, step in enumerate(times):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            output = self.network(x, self.diffusion.network_time(t), cond).float()
            if solver == "ancestral":
                noise = torch.randn(x.shape, device=device, generator=generator)
                x = self.diffusion.ancestral_step(x, t, output, noise, bounds)
            else:
                t_prev = torch.full_like(t, times[i + 1] if i + 1 < len(times) else -1)
                noise = torch.randn(x.shape, device=device, generator=generator) if self.ddim_eta > 0 else None
                x = self.diffusion.ddim_step(x, t, t_prev, output, noise, self.ddim_eta, bounds)
        return x

    def evaluations_per_event(self, steps=None, solver=None):
        solver, steps = self._solver(steps, solver)
        return self.diffusion.timesteps if solver == "ancestral" else len(self.diffusion.ddim_timesteps(steps))


@hookimpl
def bayesgen_samplers():
    return {"ddpm": DDPM}
