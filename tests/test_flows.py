"""CFM and INN samplers: solvers, shapes, likelihoods and invertibility."""
import math

import pytest
import torch
from torch import nn

from bayesgen.core.errors import ConfigError
from bayesgen.plugins.backbones.mlp import ResidualMLP
from bayesgen.plugins.samplers.cfm import ConditionalFlowMatching
from bayesgen.plugins.samplers.inn import CouplingINN
from bayesgen.plugins.samplers.ode import integrate

MEAN, STD = 1.5, 0.4


class ExactVelocity(nn.Module):
    """``E[ε − x₀ | x_t]`` for data ~ N(MEAN, STD²) per feature on straight paths; counts its calls."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # places the sampler on a device
        self.calls = 0

    def forward(self, x, t, cond=None):
        self.calls += 1
        t = t[:, None]
        var = (1 - t) ** 2 * STD**2 + t**2
        centred = x - (1 - t) * MEAN
        return t / var * centred - (MEAN + (1 - t) * STD**2 / var * centred)


def gaussian_log_prob(x):
    return (-0.5 * ((x - MEAN) / STD) ** 2 - math.log(STD * math.sqrt(2 * math.pi))).sum(-1)


def exact_cfm(**options):
    return ConditionalFlowMatching(lambda n: ExactVelocity(), n_features=3, **options)


def tiny_backbone(in_features, out_features=None):
    return ResidualMLP(in_features, out_features, width=16, depth=1)


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_solvers_converge_at_their_order(method, order):
    y0 = (torch.ones(1, dtype=torch.float64),)
    errors = [abs(integrate(lambda t, y: (-y[0],), y0, 0.0, 1.0, method, steps)[0].item() - math.exp(-1))
              for steps in (8, 16)]
    assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.25)


def test_adaptive_solver_meets_its_tolerance():
    y0 = (torch.ones(1, dtype=torch.float64),)
    (y,) = integrate(lambda t, y: (-y[0],), y0, 0.0, 1.0, "dopri5", rtol=1e-8, atol=1e-8)
    assert abs(y.item() - math.exp(-1)) < 1e-6
    with pytest.raises(ConfigError, match="unknown ODE solver 'leapfrog'"):
        integrate(lambda t, y: y, y0, 0.0, 1.0, "leapfrog")


@pytest.mark.parametrize("solver,steps", [("euler", 100), ("midpoint", 20), ("rk4", 10), ("dopri5", None)])
def test_cfm_with_exact_velocity_reproduces_the_data(solver, steps):
    cfm = exact_cfm()
    x = cfm.sample(20_000, steps=steps, solver=solver, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 3)
    assert x.mean().item() == pytest.approx(MEAN, abs=0.01)
    assert x.std().item() == pytest.approx(STD, abs=0.01)
    evaluations = cfm.evaluations_per_event(steps, solver)
    assert evaluations == cfm.network.calls  # the network calls sampling really made
    if solver != "dopri5":
        assert evaluations == {"euler": 100, "midpoint": 40, "rk4": 40}[solver]


def test_cfm_log_prob_exact_and_hutchinson():
    cfm = exact_cfm(solver="rk4", steps=20)
    x = MEAN + STD * torch.randn(2000, 3, generator=torch.Generator().manual_seed(1))
    exact = cfm.log_prob(x)
    assert exact.shape == (2000,)
    torch.testing.assert_close(exact, gaussian_log_prob(x), atol=2e-3, rtol=1e-3)
    estimated = cfm.log_prob(x, hutchinson=True, generator=torch.Generator().manual_seed(2))
    assert (estimated - gaussian_log_prob(x)).mean().abs() < 0.02


def test_exact_velocity_attains_the_analytic_minimum_loss():
    """With x₀ ~ N(m, S²), ε ~ N(0, 1), u = ε − x₀ and x_t = (1 − t)x₀ + tε jointly Gaussian, the
    best loss is E_t Var(u | x_t) = E_t [1 + S² − (t − (1 − t)S²)² / ((1 − t)²S² + t²)], t ~ U(0, 1);
    a wrong path, target or sign misses it, and a velocity off by c costs exactly c² more."""
    t = (torch.arange(100_000, dtype=torch.float64) + 0.5) / 100_000
    minimum = (1 + STD**2 - (t - (1 - t) * STD**2) ** 2 / ((1 - t) ** 2 * STD**2 + t**2)).mean().item()
    cfm = exact_cfm()
    x = MEAN + STD * torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0))
    loss = cfm.loss(x, generator=torch.Generator().manual_seed(1)).item()
    assert loss == pytest.approx(minimum, rel=0.01)  # Monte Carlo error ≈ 0.3 %
    cfm.network.register_forward_hook(lambda module, inputs, output: output - 0.1)
    assert cfm.loss(x, generator=torch.Generator().manual_seed(1)).item() - loss == pytest.approx(0.01, abs=1e-3)  # ± 2c·E[v − u]: noise ≈ 2e-4


def test_unknown_cfm_solver_is_named():
    with pytest.raises(ConfigError, match="unknown cfm solver"):
        ConditionalFlowMatching(tiny_backbone, n_features=3).evaluations_per_event(solver="heun")


def perturbed_inn(n_features=5, blocks=3, mixing="rotation"):
    torch.manual_seed(0)
    inn = CouplingINN(tiny_backbone, n_features, blocks=blocks, bins=6, mixing=mixing)
    with torch.no_grad():
        for p in inn.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the identity initialisation
    return inn


@pytest.mark.parametrize("mixing", ["rotation", "permutation"])
def test_inn_inverse_of_forward_is_identity(mixing):
    inn = perturbed_inn(mixing=mixing)
    x = torch.randn(500, 5, generator=torch.Generator().manual_seed(3)) * 2
    z, _ = inn.to_latent(x)
    assert not torch.allclose(z, x, atol=1e-2)
    torch.testing.assert_close(inn.from_latent(z), x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mixing", ["rotation", "permutation"])
def test_inn_log_prob_matches_the_jacobian_determinant(mixing):
    inn = perturbed_inn(n_features=4, blocks=2, mixing=mixing).double()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for row in x:
        jacobian = torch.autograd.functional.jacobian(lambda v: inn.to_latent(v[None])[0][0], row)
        z = inn.to_latent(row[None])[0]
        expected = -0.5 * (z.square().sum() + 4 * math.log(2 * math.pi)) + torch.linalg.slogdet(jacobian)[1]
        assert inn.log_prob(row[None]).item() == pytest.approx(expected.item(), abs=1e-4)


def test_inn_sample_shape_and_one_pass():
    inn = perturbed_inn()
    x = inn.sample(100, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100, 5) and torch.isfinite(x).all()
    assert inn.evaluations_per_event() == 3
    loss = inn.loss(x)
    loss.backward()
    assert math.isfinite(loss.item())
    with pytest.raises(ConfigError, match="at least two features"):
        CouplingINN(tiny_backbone, 1)


def test_inn_permutation_mixing_keeps_each_feature_a_coordinate():
    """Each block's mixing is a permutation: the coupling sees the features themselves, and over
    the recipe's six blocks of a five-feature process every feature is transformed by some block."""
    mixings = CouplingINN(tiny_backbone, 5, blocks=6, mixing="permutation").rotations
    assert set(mixings.unique().tolist()) == {0.0, 1.0}
    assert (mixings.sum(1) == 1).all() and (mixings.sum(2) == 1).all()
    transformed = mixings[:, 2:, :].sum((0, 1))          # the coupling maps the mixed x[2:]
    assert (transformed > 0).all()
    with pytest.raises(ConfigError, match="unknown inn mixing 'shuffle'; known: rotation, permutation"):
        CouplingINN(tiny_backbone, 5, mixing="shuffle")


def test_inn_checkpoint_keeps_the_mixing_it_was_trained_with():
    """The mixings are saved with the weights: a run trained with rotations loads them back
    whatever the recipe's mixing is now."""
    trained = perturbed_inn(mixing="rotation")
    loaded = CouplingINN(tiny_backbone, 5, blocks=3, bins=6, mixing="permutation")
    loaded.load_state_dict(trained.state_dict())
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(loaded.log_prob(x), trained.log_prob(x))


def test_samplers_without_likelihood_say_so():
    from bayesgen.plugins.samplers.ddpm import DDPM
    with pytest.raises(NotImplementedError, match="DDPM sampler has no log-likelihood"):
        DDPM(tiny_backbone, 3, timesteps=10).log_prob(torch.zeros(2, 3))
