"""Proportionate validation: the generated sample is sized from the truth, a file's held-out part
is used as it is, and an observable that cannot be compared says why."""
import json

import hist
import numpy as np
import pytest
import uproot

import bayesgen
from bayesgen.app.cli import main
from bayesgen.core.errors import ConfigError
from bayesgen.core.registry import get_process
from bayesgen.engine.config import ValidateConfig
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import train
from bayesgen.validation.report import (GENERATED_PER_TRUTH, MAX_GENERATED, TRUTH_EVENTS, check_independent_truths,
                                        generated_events)

MAPPING = {"like": "z_mumu", "cut": "Type == 'GG'", "split_by": ["Run", "Event"],
           "collections": {"mu": {"px": ["px1", "px2"], "py": ["py1", "py2"], "pz": ["pz1", "pz2"],
                                  "E": ["E1", "E2"], "charge": ["Q1", "Q2"]}}}


def test_generated_events_are_ten_per_truth_event_at_most_the_cap():
    assert generated_events(ValidateConfig(), 475) == GENERATED_PER_TRUTH * 475 == 4_750
    assert generated_events(ValidateConfig(), TRUTH_EVENTS) == MAX_GENERATED == 100_000
    assert generated_events(ValidateConfig(events=123), 475) == 123  # --events decides when given


@pytest.fixture(scope="module")
def file_run(tmp_path_factory, make_cms_dimuon):
    """A small run on a CMS-like ntuple of 2,400 events, about 480 of them held out."""
    folder = tmp_path_factory.mktemp("file-run")
    make_cms_dimuon(folder / "dimuon.root", n_events=2_400)
    return bayesgen.train(progress=False, process="root_file", sampler="cfm", steps=3, batch_size=64, events=500,
                          out=str(folder / "run"), backbone_options={"width": 16, "depth": 1},
                          process_options={"path": str(folder / "dimuon.root"), "mapping": MAPPING})


def test_a_file_is_validated_against_all_its_held_out_events_and_ten_times_as_many_generated(file_run):
    held_out = TrainedModel.load(file_run, "cpu").process.holdout().sample_available(10**6, seed=0)
    report = bayesgen.validate(file_run, progress=False, sample_steps=2)
    assert 400 < report["n_truth"] == len(held_out) < 560  # every held-out event, none repeated
    assert report["n_events"] == 10 * report["n_truth"] and report["n_generated"] == report["n_events"]
    assert report["floor"]["n_generated"] == report["n_events"]
    compared = report["observables"]["m_mumu"]
    assert compared["n_truth"] == report["n_truth"] and "w1_over_floor" in compared
    on_disk = json.loads((report.out / "metrics.json").read_text())
    assert on_disk["n_truth"] == report["n_truth"] and on_disk["n_events"] == report["n_events"]
    # the same histograms as hist objects and in the ROOT file
    truth = report.histograms["m_mumu"]["truth"]
    assert isinstance(truth, hist.Hist) and truth.sum(flow=True).value == report["n_truth"]
    assert report.histograms["m_mumu"]["generated"].sum(flow=True).value == report["n_generated"]
    assert "band_mean" not in report.histograms["m_mumu"]  # one draw: no band
    with uproot.open(report.out / "histograms.root") as file:
        np.testing.assert_array_equal(file["truth/m_mumu"].values(), truth.values())
        np.testing.assert_array_equal(file["truth/m_mumu"].variances(), truth.variances())
    assert sorted(p.name for p in report.plots) == sorted(f"{name}.png" for name in report["observables"])
    # --events still sets the generated sample; the truth stays the whole held-out part
    fixed = bayesgen.validate(file_run, progress=False, sample_steps=2, events=700, out=str(report.out) + "-700")
    assert (fixed["n_truth"], fixed["n_events"]) == (report["n_truth"], 700)


