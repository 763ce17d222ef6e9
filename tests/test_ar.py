"""The autoregressive transformer sampler: mixture likelihood, causality, cache, masks, CLI runs."""
import json
import math

import numpy as np
import pytest
import torch

from bayesgen.app.cli import main
from bayesgen.bayes import bayesianize, ensemble, weight_draws
from bayesgen.core.backbone import BackboneInputs
from bayesgen.core.errors import ConfigError
from bayesgen.core.sampler import FeatureMask
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.model import build_sampler
from bayesgen.plugins.samplers.ar import mixture_log_prob, mixture_sample


def make_ar(n_features=5, n_conditions=0, seed=0, shift=0.3, **options):
    """A small ar sampler with weights moved away from the zero-initialised head by N(0, shift²)."""
    torch.manual_seed(seed)
    config = TrainConfig(sampler="ar", backbone_options={"width": 16, "depth": 1},
                         sampler_options={"width": 16, "depth": 2, "heads": 2, "components": 3, **options})
    ar = build_sampler(config, n_features, BackboneInputs(n_conditions))
    with torch.no_grad():
        for p in ar.parameters():
            p.add_(shift * torch.randn_like(p))
    return ar.eval()


def two_class_mask():
    """Class 1 (second one-hot column) lacks the last two of five features."""
    return FeatureMask(lambda cond: torch.stack([torch.ones_like(cond[:, 0], dtype=torch.bool)] * 3
                                                + [cond[:, 0] > 0.5] * 2, dim=1), absent_std=0.1)


def test_mixture_log_prob_is_the_direct_sum_and_normalised():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(7, 12))  # K = 4: logits, means, log σ
    x = rng.normal(size=7) * 2
    logits, means, log_sigmas = raw[:, :4], raw[:, 4:8], raw[:, 8:]
    weights = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    sigmas = np.exp(log_sigmas)
    direct = np.log((weights * np.exp(-0.5 * ((x[:, None] - means) / sigmas) ** 2)
                     / (sigmas * np.sqrt(2 * np.pi))).sum(1))
    got = mixture_log_prob(torch.tensor(raw), torch.tensor(x), 4).numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-10)
    grid = torch.linspace(-30, 30, 200_001, dtype=torch.float64)
    density = mixture_log_prob(torch.tensor(raw[:1]).expand(len(grid), -1), grid, 4).exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)


def test_mixture_sample_follows_the_mixture():
    raw = torch.tensor([[0.0, math.log(3.0), -2.0, 2.0, math.log(0.5), math.log(0.2)]])  # ¼ N(−2, ½²) + ¾ N(2, 0.2²)
    generator = torch.Generator().manual_seed(0)
    n = 200_000
    values = mixture_sample(raw.expand(n, -1), torch.rand(n, generator=generator),
                            torch.randn(n, generator=generator), 2)
    assert (values < 0).float().mean().item() == pytest.approx(0.25, abs=0.005)
    assert values[values > 0].std().item() == pytest.approx(0.2, rel=0.02)
    assert values[values < 0].mean().item() == pytest.approx(-2.0, abs=0.01)


def test_mixture_components_separate_in_training():
    """Bimodal data: the mixture must beat the best single Gaussian (NLL 1.44), which components
    that start alike never do."""
    ar = make_ar(n_features=1, shift=0.0).train()
    optimizer = torch.optim.Adam(ar.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)

    def bimodal(n):
        return (torch.randint(0, 2, (n, 1), generator=generator) * 2 - 1) + 0.2 * torch.randn(n, 1, generator=generator)

    for _ in range(200):
        loss = ar.loss(bimodal(512))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert -ar.eval().log_prob(bimodal(4000)).mean().item() < 1.0  # the truth: 0.50


