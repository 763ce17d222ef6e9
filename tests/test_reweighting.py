"""Discriminator reweighting: the weights estimate a known density ratio, weighted metrics and
AUC use them, and `bayesgen reweight` feeds `generate --reweight` and `validate --reweight`."""
import json

import numpy as np
import pytest

from bayesgen.app.cli import main
from bayesgen.engine.io import read_events
from bayesgen.validation.classifier import classifier_two_sample_test, roc_auc
from bayesgen.validation.metrics import observable_metrics, wasserstein_1d
from bayesgen.validation.reweighting import W_MAX, Reweighter, fit_weights, weight_summary

SHIFT, WIDTH = 0.3, 1.2   #: generated: x₀ ~ N(SHIFT, WIDTH²); truth: N(0, 1); x₁ ~ N(0, 1) in both


def generated_sample(n, rng):
    return np.column_stack([rng.normal(SHIFT, WIDTH, n), rng.normal(size=n)])


def log_true_ratio(x):
    """log p_truth/p_gen of the first coordinate."""
    return -0.5 * x[:, 0] ** 2 + 0.5 * ((x[:, 0] - SHIFT) / WIDTH) ** 2 + np.log(WIDTH)


@pytest.fixture(scope="module")
def gaussian_fit():
    rng = np.random.default_rng(3)
    truth, generated = rng.normal(size=(40_000, 2)), generated_sample(40_000, rng)
    return fit_weights(truth, generated, seed=1, epochs=8), rng


def test_weights_estimate_the_density_ratio(gaussian_fit):
    reweighter, rng = gaussian_fit
    fresh = generated_sample(50_000, rng)
    weights = reweighter.weights(fresh)
    bulk = np.abs(fresh[:, 0] - SHIFT) < 2 * WIDTH        # where both samples have many events
    assert np.corrcoef(np.log(weights[bulk]), log_true_ratio(fresh[bulk]))[0, 1] > 0.97
    mean = np.average(fresh[:, 0], weights=weights)
    width = np.sqrt(np.average((fresh[:, 0] - mean) ** 2, weights=weights))
    assert abs(mean) < 0.03 and abs(width - 1.0) < 0.03   # unweighted: 0.3 and 1.2
    assert abs(weights.mean() - 1.0) < 0.03
    fit = reweighter.summary
    assert 0.55 < fit["held_out_auc"] < 0.7 and fit["held_out_weights"]["fraction_clipped"] < 0.01
    assert abs(fit["calibration"]["scale"] - 1.0) < 0.3


def test_the_weights_survive_a_round_trip_to_disk(gaussian_fit, tmp_path):
    reweighter, rng = gaussian_fit
    x = generated_sample(1000, rng)
    loaded = Reweighter.load(reweighter.save(tmp_path / "w.pt"))
    np.testing.assert_allclose(loaded.weights(x), reweighter.weights(x), rtol=1e-6)
    assert loaded.summary == reweighter.summary


def test_weights_are_clipped_and_summarised():
    reweighter = Reweighter(np.zeros((10, 1)), None, 1.0, 0.0)
    clipped = reweighter.clip(np.array([1e-6, 0.5, 2.0, 4.0, 1e6]))
    np.testing.assert_allclose(clipped, [1 / W_MAX, 0.5, 2.0, 4.0, W_MAX])
    summary = weight_summary(clipped, np.array([1e-6, 0.5, 2.0, 4.0, 1e6]))
    assert summary["fraction_above_3"] == pytest.approx(0.4) and summary["fraction_clipped"] == pytest.approx(0.4)
    assert summary["effective_fraction"] == pytest.approx(clipped.sum() ** 2 / (5 * np.square(clipped).sum()))