def test_an_observable_defined_for_too_few_truth_events_is_listed_with_the_reason(
        third_party_plugin, tmp_path, capsys):
    """toy_switch's y exists only in events of class 1 (30 %): 200 truth events hold about 60."""
    run = tmp_path / "run"
    assert main(["train", "--process", "toy_switch", "--sampler", "cfm", "--steps", "3", "--events", "512",
                 "--batch-size", "128", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["validate", str(run), "--truth-events", "200", "--sample-steps", "2"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    reason = metrics["observables"]["y"]["skipped"]
    n_truth_y = int(reason.split("defined for ")[1].split(" of")[0])
    assert 30 < n_truth_y < 100
    assert reason == (f"not compared: defined for {n_truth_y} of 200 truth and "
                      f"{reason.split('truth and ')[1].split(' of')[0]} of 2,000 generated events; the metrics "
                      "need at least 100 in each")
    assert f"y: {reason}" in out.splitlines()  # the CLI says which and why
    assert "w1_over_floor" in metrics["observables"]["x"] and metrics["n_events"] == 2_000
    assert not (run / "report" / "y.png").exists() and (run / "report" / "x.png").exists()


def test_a_bayesian_validation_hands_over_its_band(tmp_path, tiny_config):
    run = train(tiny_config(tmp_path / "run", sampler="cfm", bayesian=True, steps=3, sampler_options={}), progress=False)
    report = bayesgen.validate(run, progress=False, draws=2, events=600, truth_events=500, sample_steps=2)
    samples = report.histograms["m_mumu"]
    assert set(samples) == {"truth", "generated", "band_mean", "band_sigma_pred"}
    assert samples["generated"].sum(flow=True).value == report["n_generated"] == 1_200  # both members
    with uproot.open(report.out / "histograms.root") as file:
        np.testing.assert_allclose(file["band_mean/m_mumu"].values(), samples["band_mean"].values())
        np.testing.assert_allclose(file["band_mean/m_mumu"].variances(), samples["band_mean"].variances())
        np.testing.assert_allclose(file["band_sigma_pred/m_mumu"].values(), samples["band_sigma_pred"].values())
    # the band mean is a density: it integrates to the in-range fraction of the generated events
    in_range = samples["generated"].values().sum() / samples["generated"].sum(flow=True).value
    assert (samples["band_mean"].values() * samples["band_mean"].axes[0].widths).sum() == pytest.approx(in_range, rel=1e-6)


def test_a_band_s_coverage_is_averaged_over_further_truth_samples_when_asked(tmp_path, tiny_config):
    run = train(tiny_config(tmp_path / "run", sampler="cfm", bayesian=True, steps=3, sampler_options={}), progress=False)
    sizes = {"draws": 2, "events": 600, "truth_events": 500, "sample_steps": 2, "progress": False}
    report = bayesgen.validate(run, coverage_truths=3, **sizes)
    band = report["observables"]["m_mumu"]
    assert band["coverage_truths"] == 3 and 0 <= band["coverage_1sigma_truths"] <= 1
    assert band["coverage_1sigma_truths_error"] >= 0
    plain = bayesgen.validate(run, out=str(tmp_path / "plain"), **sizes)["observables"]["m_mumu"]
    assert "coverage_truths" not in plain and plain["coverage_1sigma"] == band["coverage_1sigma"]
    with pytest.raises(ConfigError, match="needs --draws of at least 2"):
        bayesgen.validate(run, coverage_truths=3, **{**sizes, "draws": 1})
    with pytest.raises(ConfigError, match="0 .off. or at least 2"):
        bayesgen.validate(run, coverage_truths=1, **sizes)


def test_a_coverage_over_truth_samples_refuses_a_file_s_held_out_part(file_run):
    process = TrainedModel.load(file_run, "cpu").process
    with pytest.raises(ConfigError, match="a coverage over truth samples needs independent ones, which only a "
                                          "Monte-Carlo process draws"):
        check_independent_truths(process)
    check_independent_truths(get_process("z_mumu"))  # a Monte-Carlo process draws them
