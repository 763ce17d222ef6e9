"""The classifier two-sample test and `bayesgen compare`."""
import json
import math

import numpy as np
import pytest
import uproot

from bayesgen.app.cli import main
from bayesgen.core.registry import get_process
from bayesgen.validation.classifier import auc_standard_error, classifier_two_sample_test, roc_auc


def test_roc_auc_counts_pairs_and_ties():
    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 1.0])) == pytest.approx(8.5 / 9)
    assert roc_auc(np.array([5.0, 6.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([5.0, 6.0])) == 0.0
    assert 0 < auc_standard_error(0.7, 1000, 1000) < 0.02


def test_classifier_cannot_tell_identical_distributions_apart():
    rng = np.random.default_rng(0)
    result = classifier_two_sample_test(rng.normal(size=(20_000, 4)), rng.normal(size=(20_000, 4)))
    assert abs(result["auc"] - 0.5) < 4 * result["auc_std"] + 0.01
    assert result["n_test"] == 20_000


def test_classifier_finds_a_correlation_the_marginals_hide():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20_000, 2))
    b = a.copy()
    b[:, 1] = 0.8 * b[:, 0] + 0.6 * rng.normal(size=20_000)  # same marginals, correlated
    assert classifier_two_sample_test(a, b)["auc"] > 0.6


def test_classifier_drops_non_finite_rows_and_needs_events():
    rng = np.random.default_rng(2)
    b = rng.normal(size=(1000, 2))
    b[:10] = np.nan
    assert classifier_two_sample_test(rng.normal(size=(1000, 2)), b)["n_test"] == 990
    with pytest.raises(ValueError, match="at least 20 finite events"):
        classifier_two_sample_test(np.zeros((5, 2)), np.zeros((5, 2)))


TINY_DDPM = 'timesteps = 20\nschedule = "cosine"\nprediction = "v"\n'


def tiny_compare(tmp_path, samplers, tables):
    """Run ``compare`` of ``samplers`` for 10 steps with width-16 backbones and the TOML ``tables``."""
    out = tmp_path / "cmp"
    config = tmp_path / "c.toml"
    config.write_text('[compare.backbone_options]\nwidth = 16\ndepth = 1\n' + tables)
    assert main(["compare", "--samplers", samplers, "--steps", "10", "--train-events", "1024",
                 "--batch-size", "256", "--events", "1000", "--sample-steps", "4", "--out", str(out),
                 "--config", str(config)]) == 0
    return out, json.loads((out / "compare.json").read_text())


def test_compare_trains_each_sampler_on_identical_footing(tmp_path):
    out, result = tiny_compare(tmp_path, "ddpm,cfm,inn", f'[compare.sampler_options.ddpm]\n{TINY_DDPM}'
                                                         '[compare.sampler_options.inn]\nblocks = 2\n')
    assert list(result["samplers"]) == ["ddpm", "cfm", "inn"]
    for name, summary in result["samplers"].items():
        assert summary["training_steps"] == 10 and summary["n_events"] == 1000
        assert summary["parameters"] > 0 and summary["generation_events_per_s"] > 0
        assert summary["training_seconds"] > 0
        auc = summary["classifier"]
        # ten steps leave every model far from the truth: the classifier must see it, many
        # truth-vs-truth spreads (0.5 ± 0.018 for 2 × 500 test events) above 0.5 (single
        # marginals need not: with the default features the mass is a coordinate of its own, and
        # 1,000 events leave W1 floors wide)
        assert auc["auc_floor"] == 0.5 and auc["auc_floor_std"] == pytest.approx(math.sqrt(1001 / (12 * 500**2)))
        assert auc["auc_pull"] == pytest.approx((auc["auc"] - 0.5) / auc["auc_floor_std"]) and auc["auc_pull"] > 5
        assert set(summary["observables"]) == set(get_process("z_mumu").binnings)
        assert summary["n_truth"] == summary["n_generated"] == 1000
        assert summary["floor"]["n_truth"] == summary["floor"]["n_generated"] == 1000
        for m in summary["observables"].values():
            assert m["n_truth"] == m["n_generated"] == 1000
            for metric in ("w1", "max_rel_dev_bulk", "chi2_ndf"):
                assert m[f"{metric}_floor"] > 0 and m[f"{metric}_floor_std"] > 0
                assert m[f"{metric}_over_floor"] == pytest.approx(m[metric] / m[f"{metric}_floor"])
    calls = {name: s["evaluations_per_event"] for name, s in result["samplers"].items()}
    assert calls == {"ddpm": 4, "cfm": 8, "inn": 2}  # DDIM 4 steps, midpoint 4 steps, 2 blocks
    configs = [json.loads((out / "runs" / n / "config.json").read_text()) for n in ("ddpm", "cfm", "inn")]
    assert {(c["steps"], c["events"], c["seed"], json.dumps(c["backbone_options"])) for c in configs} == {
        (10, 1024, 0, '{"width": 16, "depth": 1}')}
    table = (out / "compare.md").read_text()
    assert "| ddpm |" in table and "| inn |" in table and "| m_mumu |" in table
    with uproot.open(out / "histograms.root") as file:  # one truth, each model's histograms under its name
        assert {k.split(";")[0] for k in file.keys() if k.endswith("m_mumu;1")} == {
            "truth/m_mumu", "ddpm/generated/m_mumu", "cfm/generated/m_mumu", "inn/generated/m_mumu"}
        assert file["truth/m_mumu"].values(flow=True).sum() == 1000
        assert file["cfm/generated/m_mumu"].values(flow=True).sum() == 1000
    assert table.count("× floor") == 3 * 3 * len(result["samplers"]["ddpm"]["observables"])
    assert {p.stem for p in out.glob("*.png")} == set(result["samplers"]["ddpm"]["observables"])

    # existing runs can be compared again without training
    again = tmp_path / "again"
    assert main(["compare", "--runs", str(out / "runs" / "cfm"), str(out / "runs" / "inn"),
                 "--events", "500", "--sample-steps", "2", "--out", str(again)]) == 0
    assert list(json.loads((again / "compare.json").read_text())["samplers"]) == ["cfm", "inn"]


