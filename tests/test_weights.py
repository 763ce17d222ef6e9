"""Event weights: weighted standardisation and weighted sampler losses."""
import numpy as np
import pytest
import torch

from bayesgen.core.sampler import weighted_mean
from bayesgen.engine.preprocessing import Standardizer
from bayesgen.plugins.backbones.mlp import ResidualMLP
from bayesgen.plugins.samplers.cfm import ConditionalFlowMatching
from bayesgen.plugins.samplers.ddpm import DDPM
from bayesgen.plugins.samplers.inn import CouplingINN


def backbone(in_features, out_features=None):
    return ResidualMLP(in_features, out_features, width=16, depth=1)


def test_weighted_standardisation():
    features = np.array([[0.0], [10.0]])
    fitted = Standardizer.fit(features, np.array([3.0, 1.0]))
    assert fitted.mean[0] == pytest.approx(2.5)
    assert fitted.std[0] == pytest.approx(np.sqrt(0.75 * 2.5**2 + 0.25 * 7.5**2))
    assert Standardizer.fit(features).mean[0] == pytest.approx(5.0)


def test_weighted_mean_allows_negative_weights():
    values = torch.tensor([1.0, 2.0, 4.0])
    assert weighted_mean(values, None).item() == pytest.approx(7 / 3)
    assert weighted_mean(values, torch.tensor([1.0, -0.5, 1.0])).item() == pytest.approx(4.0 / 1.5)


def test_inn_loss_weights_select_events():
    torch.manual_seed(0)
    inn = CouplingINN(backbone, 4, blocks=2)
    x = torch.randn(8, 4)
    one_hot = torch.zeros(8)
    one_hot[3] = 1.0
    torch.testing.assert_close(inn.loss(x, weights=one_hot), inn.loss(x[3:4]))


@pytest.mark.parametrize("sampler", [lambda: DDPM(backbone, 3, timesteps=20),
                                     lambda: ConditionalFlowMatching(backbone, 3)])
def test_uniform_weights_leave_the_loss_unchanged(sampler):
    torch.manual_seed(1)
    model, x = sampler(), torch.randn(16, 3)
    plain = model.loss(x, generator=torch.Generator().manual_seed(5))
    weighted = model.loss(x, generator=torch.Generator().manual_seed(5), weights=torch.full((16,), 2.5))
    torch.testing.assert_close(plain, weighted)
    zeroed = torch.ones(16)
    zeroed[8:] = 0
    assert not torch.allclose(plain, model.loss(x, generator=torch.Generator().manual_seed(5), weights=zeroed))
