"""Diffusion formulas, checked against an exact denoiser for Gaussian data."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from bayesgen.core.errors import ConfigError
from bayesgen.plugins.samplers.ddpm import DDPM, GaussianDiffusion, beta_schedule

DATA_MEAN, DATA_STD = 1.5, 0.4


class ExactDenoiser(nn.Module):
    """The Bayes-optimal ε or v prediction for data ~ N(DATA_MEAN, DATA_STD²), per dimension."""

    def __init__(self, diffusion: GaussianDiffusion):
        super().__init__()
        self.diffusion = diffusion
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, time, cond=None):
        d = self.diffusion
        t = torch.round(time * d.timesteps - 1).long()
        a, s = d._coefficients(t)
        var = DATA_STD**2
        x0 = DATA_MEAN + a * var * (x - a * DATA_MEAN) / (a**2 * var + s**2)
        eps = (x - a * x0) / s
        return eps if d.prediction == "eps" else a * eps - s * x0


def make(prediction, schedule, timesteps=1000):
    ddpm = DDPM(lambda n: nn.Identity(), n_features=2, timesteps=timesteps, schedule=schedule, prediction=prediction)
    ddpm.network = ExactDenoiser(ddpm.diffusion)
    return ddpm


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedules_decrease_to_noise(schedule):
    betas = beta_schedule(schedule, 1000)
    alpha_bar = torch.tensor(betas).neg().add(1).cumprod(0)
    assert (betas > 0).all() and (betas < 1).all()
    assert alpha_bar[0] > 0.99 and alpha_bar[-1] < 1e-3
    assert (alpha_bar[1:] < alpha_bar[:-1]).all()


def test_unknown_schedule_and_prediction_are_rejected():
    with pytest.raises(ConfigError, match="unknown noise schedule 'quadratic'"):
        beta_schedule("quadratic", 10)
    with pytest.raises(ConfigError, match="unknown prediction"):
        GaussianDiffusion(prediction="x0")


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_split_inverts_the_target(prediction):
    diffusion = GaussianDiffusion(100, "cosine", prediction)
    x0, noise = torch.randn(64, 3), torch.randn(64, 3)
    t = torch.randint(0, 100, (64,))
    x_t = diffusion.q_sample(x0, t, noise)
    x0_hat, eps_hat = diffusion.split(x_t, t, diffusion.target(x0, t, noise))
    torch.testing.assert_close(x0_hat, x0, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(eps_hat, noise, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("solver", ["ancestral", "ddim"])
def test_exact_denoiser_reproduces_the_data(prediction, schedule, solver):
    ddpm = make(prediction, schedule)
    samples = ddpm.sample(20_000, solver=solver, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20_000, 2)
    assert samples.mean().item() == pytest.approx(DATA_MEAN, abs=0.015)
    assert samples.std().item() == pytest.approx(DATA_STD, abs=0.01)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_discretisation_error_shrinks_with_steps(schedule):
    """Deterministic DDIM under-disperses at coarse steps; the error must fall as steps grow."""
    errors = []
    for steps in (5, 20, 50, 200):
        samples = make("v", schedule).sample(20_000, steps=steps, generator=torch.Generator().manual_seed(0))
        assert samples.mean().item() == pytest.approx(DATA_MEAN, abs=0.02)
        errors.append(abs(samples.std().item() - DATA_STD))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.01


def test_sampling_is_seeded():
    ddpm = make("eps", "linear", timesteps=20)
    first = ddpm.sample(100, generator=torch.Generator().manual_seed(3))
    again = ddpm.sample(100, generator=torch.Generator().manual_seed(3))
    other = ddpm.sample(100, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_step_counts_and_solver_checks():
    ddpm = make("eps", "linear", timesteps=100)
    assert ddpm.evaluations_per_event() == 100
    assert ddpm.evaluations_per_event(steps=25) == 25
    assert ddpm.evaluations_per_event(steps=100, solver="ddim") == 100
    assert ddpm.evaluations_per_event(steps=10, solver="ancestral") == 10  # the respaced chain
    with pytest.raises(ConfigError, match="unknown ddpm solver 'euler'"):
        ddpm.sample(4, solver="euler")
    with pytest.raises(ConfigError, match="between 1 and 100"):
        ddpm.sample(4, steps=500)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_exact_denoiser_attains_the_analytic_minimum_loss(prediction):
    """For data N(m, S²) the target y (ε or v) and x_t are jointly Gaussian, so the best possible
    loss is E_t Var(y | x_t) = E_t [Var y − Cov(y, x_t)² / Var x_t] with, at a = √ᾱ_t, s = √(1−ᾱ_t):
    ε: 1 − s²/(a²S² + s²);  v = aε − s x₀: a² + s²S² − a²s²(1 − S²)²/(a²S² + s²).
    A wrong target, time or weighting misses it; an output off by c costs exactly c² more."""
    ddpm = make(prediction, "cosine", timesteps=100)
    x = DATA_MEAN + DATA_STD * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    a2 = ddpm.diffusion.alpha_bar.double()
    s2, data_var = 1 - a2, DATA_STD**2
    if prediction == "eps":
        minimum = (1 - s2 / (a2 * data_var + s2)).mean().item()
    else:
        minimum = (a2 + s2 * data_var - a2 * s2 * (1 - data_var) ** 2 / (a2 * data_var + s2)).mean().item()
    loss = ddpm.loss(x, generator=torch.Generator().manual_seed(1)).item()
    assert loss == pytest.approx(minimum, rel=0.01)  # Monte Carlo error ≈ 0.3 %
    ddpm.network.register_forward_hook(lambda module, inputs, output: output + 0.1)
    shifted = ddpm.loss(x, generator=torch.Generator().manual_seed(1)).item()
    assert shifted - loss == pytest.approx(0.1**2, abs=1e-3)  # ± 2c·E[output − target]: noise ≈ 2e-4


class Garbage(nn.Module):
    """A broken network: outputs of order 10⁶ with either sign."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, time, cond=None):
        return 1e6 * torch.sin(1e3 * x + 7.0 * time[:, None])


