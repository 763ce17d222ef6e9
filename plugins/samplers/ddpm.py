"""Denoising diffusion (DDPM) with ancestral and DDIM sampling, optionally with learned variances.

Forward process, ``t = 0 … T−1``:  ``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε``,  ``ᾱ_t = ∏_{s≤t} (1 − β_s)``.
The network sees ``(x_t, (t+1)/T)`` and predicts either ``ε`` or ``v = √ᾱ_t ε − √(1−ᾱ_t) x₀``.
Reverse step ``p(x_{t−1} | x_t) = N(μ_θ, σ_t²)`` with ``μ_θ`` the posterior mean at the predicted
``x̂₀`` and ``σ_t² = β̃_t`` (fixed), or, with ``learn_sigma`` (Nichol & Dhariwal 2021), a second
network output ``v`` per feature: ``log σ_t² = (v+1)/2 · log β_t + (1 − (v+1)/2) · log β̃_t``,
trained by ``L_simple + λ L_vlb`` with the mean's gradient stopped in ``L_vlb``.
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


def normal_kl(mean_1: torch.Tensor, log_var_1: torch.Tensor, mean_2: torch.Tensor,
              log_var_2: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) = ½ (log σ₂²/σ₁² + (σ₁² + (μ₁ − μ₂)²)/σ₂² − 1)``, elementwise."""
    return 0.5 * (log_var_2 - log_var_1 + torch.exp(log_var_1 - log_var_2)
                  + (mean_1 - mean_2).square() * torch.exp(-log_var_2) - 1.0)