def test_density_integrates_to_one():
    ar = make_ar(n_features=2, shift=0.1).double()
    grid = torch.linspace(-12, 12, 401, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        density = ar.log_prob(points).exp().reshape(len(grid), len(grid))
    assert torch.trapezoid(torch.trapezoid(density, grid), grid).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("order", ["natural", "reverse", [2, 0, 4, 1, 3]])
def test_changing_coordinate_j_leaves_the_density_of_earlier_ones(order):
    ar = make_ar(order=order)
    permutation = ar.order.tolist()
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = ar.coordinate_log_probs(x)
        for j in range(5):
            changed = x.clone()
            changed[:, permutation[j]] += 1.5
            after = ar.coordinate_log_probs(changed)
            torch.testing.assert_close(after[:, :j], before[:, :j], rtol=0, atol=1e-6)
            assert (after[:, j:] - before[:, j:]).abs().amax(0).min() > 1e-4  # j itself and every later one


def sample_uncached(ar, n, cond, generator):
    """Reference sampler: coordinate i from the whole prefix re-run through the transformer."""
    present = None if ar.feature_mask is None else ar.feature_mask.present(cond)[:, ar.order]
    dtype = ar.network["transformer"].position_embedding.dtype
    values = torch.zeros(n, 1, dtype=dtype)  # the start token
    ordered = []
    for i in range(ar.n_features):
        uniform = torch.rand(n, generator=generator, dtype=dtype)
        normal = torch.randn(n, generator=generator, dtype=dtype)
        states = ar.network["transformer"](values)
        raw = ar._head(states, torch.arange(i + 1), cond)[:, -1]
        value = mixture_sample(raw, uniform, normal, ar.components).to(dtype)
        if present is not None:
            value = torch.where(present[:, i], value, ar.feature_mask.absent_std * normal)
        ordered.append(value)
        values = torch.cat([values, (value if present is None else value * present[:, i])[:, None]], dim=1)
    return torch.stack(ordered, dim=1)[:, torch.argsort(ar.order)]


@pytest.mark.parametrize("masked", [False, True])
def test_cached_sampler_draws_what_the_uncached_one_draws(masked):
    ar = make_ar(n_conditions=2 if masked else 0, order="reverse").double()
    cond = None
    if masked:
        ar.feature_mask = two_class_mask()
        cond = torch.eye(2, dtype=torch.float64)[torch.arange(64) % 2]
    with torch.no_grad():
        cached = ar.sample(64, cond, generator=torch.Generator().manual_seed(5))
        reference = sample_uncached(ar, 64, cond, torch.Generator().manual_seed(5))
    torch.testing.assert_close(cached, reference, rtol=0, atol=1e-10)
    assert cached.std(0).min() > 0.05


def test_absent_features_are_noise_outside_the_likelihood():
    ar = make_ar(n_conditions=2)
    ar.feature_mask = two_class_mask()
    cond = torch.eye(2)[torch.arange(4000) % 2]
    with torch.no_grad():
        x = ar.sample(4000, cond, generator=torch.Generator().manual_seed(0))
        absent = x[1::2, 3:]
        assert absent.std().item() == pytest.approx(0.1, rel=0.05) and abs(absent.mean().item()) < 0.01
        shifted = x.clone()
        shifted[1::2, 3:] += 3.0
        torch.testing.assert_close(ar.coordinate_log_probs(shifted, cond)[:, :3],
                                   ar.coordinate_log_probs(x, cond)[:, :3])
        assert ar.loss(shifted, cond).item() == pytest.approx(ar.loss(x, cond).item(), rel=1e-6)
        # log_prob counts the fill's density N(0, 0.1²) for the absent slots
        fill = torch.distributions.Normal(0.0, 0.1).log_prob(x[1::2, 3:]).sum(-1)
        present_part = ar.coordinate_log_probs(x, cond)[1::2, :3].sum(-1)
        torch.testing.assert_close(ar.log_prob(x, cond)[1::2], present_part + fill)


def test_loss_is_the_weighted_nll_per_feature():
    ar = make_ar()
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(4))
    one_hot = torch.zeros(8)
    one_hot[3] = 1.0
    torch.testing.assert_close(ar.loss(x, weights=one_hot), ar.loss(x[3:4]))
    torch.testing.assert_close(ar.loss(x), -ar.log_prob(x).mean() / 5)


def test_one_weight_draw_serves_a_whole_event():
    ar = make_ar()
    bayesianize(ar.network, init_log_sigma=-2.0)
    ar.eval()
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), weight_draws(ar, 2, seed=3):
        batched = ar.log_prob(torch.cat([x, x]))
        samples = ar.sample(8, generator=torch.Generator().manual_seed(0))
    members = [ar.log_prob(x).detach() for _ in ensemble(ar, 2, seed=3)]
    torch.testing.assert_close(batched, torch.cat(members))
    assert not torch.allclose(members[0], members[1])
    assert samples.shape == (8, 5) and torch.isfinite(samples).all()


def test_options_are_checked():
    with pytest.raises(ConfigError, match="order must be natural or reverse or a permutation"):
        make_ar(order=[0, 1, 1, 2, 3])
    with pytest.raises(ConfigError, match="width divisible by heads"):
        make_ar(heads=3)
    config = TrainConfig(sampler="ar", backbone="transformer")
    with pytest.raises(ConfigError, match="transformer backbone needs point clouds"):
        build_sampler(config, 5)
    assert make_ar().evaluations_per_event() == 5


AR_TOML = '''[train.backbone_options]
width = 16
depth = 1
[train.sampler_options]
width = 16
depth = 1
heads = 2
components = 4
'''


@pytest.mark.parametrize("process, bayesian", [("z_mumu", False), ("z_mumu_jets", False), ("z_mumu", True)])
def test_ar_trains_generates_and_validates_through_the_cli(tmp_path, process, bayesian):
    config = tmp_path / "ar.toml"
    config.write_text(AR_TOML)
    run = tmp_path / "run"
    assert main(["train", "--process", process, "--sampler", "ar", "--steps", "30", "--events", "2048",
                 "--batch-size", "256", "--out", str(run), "--config", str(config)]
                + (["--bayesian"] if bayesian else [])) == 0
    draws = ["--draws", "2"] if bayesian else []
    assert main(["validate", str(run), "--events", "1000", "--out", str(tmp_path / "report"), *draws]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["sampler"] == "ar" and metrics["evaluations_per_event"] == (17 if process == "z_mumu_jets" else 5)
    assert metrics["likelihood"]["kind"] == "exact" and math.isfinite(metrics["likelihood"]["nll_per_event"])
    assert metrics["observables"]["m_mumu"]["w1"] > 0
    if process == "z_mumu_jets":
        events = np.load(_generate(run, tmp_path / "events.npz"))
        n_jets = events["n_jets"].astype(int)
        assert set(np.unique(n_jets)) == {1, 2, 3}
        assert (events["j3_pt"][n_jets < 3] == 0).all() and (events["j2_pt"][n_jets == 1] == 0).all()
        assert (events["j1_pt"] > 20).all()


def _generate(run, out):
    assert main(["generate", str(run), "--events", "3000", "--out", str(out)]) == 0
    return out