LOW, HIGH = torch.tensor([-1.0, -2.0]), torch.tensor([3.0, 0.5])


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("solver,steps", [("ancestral", None), ("ddim", 7)])
def test_clipping_keeps_a_garbage_network_in_the_training_range(prediction, solver, steps):
    outputs = {}
    for clip in ("range", "none"):
        ddpm = DDPM(lambda n: nn.Identity(), n_features=2, timesteps=100, prediction=prediction, clip=clip)
        ddpm.network = Garbage()
        ddpm.set_feature_range(LOW, HIGH)
        outputs[clip] = ddpm.sample(500, steps=steps, solver=solver, generator=torch.Generator().manual_seed(1))
    margin = 0.1 * (HIGH - LOW)
    clipped = outputs["range"]
    assert torch.isfinite(clipped).all()
    assert (clipped >= LOW - margin - 1e-5).all() and (clipped <= HIGH + margin + 1e-5).all()
    assert not torch.isfinite(outputs["none"]).all() or outputs["none"].abs().max() > 1e3, \
        "without the guard the same network must run away"


def test_clipping_leaves_a_good_model_alone():
    data = DATA_MEAN + DATA_STD * torch.randn(100_000, 2, generator=torch.Generator().manual_seed(2))
    samples = {}
    for clip in ("range", "none"):
        ddpm = make("eps", "linear")
        ddpm.diffusion.clip = clip
        ddpm.set_feature_range(data.amin(0), data.amax(0))
        samples[clip] = ddpm.sample(20_000, steps=50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples["range"], samples["none"], atol=1e-4, rtol=1e-4)


def test_clip_options_are_checked_and_a_missing_range_means_no_clipping():
    with pytest.raises(ConfigError, match="unknown clip 'dynamic'"):
        GaussianDiffusion(clip="dynamic")
    with pytest.raises(ConfigError, match="clip_margin must be non-negative"):
        GaussianDiffusion(clip_margin=-0.1)
    diffusion = GaussianDiffusion(10)
    assert diffusion.clip_bounds(None) is None
    torch.testing.assert_close(diffusion.clip_bounds(torch.stack([LOW, HIGH])),
                               torch.tensor([[-1.4, -2.25], [3.4, 0.75]]))


def reverse_variance_v(kept, timesteps, schedule):
    """Per kept step, the learned-σ output v at which σ² is the true reverse variance
    Var(x_{s'} | x_s) = β̃' + c₀² Var(x₀ | x_s) of N(DATA_MEAN, DATA_STD²) data on the chain of the
    ``kept`` steps (β' = 1 − ᾱ_s/ᾱ_{s'}; at the last step the decoder's Var(x₀ | x_0))."""
    alpha_bar = np.cumprod(1 - beta_schedule(schedule, timesteps))[kept]
    alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
    beta = 1 - alpha_bar / alpha_bar_prev
    beta_tilde = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
    log_beta_tilde = np.log(np.append(beta_tilde[1], beta_tilde[1:]))  # clipped at the first step
    c0 = np.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)
    var_x0 = DATA_STD**2 * (1 - alpha_bar) / (alpha_bar * DATA_STD**2 + 1 - alpha_bar)
    log_var = np.log(beta_tilde + c0**2 * var_x0)
    return 2 * (log_var - log_beta_tilde) / (np.log(beta) - log_beta_tilde) - 1


class ExactLearnedDenoiser(ExactDenoiser):
    """The exact ε, and as second output the v of :func:`reverse_variance_v` (or a constant)."""

    def __init__(self, diffusion, kept, v=None):
        super().__init__(diffusion)
        table = torch.zeros(diffusion.timesteps, dtype=torch.float64)
        table[kept] = torch.tensor(reverse_variance_v(kept, diffusion.timesteps, diffusion.schedule) if v is None
                                   else np.full(len(kept), v))
        self.register_buffer("v", table.float())

    def forward(self, x, time, cond=None):
        t = torch.round(time * self.diffusion.timesteps - 1).long()
        return torch.cat([super().forward(x, time), self.v[t][:, None].expand_as(x)], dim=-1)