def normal_nll(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``−log N(x; μ, σ²)``, elementwise."""
    return 0.5 * (log_var + (x - mean).square() * torch.exp(-log_var) + math.log(2 * math.pi))


class GaussianDiffusion(nn.Module):
    """Owns the noise schedule and every diffusion formula; networks know nothing of it.

    ``kept_steps`` respaces the chain (Nichol & Dhariwal's ``space_timesteps``): only these steps
    of the ``timesteps``-step schedule remain, with ``β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}}`` so that
    every kept ``ᾱ`` is unchanged; chain step ``i`` shows the network the time of step ``s_i``.
    """

    def __init__(self, timesteps: int = 1000, schedule: str = "linear", prediction: str = "eps",
                 clip: str = "range", clip_margin: float = 0.1, learn_sigma: bool = False,
                 kept_steps: list[int] | None = None):
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
        self.schedule, self.prediction, self.learn_sigma = schedule, prediction, learn_sigma
        self.schedule_timesteps = timesteps
        kept = np.arange(timesteps) if kept_steps is None else np.asarray(sorted(kept_steps))
        self.timesteps = len(kept)
        alpha_bar = np.cumprod(1.0 - beta_schedule(schedule, timesteps))[kept]
        alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
        betas = 1.0 - alpha_bar / alpha_bar_prev
        # Posterior q(x_{t−1} | x_t, x₀) = N(c₀ x₀ + c_t x_t, β̃_t), β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t).
        posterior_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        tables = {
            "alpha_bar": alpha_bar,
            "posterior_c0": betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_ct": (1.0 - alpha_bar_prev) * np.sqrt(1.0 - betas) / (1.0 - alpha_bar),
            "posterior_log_var": np.log(np.append(posterior_var[1], posterior_var[1:])),
            "log_beta": np.log(betas),
            "network_times": (kept + 1.0) / timesteps,
        }
        for name, table in tables.items():
            self.register_buffer(name, torch.tensor(table, dtype=torch.float32), persistent=False)

    def respaced(self, steps: int) -> "GaussianDiffusion":
        """This diffusion with ``steps`` evenly spaced steps kept (itself when all are)."""
        if steps == self.timesteps:
            return self
        return GaussianDiffusion(self.schedule_timesteps, self.schedule, self.prediction, self.clip, self.clip_margin,
                                 self.learn_sigma, self.ddim_timesteps(steps)).to(self.alpha_bar.device)

    def network_time(self, t: torch.Tensor) -> torch.Tensor:
        """Chain step ``t`` → the network's time input ``(s+1)/T`` in (0, 1] of its schedule step ``s``."""
        return self.network_times[t]

    def mean_output(self, output: torch.Tensor) -> torch.Tensor:
        """The ε/v part of the network output."""
        return output.chunk(2, dim=-1)[0] if self.learn_sigma else output

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

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(x_{t−1} | x_t, x₀) = N(c₀ x₀ + c_t x_t, β̃_t)`` as ``(mean, log variance)``."""
        mean = self.posterior_c0[t][:, None] * x0 + self.posterior_ct[t][:, None] * x_t
        return mean, self.posterior_log_var[t][:, None].expand_as(mean)

    def reverse(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor,
                bounds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``p(x_{t−1} | x_t) = N(μ_θ, σ_t²)`` as ``(mean, log variance)``: the posterior at ``x̂₀``
        (clipped to ``bounds``), with β̃_t or the learned interpolation between log β_t and log β̃_t."""
        x0, _ = self.split(x_t, t, self.mean_output(output), bounds)
        mean, log_var = self.posterior(x0, x_t, t)
        if self.learn_sigma:
            fraction = (output.chunk(2, dim=-1)[1] + 1.0) / 2.0
            log_var = fraction * self.log_beta[t][:, None] + (1.0 - fraction) * log_var
        return mean, log_var

    def ancestral_step(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor,
                       noise: torch.Tensor, bounds: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``x_{t−1} ~ p(x_{t−1} | x_t)``; no noise is added at ``t = 0``."""
        mean, log_var = self.reverse(x_t, t, output, bounds)
        return mean + (0.5 * log_var).exp() * (t > 0).float()[:, None] * noise

    def vlb_term(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor,
                 bounds: torch.Tensor | None = None) -> torch.Tensor:
        """``L_t`` per event ``(n,)`` in nats, summed over features: ``KL(q(x_{t−1}|x_t,x₀) ‖ p(x_{t−1}|x_t))``
        for ``t > 0``, the decoder's ``−log p(x₀ | x₁)`` (Gaussian) at ``t = 0``."""
        mean, log_var = self.reverse(x_t, t, output, bounds)
        kl = normal_kl(*self.posterior(x0, x_t, t), mean, log_var)
        return torch.where(t[:, None] > 0, kl, normal_nll(x0, mean, log_var)).sum(-1)

    def hybrid_vlb(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The hybrid loss's ``L_vlb`` per event ``(n,)``, in nats per feature: ``T · L_t`` (``t``
        uniform, so its mean is ``Σ_t L_t``) with the mean's gradient stopped: it trains σ only."""
        mean_part, sigma_part = output.chunk(2, dim=-1)
        frozen = torch.cat([mean_part.detach(), sigma_part], dim=-1)
        return self.timesteps * self.vlb_term(x0, x_t, t, frozen) / x0.shape[-1]

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """``L_T = KL(q(x_T | x₀) ‖ N(0, I))`` per event ``(n,)`` in nats."""
        alpha_bar = self.alpha_bar[-1]
        return normal_kl(alpha_bar.sqrt() * x0, (1.0 - alpha_bar).log().expand_as(x0),
                         torch.zeros_like(x0), torch.zeros_like(x0)).sum(-1)

    def ddim_step(self, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, output: torch.Tensor,
                  noise: torch.Tensor | None = None, eta: float = 0.0,
                  bounds: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM update to ``t_prev`` (``−1`` means the data): ``√ᾱ' x̂₀ + √(1−ᾱ'−σ²) ε̂ + σ z``."""
        x0, eps = self.split(x_t, t, self.mean_output(output), bounds)
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
    """Denoising diffusion: linear/cosine schedule, ε/v prediction, fixed or learned σ, ancestral or DDIM
    sampling, x̂₀ clipped to the training range (``clip = "range"`` or ``"none"``, ``clip_margin``).

    Ancestral sampling with fewer ``steps`` than ``timesteps`` runs the respaced chain
    (:meth:`GaussianDiffusion.respaced`); it is the default for few steps with ``learn_sigma``,
    DDIM without. ``vlb_weight`` is λ of the hybrid loss ``L_simple + λ L_vlb`` (learned σ only).
    """

    #: the recipe measured for ≤ 20 min on one CPU thread (docs/precision.md)
    training_defaults = {"steps": 24_000, "batch_size": 1024, "lr": 1e-3, "warmup_steps": 500, "ema_decay": 0.9995,
                         "backbone_options": {"mlp": {"width": 256, "depth": 4}},
                         "sampler_options": {"schedule": "cosine", "prediction": "v"}}

    def __init__(self, make_network: Callable[..., nn.Module], n_features: int, timesteps: int = 1000,
                 schedule: str = "linear", prediction: str = "eps", ddim_eta: float = 0.0,
                 clip: str = "range", clip_margin: float = 0.1, learn_sigma: bool = False,
                 vlb_weight: float = 0.001):
        # with learned σ the network outputs the ε/v prediction and one v per feature
        super().__init__(make_network(n_features, 2 * n_features) if learn_sigma else make_network(n_features),
                         n_features)
        self.diffusion = GaussianDiffusion(timesteps, schedule, prediction, clip, clip_margin, learn_sigma)
        self.ddim_eta, self.vlb_weight = ddim_eta, vlb_weight

    def loss(self, x, cond=None, generator=None, weights=None):
        t = torch.randint(0, self.diffusion.timesteps, (x.shape[0],), device=x.device, generator=generator)
        noise = torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype)
        x_t = self.diffusion.q_sample(x, t, noise)
        output = self.network(x_t, self.diffusion.network_time(t), cond).float()
        losses = (self.diffusion.mean_output(output) - self.diffusion.target(x, t, noise)).square().mean(-1)
        if self.diffusion.learn_sigma:
            losses = losses + self.vlb_weight * self.diffusion.hybrid_vlb(x, x_t, t, output)
        return weighted_mean(losses, weights)

    @torch.no_grad()
    def log_prob_bound(self, x, cond=None, generator=None):
        """``−(L_T + Σ_{t<T} L_t)`` per event ``(n,)``, each ``L_t`` at one draw of ``x_t ~ q(x_t | x₀)``,
        for the reverse process as it samples (x̂₀ clipped): T network calls per event."""
        bounds = self.diffusion.clip_bounds(self.feature_range)
        bound = self.diffusion.prior_kl(x)
        for step in range(self.diffusion.timesteps):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            x_t = self.diffusion.q_sample(x, t, torch.randn(x.shape, device=x.device, generator=generator))
            output = self.network(x_t, self.diffusion.network_time(t), cond).float()
            bound = bound + self.diffusion.vlb_term(x, x_t, t, output, bounds)
        return -bound

    def _solver(self, steps: int | None, solver: str | None) -> tuple[str, int]:
        steps = steps or self.diffusion.timesteps
        solver = solver or ("ancestral" if steps == self.diffusion.timesteps or self.diffusion.learn_sigma
                            else "ddim")
        if solver not in SOLVERS:
            raise ConfigError(f"unknown ddpm solver {solver!r}; known: {', '.join(SOLVERS)}")
        self.diffusion.ddim_timesteps(steps)  # checks the range
        return solver, steps

    @torch.no_grad()
    def sample(self, n, cond=None, steps=None, solver=None, generator=None):
        solver, steps = self._solver(steps, solver)
        device = self.device
        x = torch.randn((n, self.n_features), device=device, generator=generator)
        bounds = self.diffusion.clip_bounds(self.feature_range)
        diffusion = self.diffusion.respaced(steps) if solver == "ancestral" else self.diffusion
        times = (list(range(diffusion.timesteps - 1, -1, -1)) if solver == "ancestral"
                 else self.diffusion.ddim_timesteps(steps))
        for i, step in enumerate(times):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            output = self.network(x, diffusion.network_time(t), cond).float()
            if solver == "ancestral":
                noise = torch.randn(x.shape, device=device, generator=generator)
                x = diffusion.ancestral_step(x, t, output, noise, bounds)
            else:
                t_prev = torch.full_like(t, times[i + 1] if i + 1 < len(times) else -1)
                noise = torch.randn(x.shape, device=device, generator=generator) if self.ddim_eta > 0 else None
                x = self.diffusion.ddim_step(x, t, t_prev, output, noise, self.ddim_eta, bounds)
        return x

    def evaluations_per_event(self, steps=None, solver=None):
        solver, steps = self._solver(steps, solver)
        return len(self.diffusion.ddim_timesteps(steps))


@hookimpl
def bayesgen_samplers():
    return {"ddpm": DDPM}
