"""Tests of validation histograms, metrics and plots."""

import json
import warnings

import numpy as np
import pytest

from bayesgen.core.process import Binning
from bayesgen.validation.histogram import BandHistogram, Histogram
from bayesgen.validation.metrics import (
    ONE_SIGMA,
    band_metrics,
    calibrated_coverage_probability,
    coverage_over_truths,
    chi2_ndf,
    max_rel_dev_bulk,
    observable_metrics,
    wasserstein_1d,
)
from bayesgen.validation.plots import plot_observable

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _hist(counts, edges=None):
    """Unit-weight histogram with given in-range counts and no overflow."""
    counts = np.asarray(counts, dtype=float)
    edges = np.arange(len(counts) + 1, dtype=float) if edges is None else np.asarray(edges, float)
    return Histogram(edges=edges, counts=counts, sumw2=counts.copy(), total=float(counts.sum()))


# --- Histogram -------------------------------------------------------------------------------


def test_fill_matches_numpy_and_total_includes_overflow():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000)
    weights = rng.uniform(0.5, 1.5, size=values.size)
    edges = np.linspace(-1.5, 2.0, 15)
    h = Histogram.fill(values, edges, weights)
    expected, _ = np.histogram(values, bins=edges, weights=weights)
    expected_w2, _ = np.histogram(values, bins=edges, weights=weights**2)
    np.testing.assert_allclose(h.counts, expected)
    np.testing.assert_allclose(h.sumw2, expected_w2)
    assert h.total == pytest.approx(weights.sum())
    assert h.total > h.counts.sum() + 100  # a sizeable part lies outside [-1.5, 2]
    np.testing.assert_allclose(h.fraction, expected / weights.sum())
    np.testing.assert_allclose(h.fraction_error, np.sqrt(expected_w2) / weights.sum())