def test_weighted_metrics_use_the_weights():
    rng = np.random.default_rng(5)
    truth, generated = rng.normal(size=200_000), rng.normal(SHIFT, WIDTH, 200_000)
    exact = np.exp(log_true_ratio(generated[:, None]))
    edges = np.linspace(-3, 3, 31)
    plain, weighted = observable_metrics(truth, generated, edges), observable_metrics(truth, generated, edges, exact)
    floor = observable_metrics(truth, rng.normal(size=200_000), edges)
    assert plain["w1"] > 0.25 and weighted["w1"] < 2 * floor["w1"]
    assert plain["chi2_ndf"] > 100 and weighted["chi2_ndf"] < 3
    # integer weights are repeated events (as many as values, so the batches hold the same truth)
    counts = rng.permutation(np.repeat([0, 1, 2], [300, 400, 300]))
    values = rng.normal(size=1000)
    assert wasserstein_1d(truth[:5000], values, weights=counts.astype(float), n_batches=1) == \
        pytest.approx(wasserstein_1d(truth[:5000], np.repeat(values, counts), n_batches=1), rel=1e-9)
    with pytest.raises(ValueError, match="non-negative"):
        wasserstein_1d(truth, generated, weights=-exact)


def test_weighted_auc_counts_events_by_their_weights():
    rng = np.random.default_rng(6)
    pos, neg = rng.normal(0.5, 1, 300).round(1), rng.normal(size=200).round(1)   # with ties
    w_pos, w_neg = rng.integers(1, 4, 300), rng.integers(1, 4, 200)
    assert roc_auc(pos, neg, w_pos, w_neg) == pytest.approx(roc_auc(np.repeat(pos, w_pos), np.repeat(neg, w_neg)))
    # a brute-force count with ½ for ties
    brute = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert roc_auc(pos, neg) == pytest.approx(brute)


def test_the_two_sample_test_sees_through_exact_weights():
    rng = np.random.default_rng(7)
    truth, generated = rng.normal(size=(20_000, 2)), generated_sample(20_000, rng)
    exact = np.exp(log_true_ratio(generated))
    plain = classifier_two_sample_test(truth, generated)
    weighted = classifier_two_sample_test(truth, generated, generated_weights=exact)
    assert plain["auc_pull"] > 10
    assert abs(weighted["auc_pull"]) < 3 and weighted["n_generated_effective"] < 10_000


def test_reweight_then_generate_and_validate_with_weights(trained_run, tmp_path, capsys):
    weights_file = trained_run / "reweighter.pt"
    try:
        assert main(["reweight", str(trained_run), "--events", "3000", "--sample-steps", "5", "--epochs", "2"]) == 0
        printed = capsys.readouterr().out
        assert "AUC training vs generated" in printed and f"wrote the classifier weights to {weights_file}" in printed
        out = tmp_path / "ev.npz"
        assert main(["generate", str(trained_run), "--events", "500", "--sample-steps", "5", "--reweight",
                     "--out", str(out)]) == 0
        events = read_events(out)
        assert events["weight"].shape == (500,) and (events["weight"] > 0).all()
        report = tmp_path / "report"
        assert main(["validate", str(trained_run), "--events", "2000", "--sample-steps", "5", "--reweight",
                     "--out", str(report)]) == 0
        reweighted = json.loads((report / "metrics.json").read_text())["reweighted"]
        assert {"mean", "std", "fraction_above_3", "effective_fraction"} <= set(reweighted["weights"])
        assert {"w1", "w1_over_floor", "max_rel_dev_bulk"} <= set(reweighted["observables"]["m_mumu"])
        assert "n_generated_effective" in reweighted["classifier"]
        # other sampling settings than the fit's are warned about
        assert main(["generate", str(trained_run), "--events", "100", "--sample-steps", "4", "--reweight",
                     "--out", str(tmp_path / "other.npz")]) == 0
        assert "fitted to events generated with sample_steps = 5" in capsys.readouterr().err
    finally:
        weights_file.unlink(missing_ok=True)


def test_generate_reweight_without_weights_says_what_to_run(trained_run, tmp_path, capsys):
    assert main(["generate", str(trained_run), "--events", "10", "--reweight", "--out", str(tmp_path / "e.npz")]) == 2
    assert "fit them first with `bayesgen reweight RUN`" in capsys.readouterr().err