def make_learned(kept_steps=None, v=None, timesteps=1000):
    ddpm = DDPM(lambda n, out: nn.Identity(), n_features=2, timesteps=timesteps, schedule="linear",
                learn_sigma=True)
    kept = list(range(timesteps)) if kept_steps is None else ddpm.diffusion.ddim_timesteps(kept_steps)[::-1]
    ddpm.network = ExactLearnedDenoiser(ddpm.diffusion, kept, v)
    return ddpm


def test_learned_sigma_vlb_term_is_the_closed_form_kl():
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(100, "cosine", "eps", learn_sigma=True)
    x0, x_t, output = torch.randn(64, 3), torch.randn(64, 3), torch.randn(64, 6)
    t = torch.cat([torch.zeros(8, dtype=torch.long), torch.randint(1, 100, (56,))])
    alpha_bar = np.cumprod(1 - beta_schedule("cosine", 100))
    ab, ab_prev = (torch.tensor(a)[t][:, None] for a in (alpha_bar, np.append(1.0, alpha_bar[:-1])))
    beta = 1 - ab / ab_prev
    beta_tilde = beta * (1 - ab_prev) / (1 - ab)
    beta_tilde_1 = (1 - alpha_bar[1] / alpha_bar[0]) * (1 - alpha_bar[0]) / (1 - alpha_bar[1])
    beta_tilde = torch.where(t[:, None] == 0, torch.tensor(beta_tilde_1), beta_tilde)  # β̃₀ = 0 is clipped to β̃₁
    x0_, x_t_, eps, v = x0.double(), x_t.double(), output[:, :3].double(), output[:, 3:].double()

    def posterior_mean(x_start):
        return (ab_prev.sqrt() * beta * x_start + (1 - ab_prev) * (1 - beta).sqrt() * x_t_) / (1 - ab)

    model_mean = posterior_mean((x_t_ - (1 - ab).sqrt() * eps) / ab.sqrt())
    fraction = (v + 1) / 2
    model_std = torch.exp(0.5 * (fraction * beta.log() + (1 - fraction) * beta_tilde.log()))
    model = torch.distributions.Normal(model_mean, model_std)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(posterior_mean(x0_), beta_tilde.sqrt()), model)
    expected = torch.where(t[:, None] > 0, kl, -model.log_prob(x0_)).sum(-1)
    torch.testing.assert_close(diffusion.vlb_term(x0, x_t, t, output).double(), expected, rtol=2e-4, atol=2e-4)

    # the hybrid loss's L_vlb = T L_t per feature, and it trains σ only
    output.requires_grad_(True)
    hybrid = diffusion.hybrid_vlb(x0, x_t, t, output)
    torch.testing.assert_close(hybrid.double(), 100 * expected / 3, rtol=2e-4, atol=2e-3)
    (gradient,) = torch.autograd.grad(hybrid.sum(), output)
    assert gradient[:, :3].abs().max() == 0 and gradient[:, 3:].abs().min() > 0


def test_learned_sigma_respaced_ancestral_sampling_is_exact_with_the_true_variance():
    """On Gaussian data, with the exact ε and the true reverse variance, the respaced 10-step chain
    reproduces the width; the fixed β̃' of the same chain is too narrow, β' too wide."""
    generator = torch.Generator().manual_seed(0)
    learned = make_learned(kept_steps=10)
    assert learned.evaluations_per_event(steps=10) == 10
    samples = learned.sample(40_000, steps=10, generator=generator)
    assert samples.mean().item() == pytest.approx(DATA_MEAN, abs=0.01)
    assert samples.std().item() == pytest.approx(DATA_STD, rel=0.01)
    narrow = make_learned(kept_steps=10, v=-1.0).sample(40_000, steps=10, generator=generator).std().item()
    wide = make_learned(kept_steps=10, v=1.0).sample(40_000, steps=10, generator=generator).std().item()
    assert narrow < 0.95 * DATA_STD and wide > 1.05 * DATA_STD


def test_variational_bound_is_tight_for_the_true_reverse_process():
    """With exact reverse kernels the bound's mean is the data's log-density; the fixed β̃ is looser."""
    n = 10_000
    x = DATA_MEAN + DATA_STD * torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    exact = torch.distributions.Normal(DATA_MEAN, DATA_STD).log_prob(x).sum(-1)
    gap = make_learned(timesteps=200).log_prob_bound(x, generator=torch.Generator().manual_seed(2)) - exact
    assert gap.shape == (n,)
    assert abs(gap.mean().item()) < 3 * gap.std().item() / math.sqrt(n)  # ≈ 0.045 nats
    fixed = make("eps", "linear", timesteps=200).log_prob_bound(x, generator=torch.Generator().manual_seed(2))
    assert (fixed - exact).mean().item() < -1.0
