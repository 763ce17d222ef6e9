"""The linearised band: each posterior member as the mean network's events weighted by its density
ratio to first order in the weights (bayes/linearised.py, validate --band linearised)."""
import pytest
import torch

from bayesgen.app.validate import validate
from bayesgen.bayes import variational_layers
from bayesgen.bayes.linearised import linearised_weights, member_offsets
from bayesgen.core.errors import ConfigError
from bayesgen.engine.config import LaplaceConfig, TrainConfig, ValidateConfig
from bayesgen.engine.laplace import laplace
from bayesgen.engine.model import build_sampler
from bayesgen.engine.training import train


def test_a_member_s_weight_is_its_density_ratio_to_first_order():
    """A member 10⁻⁴ off the means changes the exact likelihood by about 0.4 %: ``w_m`` is
    ``p_m(x) / p*(x)`` to within its second order (0.3 % of that change, measured); a member at
    the means weighs every event 1."""
    sampler = build_sampler(TrainConfig(sampler="inn", bayesian=True, backbone_options={"width": 16, "depth": 1}), 3)
    sampler.eval()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    layers = variational_layers(sampler)
    generator = torch.Generator().manual_seed(0)
    offsets = [torch.randn(2, layer.out_features, layer.in_features + 1, generator=generator) * 1e-4
               for layer in layers]
    for offset in offsets:
        offset[0] = 0
    weights = linearised_weights(sampler, lambda: -sampler.log_prob(x).sum(), offsets)
    before = sampler.log_prob(x).detach()
    with torch.no_grad():
        for layer, offset in zip(layers, offsets):
            layer.weight_mean += offset[1, :, :-1]
            layer.bias_mean += offset[1, :, -1]
        ratio = (sampler.log_prob(x) - before).exp()
    change = float((ratio - 1).abs().max())
    assert change > 3e-3
    assert float((weights[1] - ratio).abs().max()) < 0.05 * change
    torch.testing.assert_close(weights[0], torch.ones(64))


def test_the_offsets_are_those_of_the_members_drawn_with_the_same_seed():
    sampler = build_sampler(TrainConfig(sampler="inn", bayesian=True, backbone_options={"width": 16, "depth": 1}), 3)
    first, again, other = (member_offsets(sampler, 3, seed) for seed in (5, 5, 6))
    assert len(first) == len(variational_layers(sampler)) and first[0].shape[0] == 3
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0]) and float(first[0].abs().max()) > 0


@pytest.fixture(scope="module")
def inn_laplace_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("linearised")
    run = train(TrainConfig(process="z_mumu", sampler="inn", steps=200, batch_size=256, events=4096, threads=1,
                            backbone_options={"width": 32, "depth": 1}, sampler_options={"blocks": 2},
                            out=str(root / "inn")), progress=False)
    return laplace(run, LaplaceConfig(out=str(root / "laplace"), threads=1))[0]


def test_validate_draws_a_linearised_band_from_the_mean_network_s_events(inn_laplace_run, tmp_path):
    """Four members share 4 × 2,000 events of the posterior-mean network: the band has a width,
    its coverage is measured, and the weights' spread is reported."""
    config = dict(events=2000, truth_events=2000, draws=4, threads=1)
    report = validate(inn_laplace_run, ValidateConfig(band="linearised", out=str(tmp_path / "l"), **config),
                      progress=False)
    assert report["band"] == "linearised" and report["n_generated"] >= 7900
    m_mumu = report["observables"]["m_mumu"]
    assert m_mumu["sigma_pred_rel_median"] > 0 and 0 <= m_mumu["coverage_1sigma"] <= 1
    assert 0 < report["linearised_weights"]["std"] < 1
    sampled = validate(inn_laplace_run, ValidateConfig(out=str(tmp_path / "s"), **config), progress=False)
    assert sampled["band"] == "sampled" and "linearised_weights" not in sampled


def test_the_linearised_band_needs_a_bayesian_run_with_a_log_likelihood(trained_run, tmp_path):
    with pytest.raises(ConfigError, match="deterministic"):
        validate(trained_run, ValidateConfig(band="linearised", draws=2, events=100, threads=1,
                                             out=str(tmp_path / "d")), progress=False)
    ddpm_laplace, _ = laplace(trained_run, LaplaceConfig(out=str(tmp_path / "laplace"), threads=1))
    with pytest.raises(ConfigError, match="exact log-likelihood.*ddpm"):
        validate(ddpm_laplace, ValidateConfig(band="linearised", draws=2, events=100, threads=1,
                                              out=str(tmp_path / "b")), progress=False)
    with pytest.raises(ConfigError, match="unknown band 'wide'; known: sampled, linearised"):
        ValidateConfig(band="wide")
