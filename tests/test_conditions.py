"""Conditional processes: the condition reaches the network, generation draws it from the
training frequencies, and absent features are noise to the network and zero in the events."""
import numpy as np
import pytest

from bayesgen.core.errors import DataError
from bayesgen.engine.conditions import ConditionDistribution
from bayesgen.engine.generation import generate_events
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.preprocessing import Standardizer
from bayesgen.engine.training import train


def test_condition_frequencies_are_weighted_and_sampled_reproducibly():
    conditions = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=float)
    dist = ConditionDistribution.fit(conditions, weights=np.array([3.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(dist.probabilities, [2 / 6, 4 / 6])  # rows sorted: [0,1] then [1,0]
    a = dist.sample(1000, np.random.default_rng(1))
    np.testing.assert_array_equal(a, dist.sample(1000, np.random.default_rng(1)))
    assert abs(a[:, 0].mean() - 4 / 6) < 0.05
    again = ConditionDistribution.from_state_dict(dist.state_dict())
    np.testing.assert_array_equal(again.values, dist.values)


def test_continuous_or_negative_conditions_are_refused():
    with pytest.raises(DataError, match="must be discrete"):
        ConditionDistribution.fit(np.random.default_rng(0).normal(size=(5000, 1)), names=("ht",))
    with pytest.raises(DataError, match="non-positive summed event weight"):
        ConditionDistribution.fit(np.array([[0.0], [1.0]]), weights=np.array([1.0, -1.0]))


def test_masked_standardisation_ignores_absent_entries():
    features = np.array([[1.0, 10.0], [3.0, 0.0], [5.0, 30.0]])
    mask = np.array([[True, True], [True, False], [True, True]])
    fitted = Standardizer.fit(features, mask=mask)
    np.testing.assert_allclose(fitted.mean, [3.0, 20.0])
    np.testing.assert_allclose(fitted.std, [np.sqrt(8 / 3), 10.0])




def test_generation_follows_the_condition(third_party_plugin, tmp_path, tiny_config):
    run = train(tiny_config(tmp_path / "run", process="toy_switch", sampler="cfm", steps=600, lr=3e-3,
                            sampler_options={}, backbone_options={"width": 32, "depth": 2}), progress=False)
    model = TrainedModel.load(run, "cpu")
    assert model.sampler.network.cond_embedding.in_features == 2
    generated, _ = generate_events(model, 6000, 2000, seed=3, sample_steps=20)
    c, x, y = generated.events.T
    p_one = model.conditions.probabilities[model.conditions.values[:, 1] == 1].item()
    assert abs(p_one - 0.3) < 0.03  # the training sample's fraction
    assert abs(c.mean() - p_one) < 3 * np.sqrt(p_one * (1 - p_one) / 6000)
    # without the condition x would be bimodal in both classes
    assert abs(x[c == 0].mean() + 2) < 0.25 and abs(x[c == 1].mean() - 2) < 0.25
    assert np.all(y[c == 0] == 0.0)
    assert abs(y[c == 1].mean() - 1.0) < 0.2


def test_structured_features_are_standardised_per_channel():
    """Two points × (a, b): each channel's moments pool both points, so swapping points cannot
    change the scaling; absent entries stay out."""
    from bayesgen.engine.preprocessing import feature_channels

    class Cloud:
        name, n_features, feature_shape, channel_axis = "cloud", 4, (2, 2), -1

    channels = feature_channels(Cloud())
    np.testing.assert_array_equal(channels, [0, 1, 0, 1])
    features = np.array([[1.0, 10.0, 3.0, 30.0], [5.0, 50.0, 0.0, 0.0]])
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    fitted = Standardizer.fit(features, mask=mask, channels=channels)
    np.testing.assert_allclose(fitted.mean, [3.0, 30.0, 3.0, 30.0])
    np.testing.assert_allclose(fitted.std, np.sqrt([8 / 3, 800 / 3, 8 / 3, 800 / 3]))
    Cloud.channel_axis = 0
    np.testing.assert_array_equal(feature_channels(Cloud()), [0, 0, 1, 1])
