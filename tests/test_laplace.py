"""The Laplace posterior (bayes.laplace) and `bayesgen laplace` (engine.laplace)."""
import numpy as np
import pytest
import torch
from torch import nn

from bayesgen.app.cli import main
from bayesgen.bayes import bayesianize, variational_layers, weight_draws
from bayesgen.bayes.laplace import Curvature, best_prior_std, center_inputs, empirical_fisher, kronecker_factors
from bayesgen.core.errors import ConfigError, RunError
from bayesgen.engine.checkpoint import load_checkpoint
from bayesgen.engine.config import LaplaceConfig
from bayesgen.engine.laplace import laplace
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import train


class PointNet(nn.Module):
    """Events of 3 points × 2 coordinates → a per-point hidden layer, summed, then an output
    layer: a variational layer seeing several rows per event and one seeing one."""

    def __init__(self):
        super().__init__()
        self.points = nn.Linear(2, 4)
        self.output = nn.Linear(4, 1)

    def forward(self, x):
        return self.output(torch.tanh(self.points(x)).sum(1))


def per_event_nll(net, x, y):
    return 0.5 * (net(x)[:, 0] - y).square()


def test_the_fisher_is_the_sum_of_each_events_squared_gradient():
    torch.manual_seed(0)
    net = bayesianize(PointNet(), center_inputs=True)
    x, y, w = torch.randn(40, 3, 2), torch.randn(40), torch.rand(40) * 2
    net.eval()
    center_inputs(net, [lambda: net(x)])
    curvature = empirical_fisher(net, [(lambda s=s: per_event_nll(net, x[s], y[s]).sum(), w[s])
                                       for s in (slice(0, 25), slice(25, 40))])
    layers = variational_layers(net)
    expected_w = [torch.zeros_like(layer.weight_mean) for layer in layers]
    expected_b = [torch.zeros_like(layer.bias_mean) for layer in layers]
    for n in range(len(x)):
        params = [p for layer in layers for p in (layer.weight_mean, layer.bias_mean)]
        grads = torch.autograd.grad(per_event_nll(net, x[n:n + 1], y[n:n + 1]).sum(), params)
        for i in range(len(layers)):
            expected_w[i] += w[n] * grads[2 * i].square()
            expected_b[i] += w[n] * grads[2 * i + 1].square()
    assert curvature.events == 40
    for i in range(len(layers)):
        torch.testing.assert_close(curvature.weight[i], expected_w[i], rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(curvature.bias[i], expected_b[i], rtol=1e-4, atol=1e-7)


def test_centring_keeps_the_function_and_centres_on_the_mean_input():
    torch.manual_seed(1)
    net = bayesianize(nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)), center_inputs=True)
    net.eval()
    x = torch.randn(200, 3) + 2.0
    before = net(x).detach()
    center_inputs(net, [lambda: net(x[:120]), lambda: net(x[120:])])
    torch.testing.assert_close(net(x).detach(), before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(variational_layers(net)[0].input_center, x.mean(0), rtol=1e-5, atol=1e-5)


def test_the_laplace_width_of_a_linear_gaussian_model_is_the_exact_posterior_width():
    """y = a x + ε, ε ~ N(0, 1): the posterior of a is N(â, 1/(Σx² + 1/σ_p²)); the empirical
    Fisher Σ r²x² at the fit estimates Σx² (E r² = 1) to a few per cent."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(20_000, 1, generator=gen)
    y = 0.7 * x[:, 0] + torch.randn(20_000, generator=gen)
    net = bayesianize(nn.Sequential(nn.Linear(1, 1, bias=False)))
    layer = variational_layers(net)[0]
    with torch.no_grad():
        layer.weight_mean.copy_((x[:, 0] @ y) / (x[:, 0] @ x[:, 0]))
    net.eval()
    curvature = empirical_fisher(net, [(lambda: per_event_nll(net, x, y).sum(), None)])
    curvature.set_posterior(net, prior_std=1.0)
    exact = float((x.square().sum() + 1.0) ** -0.5)
    assert float(layer.weight_log_sigma.detach().exp()) == pytest.approx(exact, rel=0.03)


def test_the_kronecker_posterior_of_a_linear_gaussian_model_holds_its_correlations():
    """y = W x + ε (two outputs, unit noise) on correlated inputs: the exact posterior of each
    output's row [w | b] has the covariance (Σ x̃x̃ᵀ + 1/σ_p²)⁻¹, x̃ = (x, 1); K-FAC's G is Σ δδᵀ ≈ N·1
    (uncorrelated unit residuals), so its matrix-normal draws reproduce that covariance,
    off-diagonal terms included, which a diagonal posterior cannot."""
    gen = torch.Generator().manual_seed(5)
    n = 40_000
    x = torch.randn(n, 2, generator=gen) @ torch.tensor([[1.0, 0.8], [0.0, 0.6]]) + torch.tensor([0.5, -0.3])
    truth = torch.tensor([[0.7, -0.4], [0.2, 0.9]])
    y = x @ truth.T + torch.randn(n, 2, generator=gen)
    net = bayesianize(nn.Sequential(nn.Linear(2, 2)), posterior="kronecker")
    layer = variational_layers(net)[0]
    design = torch.cat([x, torch.ones(n, 1)], 1)
    solution = torch.linalg.lstsq(design, y).solution.T
    with torch.no_grad():
        layer.weight_mean.copy_(solution[:, :2])
        layer.bias_mean.copy_(solution[:, 2])
    net.eval()
    factors = kronecker_factors(net, [(lambda: 0.5 * (net(x) - y).square().sum(), None)])
    factors.set_posterior(net, prior_std=10.0)
    draws = 4000
    with weight_draws(net, draws, seed=1):
        rows = torch.cat([layer._weights, layer._biases[..., None]], -1)
    exact = torch.linalg.inv(design.T @ design + torch.eye(3) / 100.0)
    for output in range(2):
        sampled = torch.cov(rows[:, output].T)
        torch.testing.assert_close(sampled, exact, rtol=0.1, atol=0.05 * float(exact.diagonal().max()))
        assert float(exact[0, 1]) / float(exact[0, 0].sqrt() * exact[1, 1].sqrt()) < -0.5
    marginal = layer.weight_log_sigma.exp()
    torch.testing.assert_close(marginal[0], exact.diagonal()[:2].sqrt(), rtol=0.05, atol=0)


def test_the_evidence_chooses_the_prior_width_of_well_measured_weights():
    """With every weight pinned down by the data, the evidence peaks where σ_p² is the mean θ²."""
    net = bayesianize(nn.Sequential(nn.Linear(50, 40)))
    layer = variational_layers(net)[0]
    with torch.no_grad():
        layer.weight_mean.copy_(torch.randn(40, 50, generator=torch.Generator().manual_seed(3)) * 0.3)
        layer.bias_mean.copy_(torch.randn(40, generator=torch.Generator().manual_seed(4)) * 0.3)
    curvature = Curvature([torch.full((40, 50), 1e8)], [torch.full((40,), 1e8)], events=1000)
    rms = float(torch.cat([layer.weight_mean.flatten(), layer.bias_mean]).detach().square().mean().sqrt())
    assert best_prior_std(net, curvature) == pytest.approx(rms, rel=0.07)
    assert curvature.log_evidence(net, rms) > curvature.log_evidence(net, 3 * rms)
    assert curvature.log_evidence(net, rms) > curvature.log_evidence(net, rms / 3)


def test_the_evidence_per_layer_gives_each_layer_the_width_of_its_own_weights():
    """Two well-measured layers whose weights differ tenfold in size: one width for both falls
    between them; per layer, each gets the rms of its own weights, at a larger evidence."""
    net = bayesianize(nn.Sequential(nn.Linear(50, 40), nn.Linear(40, 30)))
    rms = []
    for layer, size, seed in zip(variational_layers(net), (0.03, 0.3), (5, 6)):
        with torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            layer.weight_mean.copy_(torch.randn(layer.weight_mean.shape, generator=generator) * size)
            layer.bias_mean.copy_(torch.randn(layer.bias_mean.shape, generator=generator) * size)
        rms.append(float(torch.cat([layer.weight_mean.flatten(), layer.bias_mean]).detach().square().mean().sqrt()))
    curvature = Curvature([torch.full((40, 50), 1e8), torch.full((30, 40), 1e8)],
                          [torch.full((40,), 1e8), torch.full((30,), 1e8)], events=1000)
    each = best_prior_std(net, curvature, per_layer=True)
    assert each == [pytest.approx(r, rel=0.07) for r in rms]
    one = best_prior_std(net, curvature)
    assert rms[0] < one < rms[1]
    assert curvature.log_evidence(net, each) > curvature.log_evidence(net, one)
    curvature.set_posterior(net, each)
    assert [layer.prior_std for layer in variational_layers(net)] == each
    with pytest.raises(ValueError, match="1 prior widths for 2 variational layers"):
        curvature.log_evidence(net, [0.1])


def test_a_layer_that_does_not_see_one_row_per_event_is_named():
    net = bayesianize(nn.Sequential(nn.Linear(2, 1)))
    net.eval()
    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match="one row per event"):
        empirical_fisher(net, [(lambda: net(x.reshape(2, 4, 2).sum(0)).sum(), torch.ones(8))])


@pytest.fixture(scope="module")
def laplace_run(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("laplace") / "run"
    return laplace(trained_run, LaplaceConfig(out=str(out), threads=1))


def test_laplace_keeps_the_trained_network_and_gives_it_a_band(trained_run, laplace_run):
    out, record = laplace_run
    deterministic, bayesian = TrainedModel.load(trained_run, "cpu"), TrainedModel.load(out, "cpu")
    assert bayesian.config.bayesian and record["prior_from"] == "evidence" and record["events"] == 4096
    assert record["posterior"] == "kronecker" and bayesian.config.bayes_options["posterior"] == "kronecker"
    layers = variational_layers(bayesian.sampler)
    assert [name for name, m in bayesian.sampler.named_modules() if m in layers] == record["layers"] != []
    x = torch.randn(64, deterministic.process.n_features)
    t = torch.rand(64)
    with torch.no_grad():
        torch.testing.assert_close(bayesian.sampler.network(x, t), deterministic.sampler.network(x, t),
                                   rtol=1e-4, atol=1e-5)
    sigmas = torch.cat([layer.weight_log_sigma.detach().exp().flatten() for layer in layers])
    assert 0 < float(sigmas.min()) and float(sigmas.max()) <= record["prior_std"] * (1 + 1e-4)
    assert float(sigmas.median()) < record["prior_std"]
    with weight_draws(bayesian.sampler.network, 2, seed=0), torch.no_grad():
        members = bayesian.sampler.network(x.repeat(2, 1), t.repeat(2)).reshape(2, 64, -1)
    assert not torch.allclose(members[0], members[1])


def test_laplace_refuses_what_it_cannot_make(trained_run, laplace_run, tmp_path, capsys, tiny_config):
    out, _ = laplace_run
    with pytest.raises(RunError, match="already holds a run"):
        laplace(trained_run, LaplaceConfig(out=str(out), threads=1))
    with pytest.raises(ConfigError, match="leaves no layer"):
        laplace(trained_run, LaplaceConfig(out=str(tmp_path / "none"), deterministic_layers="*", threads=1))
    with pytest.raises(RunError, match="Bayesian run already"):
        laplace(out, LaplaceConfig(out=str(tmp_path / "again"), threads=1))
    assert main(["train", "--out", str(out), "--resume", "--threads", "1"]) == 2
    assert "Laplace posterior" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="bayesgen laplace"):
        train(tiny_config(tmp_path / "kron", bayesian=True, bayes_options={"posterior": "kronecker"}), progress=False)


def test_a_prior_per_layer_is_recorded_and_rebuilt_with_the_run(trained_run, tmp_path, capsys):
    out = tmp_path / "per_layer"
    assert main(["laplace", str(trained_run), "--out", str(out), "--prior-per-layer", "--threads", "1"]) == 0
    assert "by the evidence per layer, σ " in capsys.readouterr().out
    model = TrainedModel.load(out, "cpu")
    record = load_checkpoint(out)["laplace"]
    layers = variational_layers(model.sampler)
    assert record["prior_from"] == "evidence per layer" and len(record["prior_std"]) == len(layers) > 1
    assert [layer.prior_std for layer in layers] == record["prior_std"]
    with pytest.raises(ConfigError, match="give one of them"):
        LaplaceConfig(prior_std=0.1, prior_per_layer=True)


def test_the_cli_writes_a_run_that_validates_with_draws(trained_run, tmp_path, capsys):
    out = tmp_path / "bayes"
    assert main(["laplace", str(trained_run), "--out", str(out), "--prior-std", "0.05", "--posterior", "diagonal",
                 "--threads", "1"]) == 0
    assert "prior N(0, 0.05²) given" in capsys.readouterr().out
    assert TrainedModel.load(out, "cpu").config.bayes_options["posterior"] == "mean_field"
    assert main(["validate", str(out), "--draws", "3", "--events", "2000", "--threads", "1",
                 "--out", str(tmp_path / "report")]) == 0
