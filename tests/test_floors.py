"""Statistical floors: each metric between two independent truth samples of the validated sizes."""
import math

import numpy as np
import pytest

from bayesgen.core.errors import DataError
from bayesgen.core.process import Binning, Process
from bayesgen.validation.floors import measure_floors, ratio_floor, size_scale, with_floors
from bayesgen.validation.histogram import Histogram
from bayesgen.validation.metrics import observable_metrics


class Gauss(Process):
    """One standard-normal quantity; an endless Monte Carlo."""

    name = "gauss"
    quantities = feature_names = ("x",)
    binnings = {"x": Binning(-3.0, 3.0, 30, "x")}

    def sample(self, n, seed):
        return np.random.default_rng(seed).normal(size=(n, 1))

    def to_features(self, events):
        return events

    def from_features(self, features, rng, conditions=None):
        return features

    def observables(self, events):
        return {"x": events[:, 0]}


class FiniteGauss(Gauss):
    """The same with only ``available`` held-out events, like a file: asking for more fails."""

    def __init__(self, available):
        self.events = np.random.default_rng(99).normal(size=(available, 1))

    def sample(self, n, seed):
        if n > len(self.events):
            raise DataError(f"only {len(self.events):,} held-out events; asked for {n:,}")
        return self.events[np.random.default_rng(seed).permutation(len(self.events))[:n]]


def floors_of(process, n_truth, n_generated, truth_events=None, repeats=3, seed=0):
    truth_events = process.sample(n_truth, seed=12345) if truth_events is None else truth_events
    return measure_floors(process, process.observables, process.binnings, n_truth, n_generated, seed,
                          truth_events, repeats)


def expected_w1(m):
    """Large-sample E[W1] of two samples of m standard-normal values: F_a − F_b is a Brownian
    bridge of size √(2/m), so E W1 = √(2/m) √(2/π) ∫ √(Φ(1 − Φ)) dx."""
    x = np.linspace(-8, 8, 4001)
    phi = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return math.sqrt(2 / m) * math.sqrt(2 / math.pi) * np.sum(np.sqrt(phi * (1 - phi))) * (x[1] - x[0])


def test_w1_floor_matches_the_brownian_bridge_expectation():
    floors = floors_of(Gauss(), 20_000, 20_000, repeats=8)
    x = floors.observables["x"]
    # W1 compares 5 batches of 4,000; its mean over 8 × 5 batches has a relative error ≈ 0.75/√40
    assert x["w1_floor"] == pytest.approx(expected_w1(4_000), rel=0.15)
    assert 0 < x["w1_floor_std"] < 0.5 * x["w1_floor"]
    assert x["chi2_ndf_floor"] == pytest.approx(29 / 30, abs=0.2)  # χ²(29)/30, mean of 8
    assert floors.summary() == {"n_truth": 20_000, "n_generated": 20_000, "repeats": 8,
                                "source": "8 independent pairs of held-out truth samples of the validated sizes"}


def test_floors_follow_the_sizes_and_scale_between_them():
    small, large = floors_of(Gauss(), 4_000, 4_000, repeats=8), floors_of(Gauss(), 40_000, 40_000, repeats=8)
    for metric in ("w1", "max_rel_dev_bulk"):
        scale = size_scale(metric, (4_000, 4_000), (40_000, 40_000))
        assert scale == pytest.approx(math.sqrt(0.1))
        assert large.observables["x"][f"{metric}_floor"] == pytest.approx(
            scale * small.observables["x"][f"{metric}_floor"], rel=0.25)
    assert size_scale("max_rel_dev_bulk", (1_000, 3_000), (10_000, 10_000)) == pytest.approx(
        math.sqrt((2 / 10_000) / (1 / 1_000 + 1 / 3_000)))
    assert size_scale("chi2_ndf", (10, 10), (1, 1)) == 1.0
    with pytest.raises(ValueError, match="no size scaling"):
        size_scale("auc", (1, 1), (1, 1))


def test_a_file_without_a_second_sample_splits_what_there_is_and_says_so():
    endless = floors_of(Gauss(), 10_000, 10_000, repeats=8).observables["x"]
    file = FiniteGauss(available=12_000)
    floors = floors_of(file, 10_000, 10_000, truth_events=file.sample(10_000, seed=1), repeats=8)
    assert "only 12,000 held-out events" in floors.source and "5,000 + 5,000" in floors.source
    assert "scaled to the validated sizes" in floors.source
    for metric in ("w1", "max_rel_dev_bulk", "chi2_ndf"):  # scaled from 5,000 + 5,000 to 10,000 + 10,000
        assert floors.observables["x"][f"{metric}_floor"] == pytest.approx(endless[f"{metric}_floor"], rel=0.3)


def test_a_shifted_sample_stands_many_floors_away_and_truth_stands_at_one():
    process = Gauss()
    floors = floors_of(process, 20_000, 20_000).observables["x"]
    truth = process.sample(20_000, seed=7)[:, 0]
    edges = process.binnings["x"].edges
    same = with_floors(observable_metrics(truth, process.sample(20_000, seed=8)[:, 0], edges), floors)
    shifted = with_floors(observable_metrics(truth, process.sample(20_000, seed=8)[:, 0] + 0.1, edges), floors)
    assert same["w1_over_floor"] == pytest.approx(same["w1"] / floors["w1_floor"])
    assert same["w1_over_floor"] < 2 and same["max_rel_dev_bulk_over_floor"] < 2
    assert shifted["w1_over_floor"] > 3 and shifted["chi2_ndf_over_floor"] > 3
    assert with_floors({"w1": 1.0}, None) == {"w1": 1.0}


def test_ratio_floor_is_the_spread_of_truth_over_truth():
    edges = np.linspace(-3, 3, 31)
    rng = np.random.default_rng(3)
    truth = Histogram.fill(rng.normal(size=20_000), edges)
    ratios = np.stack([Histogram.fill(rng.normal(size=50_000), edges).fraction / truth.fraction
                       for _ in range(200)])
    predicted = ratio_floor(truth, 50_000)
    # the truth's own fluctuation is common to all 200 ratios: only the generated part varies
    generated_part = np.sqrt(predicted**2 - truth.sumw2 / truth.counts**2)
    np.testing.assert_allclose(ratios.std(axis=0) / ratios.mean(axis=0), generated_part, rtol=0.25)
    assert np.isnan(ratio_floor(Histogram.fill([0.5], [0.0, 1.0, 2.0]), 10)[1])


def test_a_small_file_split_keeps_a_floor_for_ten_times_as_many_generated_events():
    """300 held-out events against 3,000 generated: split 100 + 200 (a proportional 27 + 273
    would leave too few for any floor), scaled to 300 + 3,000 like fresh pairs of those sizes."""
    file = FiniteGauss(available=300)
    floors = floors_of(file, 300, 3_000, truth_events=file.sample(300, seed=0))
    assert "300 truth events into 100 + 200" in floors.source
    endless = floors_of(Gauss(), 300, 3_000, repeats=8).observables["x"]
    assert floors.observables["x"]["w1_floor"] == pytest.approx(endless["w1_floor"], rel=0.3)