def test_unweighted_fill_counts_and_overflow():
    h = Histogram.fill([-5.0, 0.1, 0.2, 1.5, 2.0, 7.0, np.inf], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(h.counts, [2.0, 2.0])  # 2.0 is in the last bin (numpy rule)
    np.testing.assert_array_equal(h.sumw2, [2.0, 2.0])
    assert h.total == 7.0
    np.testing.assert_allclose(h.centers, [0.5, 1.5])
    np.testing.assert_allclose(h.widths, [1.0, 1.0])


def test_density_integrates_to_in_range_fraction():
    rng = np.random.default_rng(1)
    values = rng.exponential(size=5_000)
    edges = np.array([0.0, 0.1, 0.3, 0.7, 1.5, 3.0])  # non-uniform widths
    h = Histogram.fill(values, edges)
    in_range = np.mean(values <= 3.0)
    assert np.sum(h.density * h.widths) == pytest.approx(in_range)
    assert in_range < 0.99
    np.testing.assert_allclose(h.density_error, np.sqrt(h.counts) / values.size / h.widths)


def test_nan_values_raise_with_count_and_first_index():
    values = np.array([0.1, 0.2, 0.3, np.nan, 0.5, np.nan])
    with pytest.raises(ValueError, match=r"2 NaN.*index 3"):
        Histogram.fill(values, [0.0, 1.0])


def test_bad_edges_raise():
    with pytest.raises(ValueError, match="increasing"):
        Histogram.fill([0.5], [0.0, 1.0, 1.0])


def test_band_histogram_parts_match_numpy():
    rng = np.random.default_rng(2)
    edges = np.linspace(-3, 3, 13)
    hists = [Histogram.fill(rng.normal(size=2_000), edges) for _ in range(6)]
    band = BandHistogram.from_histograms(hists)
    dens = np.stack([h.density for h in hists])
    sampling_var = np.stack([h.density_error**2 for h in hists]).mean(axis=0)
    assert band.n_draws == 6
    np.testing.assert_allclose(band.edges, edges)
    np.testing.assert_allclose(band.mean, dens.mean(axis=0))
    np.testing.assert_allclose(band.spread, dens.std(axis=0, ddof=1))
    np.testing.assert_allclose(band.sampling, np.sqrt(sampling_var))
    np.testing.assert_allclose(band.sigma_pred**2, np.clip(dens.var(axis=0, ddof=1) - sampling_var, 0, None))
    np.testing.assert_allclose(band.stat_error, np.sqrt(sampling_var / 6))
    np.testing.assert_allclose(band.density_error, np.hypot(band.sigma_pred, band.stat_error))
    assert np.all(band.spread > 0)

    single = BandHistogram.from_histograms(hists[:1])
    assert single.n_draws == 1
    np.testing.assert_array_equal(single.sigma_pred, np.zeros(12))
    np.testing.assert_allclose(single.mean, hists[0].density)
    np.testing.assert_allclose(single.stat_error, hists[0].density_error)


def _members_and_truth(member_means, n_events, edges, seed):
    """A truth histogram of N(0, 1) and one member histogram per mean, N(mean, 1), of n_events each."""
    rng = np.random.default_rng(seed)
    truth = Histogram.fill(rng.normal(size=n_events), edges)
    band = BandHistogram.from_histograms([Histogram.fill(rng.normal(mu, 1.0, n_events), edges) for mu in member_means])
    return truth, band


def test_members_drawn_from_the_truth_have_no_model_spread():
    """Ten members that are truth itself (zero model uncertainty), 20,000 events each: the raw
    spread of their histograms is sampling noise (median 3 % of the density per bin, the figure
    the band used to report as σ_pred); with it removed, σ_pred must fall to ≤ 20 % of that.
    Coverage, now with the ensemble mean's statistical error, must sit near 68 %; the positive
    noise that survives the clipping of σ²_pred lifts it a little. Measured over 100 seeds:
    σ_pred/raw 0.05 on average (0.15 at most for a mean of 8 seeds); coverage 0.727 ± 0.093
    per seed, so 0.73 ± 0.07 (3σ) for the mean of 16."""
    edges = np.linspace(-3, 3, 31)
    raw, honest, coverage = [], [], []
    for seed in range(16):
        truth, band = _members_and_truth(np.zeros(10), 20_000, edges, seed)
        bulk = truth.fraction >= 0.01
        raw.append(np.median(band.spread[bulk] / band.mean[bulk]))
        metrics = band_metrics(truth, band)
        honest.append(metrics["sigma_pred_rel_median"])
        coverage.append(metrics["coverage_1sigma"])
        assert metrics["coverage_bins"] == bulk.sum() >= 20
        assert metrics["sigma_sampling_rel_median"] == pytest.approx(raw[-1], rel=0.3)
    assert np.mean(raw) == pytest.approx(0.03, rel=0.2)
    assert np.mean(honest) <= 0.2 * np.mean(raw)
    assert np.mean(coverage) == pytest.approx(0.73, abs=0.07)


def test_members_from_shifted_gaussians_give_their_known_spread_back():
    """Members N(μ_m, 1) with μ_m spread by τ = 0.05, 50,000 events each: the exact spread of
    their true bin densities (Φ differences at the realised μ_m) is known. In the bins where it
    exceeds the sampling noise, Σ σ²_pred must equal Σ σ²_true within 3 of its errors,
    Var(s²_between − s²_sampling) ≈ (4 σ²_true v + 2 v²)/(M − 1) per bin (v the sampling
    variance; over 40 seeds this z-score has mean −0.15 and std 1.05), whereas the raw spread is
    too large by the sampling variance, many errors away. Where the density does not move to first
    order in μ (its maximum), σ_pred is compatible with zero."""
    from math import erf, sqrt

    edges = np.linspace(-3, 3, 31)
    means = np.random.default_rng(11).normal(0.0, 0.05, 20)
    truth, band = _members_and_truth(means, 50_000, edges, seed=12)
    cdf = np.vectorize(lambda x: 0.5 * (1 + erf(x / sqrt(2))))
    true_density = np.stack([np.diff(cdf(edges - mu)) / np.diff(edges) for mu in means])
    true_var = true_density.var(axis=0, ddof=1)
    v = band.sampling**2
    used = true_var > v
    assert used.sum() >= 15
    error = np.sqrt(np.sum((4 * true_var * v + 2 * v**2)[used]) / (len(means) - 1))
    assert np.sum(band.sigma_pred[used] ** 2) == pytest.approx(np.sum(true_var[used]), abs=3 * error)
    assert np.sum(band.spread[used] ** 2) - np.sum(true_var[used]) == pytest.approx(np.sum(v[used]), abs=3 * error)
    assert np.sum(v[used]) > 4 * error  # the raw spread misses by more than 4 errors
    peak = np.argmin(true_var)
    assert band.sigma_pred[peak] <= 3 * np.sqrt(2 / (len(means) - 1)) * band.sampling[peak]


def test_coverage_over_truth_samples_averages_the_noise_of_one_truth_away():
    """One band (10 members of 20,000 events) against 20 independent truths of 20,000 events: a
    band of the truth's own shape covers as one truth sample says on average (≈ 0.73, see
    above), and to within about 0.09/√20; the truths alone scatter it by ±0.09. A band shifted
    by 0.15 σ misses most bins, far more than its error below that."""
    edges = np.linspace(-3, 3, 31)
    rng = np.random.default_rng(21)
    truths = [Histogram.fill(rng.normal(size=20_000), edges) for _ in range(20)]
    for shift, low, high in ((0.0, 0.66, 0.80), (0.15, 0.0, 0.35)):
        band = BandHistogram.from_histograms([Histogram.fill(rng.normal(shift, 1.0, 20_000), edges)
                                              for _ in range(10)])
        single = np.array([band_metrics(truth, band)["coverage_1sigma"] for truth in truths])
        result = coverage_over_truths(truths, band)
        assert result["coverage_truths"] == 20
        assert result["coverage_1sigma_truths"] == pytest.approx(single.mean())
        assert result["coverage_1sigma_truths_error"] == pytest.approx(single.std(ddof=1) / np.sqrt(20))
        assert low <= result["coverage_1sigma_truths"] <= high, (shift, result)
        assert result["coverage_1sigma_truths_error"] < 0.03
    assert result["coverage_1sigma_truths"] < ONE_SIGMA - 10 * result["coverage_1sigma_truths_error"]
    with pytest.raises(ValueError, match="at least two"):
        coverage_over_truths(truths[:1], band)


def test_the_coverage_without_the_band_says_whether_the_truth_resolves_the_error():
    """Members of a generator 0.05 σ off, spread by 0.05 σ between them: against 2,000 truth
    events the statistical errors alone already cover about as a calibrated band would (the
    coverage cannot see the band), against 1,000,000 they cover few bins and the band covers
    many more; the band never covers fewer bins than the statistical errors alone."""
    edges = np.linspace(-3, 3, 31)
    rng = np.random.default_rng(8)
    band = BandHistogram.from_histograms([Histogram.fill(rng.normal(0.05 + 0.05 * rng.normal(), 1.0, 200_000), edges)
                                          for _ in range(20)])
    small = coverage_over_truths([Histogram.fill(rng.normal(size=2_000), edges) for _ in range(10)], band)
    truths = [Histogram.fill(rng.normal(size=1_000_000), edges) for _ in range(3)]
    large = coverage_over_truths(truths, band)
    assert small["coverage_1sigma_stat_truths"] > 0.6
    assert large["coverage_1sigma_stat_truths"] < 0.3
    assert large["coverage_1sigma_truths"] > large["coverage_1sigma_stat_truths"] + 0.3
    for truth in truths:
        metrics = band_metrics(truth, band)
        assert metrics["coverage_1sigma"] >= metrics["coverage_1sigma_stat"]
    assert large["coverage_1sigma_stat_truths"] == pytest.approx(
        np.mean([band_metrics(truth, band)["coverage_1sigma_stat"] for truth in truths]))


def test_calibrated_coverage_probability_counts_the_bins_within_the_range():
    """Simulated calibrated bands (each bin covered with probability erf(1/√2)) land within
    0.55–0.85 as often as the formula says; 14 bins allow 8 to 11 covered, 1 bin never."""
    assert ONE_SIGMA == pytest.approx(0.682689, abs=1e-6)
    covered = np.random.default_rng(3).random((200_000, 14)) < ONE_SIGMA
    simulated = np.mean(np.abs(covered.mean(axis=1) - 0.70) <= 0.15 + 1e-12)
    assert calibrated_coverage_probability(14, 0.55, 0.85) == pytest.approx(simulated, abs=0.005)
    assert calibrated_coverage_probability(14, 0.55, 0.85) == pytest.approx(0.750, abs=0.001)
    assert calibrated_coverage_probability(1, 0.55, 0.85) == 0.0
    assert calibrated_coverage_probability(400, 0.55, 0.85) > 0.999
    with pytest.raises(ValueError, match="at least one bin"):
        calibrated_coverage_probability(0, 0.55, 0.85)


# --- Wasserstein ----------------------------------------------------------------------------


def test_w1_identical_samples_is_zero():
    x = np.random.default_rng(3).normal(size=10_000)
    mean, std = wasserstein_1d(x, x.copy())
    assert mean == pytest.approx(0.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_w1_shifted_gaussian():
    rng = np.random.default_rng(4)
    truth = rng.normal(0.0, 1.0, size=50_000)
    gen = rng.normal(0.5, 1.0, size=50_000)
    mean, std = wasserstein_1d(truth, gen)
    assert mean == pytest.approx(0.5, abs=0.03)
    assert np.isfinite(std) and 0.0 < std < 0.03


def test_w1_batching_errors_and_explicit_batch_size():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=100), rng.normal(size=60)
    with pytest.raises(ValueError, match="at least n_batches=5"):
        wasserstein_1d(a[:4], b)
    with pytest.raises(ValueError, match="needs 100 events"):
        wasserstein_1d(a, b, n_batches=5, batch_size=20)  # generated has only 60
    mean, std = wasserstein_1d(a, b, n_batches=3, batch_size=20)
    assert np.isfinite(mean) and np.isfinite(std)
    b[7] = np.nan
    with pytest.raises(ValueError, match="index 7"):
        wasserstein_1d(a, b)


# --- Histogram metrics -----------------------------------------------------------------------


def test_max_rel_dev_bulk_exact():
    truth = _hist([100, 200, 300, 400])
    # same total, bin 2 up by 10 %, bin 3 down by 7.5 %
    gen = _hist([100, 200, 330, 370])
    assert max_rel_dev_bulk(truth, gen) == pytest.approx(0.1, rel=1e-12)


def test_max_rel_dev_bulk_normalises_each_by_own_total():
    truth = _hist([100, 200, 300, 400])
    gen = _hist([300, 600, 900, 1200])  # same shape, three times the events
    assert max_rel_dev_bulk(truth, gen) == pytest.approx(0.0, abs=1e-12)


def test_max_rel_dev_bulk_ignores_low_fraction_bins():
    truth = _hist([5, 495, 500])  # bin 0 holds 0.5 % < 1 %
    gen = _hist([15, 485, 500])  # bin 0 off by 200 %, bin 1 by -2.02 %
    assert max_rel_dev_bulk(truth, gen) == pytest.approx(10 / 495, rel=1e-12)
    assert max_rel_dev_bulk(truth, gen, min_fraction=0.001) == pytest.approx(2.0, rel=1e-12)


def test_chi2_ndf_same_distribution_is_about_one():
    rng = np.random.default_rng(6)
    edges = np.linspace(-3, 3, 41)
    values = []
    for _ in range(5):
        t = Histogram.fill(rng.normal(size=100_000), edges)
        g = Histogram.fill(rng.normal(size=100_000), edges)
        values.append(chi2_ndf(t, g))
    # each is chi2(~39 dof)/40 with sd ~0.22; the mean of 5 has sd ~0.1
    assert np.mean(values) == pytest.approx(1.0, abs=0.3)
    assert all(0.4 < v < 2.0 for v in values)


def test_chi2_ndf_shifted_is_large():
    rng = np.random.default_rng(7)
    edges = np.linspace(-3, 3, 41)
    t = Histogram.fill(rng.normal(0.0, 1.0, size=100_000), edges)
    g = Histogram.fill(rng.normal(0.2, 1.0, size=100_000), edges)
    assert chi2_ndf(t, g) > 20


def test_chi2_ndf_hand_computed_and_skips_empty_bins():
    truth = _hist([0, 30, 70])
    gen = _hist([0, 60, 40])
    ft, fg = np.array([0.3, 0.7]), np.array([0.6, 0.4])
    var = np.array([30, 70]) / 100**2 + np.array([60, 40]) / 100**2
    assert chi2_ndf(truth, gen) == pytest.approx(np.sum((fg - ft) ** 2 / var) / 2)


def test_metrics_reject_mismatched_edges():
    with pytest.raises(ValueError, match="edges"):
        chi2_ndf(_hist([1, 2]), _hist([1, 2], edges=[0.0, 1.0, 3.0]))


def test_observable_metrics_keys_and_json():
    rng = np.random.default_rng(8)
    m = observable_metrics(rng.normal(size=20_000), rng.normal(0.1, 1.0, size=15_000), np.linspace(-3, 3, 31))
    assert set(m) == {"w1", "w1_std", "max_rel_dev_bulk", "chi2_ndf"}
    assert all(type(v) is float for v in m.values())
    assert all(np.isfinite(v) for v in m.values())
    assert m["w1"] == pytest.approx(0.1, abs=0.04)
    assert json.loads(json.dumps(m, allow_nan=False)) == m


# --- Plots ----------------------------------------------------------------------------------


def _plot_inputs():
    rng = np.random.default_rng(9)
    binning = Binning(0.0, 10.0, 25, r"$p_T$ [GeV]")
    truth = Histogram.fill(rng.exponential(1.0, size=3_000), binning.edges)
    draws = [Histogram.fill(rng.exponential(1.05, size=3_000), binning.edges) for _ in range(4)]
    return binning, truth, draws


def test_plot_observable_writes_png_atomically(tmp_path):
    binning, truth, draws = _plot_inputs()
    assert np.any(truth.counts == 0) and np.any(draws[0].counts[truth.counts == 0] > 0)
    out = tmp_path / "pt.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # empty truth bins must not warn in the ratio
        result = plot_observable(
            out,
            binning,
            truth,
            {"single": draws[0], "ensemble": BandHistogram.from_histograms(draws)},
            title="muon pT",
        )
    assert result == out
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pt.png"]  # no temp file left


def test_plot_observable_overwrites_and_cleans_up_on_failure(tmp_path):
    binning, truth, draws = _plot_inputs()
    out = tmp_path / "x.png"
    plot_observable(out, Binning(0.0, 10.0, 25), truth, {"g": draws[0]}, title="x")
    before = out.read_bytes()
    assert before[:8] == PNG_MAGIC
    bad = Histogram.fill([1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="edges"):
        plot_observable(out, binning, truth, {"bad": bad})
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_plot_observable_removes_temp_file_when_saving_fails(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    binning, truth, draws = _plot_inputs()
    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_observable(tmp_path / "y.png", binning, truth, {"g": draws[0]})
    assert list(tmp_path.iterdir()) == []