def test_compare_rejects_unknown_sampler_before_training(tmp_path, capsys):
    assert main(["compare", "--samplers", "ddpm,flow", "--out", str(tmp_path / "c")]) == 2
    assert "unknown sampler 'flow'" in capsys.readouterr().err
    assert not (tmp_path / "c" / "runs").exists()


def test_bayesian_compare_draws_bands_for_every_sampler(tmp_path):
    out = tmp_path / "cmp"
    config = tmp_path / "c.toml"
    config.write_text('[compare.backbone_options]\nwidth = 16\ndepth = 1\n'
                      '[compare.sampler_options.ddpm]\ntimesteps = 20\nschedule = "cosine"\nprediction = "v"\n'
                      '[compare.sampler_options.inn]\nblocks = 2\n'
                      '[compare.bayes_options]\ninit_log_sigma = -1.0\n')
    assert main(["compare", "--samplers", "ddpm,cfm,inn", "--bayesian", "--draws", "3", "--steps", "10",
                 "--train-events", "2048", "--batch-size", "256", "--events", "1000", "--sample-steps", "4",
                 "--keep-unphysical", "--out", str(out), "--config", str(config)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["draws"] == 3  # members this wild put many events outside the support: measured as drawn
    for summary in result["samplers"].values():
        assert summary["bayesian"] is True and summary["draws"] == 3
        band = summary["observables"]["mu1_eta"]
        # each member's 1,000 events spread over ~24 η bins: Poisson noise √(24/1000) ≈ 16 % per bin
        assert band["sigma_sampling_rel_median"] == pytest.approx(0.16, rel=0.3)
        # weights drawn with σ = e⁻¹ make members that really differ (measured 20–50 %; with
        # σ = e⁻⁴ the members' spread is sampling noise and σ_pred ≈ 0)
        assert band["sigma_pred_rel_median"] > 0.1
        assert band["coverage_bins"] == 24 and 0 <= band["coverage_1sigma"] <= 1
    assert "1σ coverage" in (out / "compare.md").read_text()


def test_gaussianize_is_robust_to_outliers():
    from bayesgen.validation.classifier import gaussianize
    rng = np.random.default_rng(3)
    reference = rng.standard_cauchy(size=(10_000, 1))  # tails that would swamp a standardisation
    mapped = gaussianize(reference, reference)
    assert abs(mapped.mean()) < 0.02 and abs(mapped.std() - 1) < 0.02
    assert np.isfinite(gaussianize(reference, np.array([[1e30], [-1e30]]))).all()


def test_compare_runs_one_sampler_under_two_labels_beside_ar(tmp_path):
    out, result = tiny_compare(tmp_path, "ddpm,ddpm_learned_sigma,ar",
                               f'[compare.sampler_options.ddpm]\n{TINY_DDPM}'
                               f'[compare.sampler_options.ddpm_learned_sigma]\nsampler = "ddpm"\n{TINY_DDPM}'
                               'learn_sigma = true\n[compare.sampler_options.ar]\nwidth = 16\ndepth = 1\nheads = 2\n')
    assert list(result["samplers"]) == ["ddpm", "ddpm_learned_sigma", "ar"]
    configs = {label: json.loads((out / "runs" / label / "config.json").read_text()) for label in result["samplers"]}
    assert {label: c["sampler"] for label, c in configs.items()} == {
        "ddpm": "ddpm", "ddpm_learned_sigma": "ddpm", "ar": "ar"}
    assert configs["ddpm_learned_sigma"]["sampler_options"] == {"timesteps": 20, "schedule": "cosine",
                                                                 "prediction": "v", "learn_sigma": True}
    summaries = result["samplers"]
    assert {label: s["evaluations_per_event"] for label, s in summaries.items()} == {
        "ddpm": 4, "ddpm_learned_sigma": 4, "ar": 5}  # DDIM, the respaced ancestral chain, 5 coordinates
    assert {label: s["likelihood"]["kind"] for label, s in summaries.items()} == {
        "ddpm": "bound", "ddpm_learned_sigma": "bound", "ar": "exact"}
    assert all(s["likelihood"]["n_events"] == 1000 and s["likelihood"]["bits_per_dim"] > 0 for s in summaries.values())
    table = (out / "compare.md").read_text()
    assert "| ddpm_learned_sigma |" in table and "| ar |" in table and "≤ " in table
