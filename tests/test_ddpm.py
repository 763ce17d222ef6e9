"""Diffusion formulas, checked against an exact denoiser for Gaussian data."""

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
    with pytest.raises(ConfigError, match="ancestral sampling takes all 100 steps"):
        ddpm.evaluations_per_event(steps=10, solver="ancestral")
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
