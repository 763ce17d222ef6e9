"""The benchmark scripts still run (tiny sizes on CPU) and print their tables."""
import dataclasses
import json
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from bayesgen.engine.config import TrainConfig
from bayesgen.validation.histogram import Histogram

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script, *args):
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_throughput_table():
    lines = run("throughput.py", "--quick")
    assert lines[0].startswith("device: ")
    rows = [line for line in lines[2:] if line.strip()]
    assert len(rows) == 14  # 7 settings × (deterministic, Bayesian)
    assert all(row.rstrip().endswith("%") for row in rows)
    assert any("inn" in row and "bayes ×4" in row for row in rows)


def test_ensemble_speed_table():
    lines = run("ensemble_speed.py", "--draws", "1", "3", "--events", "64", "--steps", "2", "--width", "16",
                "--depth", "1")
    assert lines[0].startswith("device: ") and len(lines) == 4
    assert lines[-1].split()[0] == "3" and lines[-1].endswith("x")


def test_train_speed_table():
    lines = run("train_speed.py", "--quick")
    rows = [line for line in lines[2:] if line.strip()]
    assert lines[0].startswith("device: ") and len(rows) == 6
    assert {row.split()[0] for row in rows} == {"ddpm", "cfm", "inn"}


def test_precision_table(trained_run):
    lines = run("precision.py", str(trained_run), "--events", "2000", "--sample-steps", "3", "--device", "cpu")
    assert lines[0].startswith("device: ") and "fp32 | bf16" in lines[0]
    assert any(line.startswith("m_mumu") for line in lines)
    assert lines[-1].startswith("events/s") and lines[-2].startswith("classifier AUC")


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_precision_table_rows_train_with_known_options_and_shared_runs_differ_only_in_sampling():
    table = load_bench("precision_table")
    for row, shared in table.SHARED_RUNS.items():
        assert table.VARIANTS[row] == table.VARIANTS[shared]
        assert table.sampling_of(row) != table.sampling_of(shared)
    options = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(set(variant) <= options for _, variant in table.VARIANTS.values())


def test_precision_table_archives_its_results_and_restores_only_those_missing(tmp_path, monkeypatch):
    table = load_bench("precision_table")
    monkeypatch.setattr(table, "DOCS", tmp_path / "docs")
    table.DOCS.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "inn.json").write_text('{"auc": 0.51}')
    (out / "large_inn.json").write_text('{"auc": 0.52}')
    table.archive(out, "study")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "inn.json").write_text('{"auc": 0.49}')          # measured again: kept
    table.restore(fresh, "study")
    assert table.load(fresh, "inn") == {"auc": 0.49} and table.load(fresh, "large_inn") == {"auc": 0.52}
    table.restore(tmp_path / "out", "absent")                 # no archive: nothing to do
    assert sorted(p.name for p in out.iterdir()) == ["inn.json", "large_inn.json"]


def test_precision_table_keeps_each_large_size_of_a_row_apart(tmp_path):
    table = load_bench("precision_table")
    assert table.large_name("inn", table.LARGE_EVENTS) == "large_inn"
    assert table.large_name("inn", 4_000_000) == "large_n4000000_inn"
    for name, events in (("large_inn", 10**6), ("large_n4000000_inn", 4 * 10**6), ("large_n4000000_x_inn", 1)):
        (tmp_path / f"{name}.json").write_text(f'{{"n_events": {events}}}')
    assert [r["n_events"] for r in table.large_results(tmp_path, "inn")] == [10**6, 4 * 10**6]
    assert [r["n_events"] for r in table.large_results(tmp_path, "x_inn")] == [1]
    assert table.large_results(tmp_path, "cfm") == []


def test_precision_table_reports_the_bayesian_runs_of_the_same_features(tmp_path):
    table = load_bench("precision_table")
    assert table.bayesian_labels(tmp_path, "inn_window_eta_seed1") == ["inn"]
    (tmp_path / "bayes_inn_window_eta.json").write_text('{"draws": 20}')
    assert table.bayesian_labels(tmp_path, "inn_window_eta_seed1") == ["inn_window_eta"]
    (tmp_path / "bayes_inn_window_eta_two_threads.json").write_text('{"draws": 20}')
    assert table.bayesian_labels(tmp_path, "inn_window_eta_two_threads") == ["inn_window_eta_two_threads",
                                                                              "inn_window_eta"]
    assert table.bayesian_labels(tmp_path, "inn_half_angle_delta_seed1") == ["inn"]


def test_precision_table_bayesian_runs_train_five_sixths_of_their_rows_steps():
    table = load_bench("precision_table")
    assert table.bayes_steps("inn_window_eta") == 10_000
    assert table.bayes_steps("inn_window_eta_two_threads") == 14_000
    assert table.training_steps("ar") == next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "steps")


def test_precision_table_names_a_bayesian_run_by_its_seed_or_prior():
    table = load_bench("precision_table")
    observable = {"coverage_1sigma": 0.9, "coverage_bins": 14, "sigma_pred_rel_median": 0.015, "w1_over_floor": 1.2}
    result = {"observables": {"m_mumu": observable, "pt_mumu": {**observable, "coverage_1sigma": 0.6}},
              "recipe": {"seed": 0, "bayes_options": {"prior_std": 0.1}}, "training_steps": 14_000,
              "training_cpu_seconds": 2280.0, "classifier": {"auc": 0.51}}
    line = table.other_run_line(result)
    assert line.startswith("Prior N(0, 0.1²)") and "within 0.55–0.85 on 1 of 2 observables (pt_mumu 0.60)" in line
    result["recipe"] = {"seed": 1, "bayes_options": {}}
    assert table.other_run_line(result).startswith("Training seed 1 (validated on the truth sample of seed 5")
    result["recipe"] = {"seed": 1, "bayes_options": {"prior_std": 0.1}}
    assert table.other_run_line(result).startswith("Prior N(0, 0.1²) on the variational weights, training seed 1 (")


def test_precision_table_names_a_laplace_posterior_by_its_family_and_prior():
    table = load_bench("precision_table")
    assert table.laplace_label("inn_window_eta") == "laplace_inn_window_eta"
    assert table.laplace_label("inn_window_eta", "diagonal") == "laplace_diagonal_inn_window_eta"
    assert table.laplace_label("inn", prior_std=0.1) == "laplace_prior0.1_inn"
    assert table.laplace_label("inn", name="calibration_laplace_n12500") == "calibration_laplace_n12500_inn"
    assert table.laplace_label("inn", draw_seed=1) == "laplace_draws1_inn"
    assert table.laplace_label("inn", draw_seed=2, per_layer=True) == "laplace_perlayer_draws2_inn"
    assert table.laplace_label("inn", draw_seed=1, band="linearised") == "laplace_linearised_draws1_inn"
    observable = {"coverage_1sigma": 0.7, "coverage_bins": 14, "sigma_pred_rel_median": 0.01, "w1_over_floor": 1.1}
    result = {"observables": {"m_mumu": observable}, "recipe": {"seed": 0, "bayes_options": {"prior_std": 0.25}},
              "training_steps": 17_000, "training_cpu_seconds": 2250.0, "classifier": {"auc": 0.504},
              "laplace": {"posterior": "diagonal", "prior_from": "evidence", "prior_std": 0.25, "seconds": 40.0},
              "draws": 20, "n_events": 200_000}
    assert table.other_run_line(result).startswith("The diagonal Laplace posterior (prior N(0, 0.25²) by the evidence)")
    result["draw_seed"] = 1
    assert table.other_run_line(result).startswith("The diagonal Laplace posterior (prior N(0, 0.25²) by the evidence), "
                                                   "another 20 members (draw seed 1) (")
    assert "prior N(0, 0.25²) by the evidence, fitted in 40 s on the 17,000-step run" in table.band_title(result, "inn")
    result["laplace"] = {**result["laplace"], "prior_from": "evidence per layer", "prior_std": [0.141, 0.355, 0.112]}
    assert "(prior N(0, σ²) by the evidence per layer, σ 0.112–0.355)" in table.other_run_line(result)
    result.update(band="linearised", n_generated=3_999_000)
    assert ("its 20 members to first order in the weights (`--band linearised`, sharing 3,999,000 events of the "
            "trained network), another 20 members (draw seed 1)") in table.other_run_line(result)


def test_precision_table_reads_a_band_s_coverage_averaged_over_truth_samples(tmp_path):
    """Against one truth sample pt_mumu covers 0.52 (out of range) but 0.74 over ten: the verdict
    reads the average; m_mumu's 0.90 over ten is out whatever one sample said."""
    table = load_bench("precision_table")
    band = {"w1_over_floor": 1.2, "max_rel_dev_bulk": 0.04, "sigma_pred_rel_median": 0.01,
            "sigma_sampling_rel_median": 0.012, "coverage_bins": 21, "coverage_truths": 10,
            "coverage_1sigma_truths_error": 0.03}
    result = {"observables": {"m_mumu": {**band, "coverage_1sigma": 0.8, "coverage_1sigma_truths": 0.9},
                              "pt_mumu": {**band, "coverage_1sigma": 0.52, "coverage_1sigma_truths": 0.74}},
              "recipe": {"seed": 0, "bayes_options": {}}, "training_steps": 10_000, "training_cpu_seconds": 2100.0,
              "classifier": {"auc": 0.505}, "draws": 20, "n_events": 200_000,
              "laplace": {"posterior": "kronecker", "prior_from": "evidence", "prior_std": 0.25, "seconds": 160.0}}
    (tmp_path / "laplace_inn.json").write_text(json.dumps(result))
    lines = "\n".join(table.bayes_section(tmp_path, "inn", prefix="laplace"))
    assert "| coverage over 10 truth samples | verdict |" in lines
    assert "| 0.52 (21) | 84% | 0.740 ± 0.030 | met |" in lines
    assert "| 0.80 (21) | 84% | 0.900 ± 0.030 | missed (0.90 outside 0.55–0.85) |" in lines
    assert "averaged over 10 further truth samples of the same size" in lines and "in range on 1 of 2" in lines
    assert "within 0.55–0.85 on 1 of 2 observables (pt_mumu 0.740), outside on m_mumu 0.900" in table.other_run_line(result)


def test_precision_table_sets_the_band_s_coverage_beside_that_of_the_statistical_errors_alone(tmp_path):
    """At the validated size the statistical errors alone cover 0.70 of m_mumu's bins: the
    coverage cannot see the band there; against larger truth samples they cover 0.25 and the band
    0.91, out of range, which the line names."""
    table = load_bench("precision_table")
    band = {"w1_over_floor": 1.2, "max_rel_dev_bulk": 0.04, "sigma_pred_rel_median": 0.01,
            "sigma_sampling_rel_median": 0.012, "coverage_bins": 21, "coverage_truths": 10,
            "coverage_1sigma_truths_error": 0.03}
    result = {"observables": {"m_mumu": {**band, "coverage_1sigma": 0.8, "coverage_1sigma_truths": 0.75,
                                         "coverage_1sigma_stat_truths": 0.70},
                              "mu1_phi": {**band, "coverage_1sigma": 0.7, "coverage_1sigma_truths": 0.69,
                                          "coverage_1sigma_stat_truths": 0.69}},
              "coverage_large": {"events": 4_000_000, "observables": {
                  "m_mumu": {"coverage_1sigma_truths": 0.91, "coverage_1sigma_truths_error": 0.02,
                             "coverage_1sigma_stat_truths": 0.25, "coverage_truths": 4},
                  "mu1_phi": {"coverage_1sigma_truths": 0.70, "coverage_1sigma_truths_error": 0.03,
                              "coverage_1sigma_stat_truths": 0.70, "coverage_truths": 4}}},
              "recipe": {"seed": 0, "bayes_options": {}}, "training_steps": 10_000, "training_cpu_seconds": 2100.0,
              "classifier": {"auc": 0.505}, "draws": 20, "n_events": 200_000,
              "laplace": {"posterior": "kronecker", "prior_from": "evidence", "prior_std": 0.2, "seconds": 150.0}}
    (tmp_path / "laplace_inn.json").write_text(json.dumps(result))
    lines = "\n".join(table.bayes_section(tmp_path, "inn", prefix="laplace"))
    assert ("| coverage over 10 truth samples (without the band) | over 4 truth samples of 4,000,000 (without the "
            "band) | verdict |") in lines
    assert "| 0.750 ± 0.030 (0.700) | 0.910 ± 0.020 (0.250) | met |" in lines
    assert ("the statistical errors alone cover 0.70–0.70 of the bins against the truth samples of the validated size "
            "(the 1 observables with a band), within 0.55–0.85 on 1 of them") in lines
    assert "they cover 0.25–0.25, and the band 0.91–0.91 (outside 0.55–0.85: m_mumu 0.91)." in lines
    assert table.other_run_line(result).endswith("; against 4 truth samples of 4,000,000 events within 0.55–0.85 on 1 "
                                                 "of 2 (outside: m_mumu 0.910).")


def test_precision_table_holds_each_row_to_the_training_budget():
    table = load_bench("precision_table")
    observable = {"w1_over_floor": 1.2, "max_rel_dev_bulk": 0.02, "max_rel_dev_bulk_floor": 0.03, "chi2_ndf": 1.1}
    result = {"observables": {"m_mumu": observable}, "classifier": {"auc": 0.501}, "training_seconds": 1_300.0}
    assert table.target_checks(result)["training ≤ 20 min (wall)"] == ("21.7 min", "missed by 1.08×")
    result["training_seconds"] = 1_050.0
    assert table.target_checks(result)["training ≤ 20 min (wall)"] == ("17.5 min", "met")


def test_sharp_cuts_table(tmp_path):
    lines = run("sharp_cuts.py", "--processes", "z_mumu_jets", "--steps", "4", "--train-events", "2048",
                "--batch-size", "256", "--events", "1000", "--sample-steps", "2,3", "--timesteps", "10",
                "--width", "16", "--depth", "1", "--out", str(tmp_path))
    assert lines[0].startswith("device: ")
    rows = [line for line in lines if line.startswith(("ddpm ", "ddpm_learned_sigma ", "ar "))]
    assert [row.split()[0] for row in rows] == ["ddpm"] * 4 + ["ddpm_learned_sigma"] * 2 + ["ar"]
    assert all(row.endswith("ev/s") and "%" in row for row in rows)
    assert {p.name for p in tmp_path.glob("*.png")} == {"z_mumu_jets_m_mumu.png", "z_mumu_jets_dr_j1j2.png",
                                                        "z_mumu_jets_j1_eta.png"}


def test_event_rate_table():
    lines = run("event_rate.py", "--events", "2000", "--repeats", "1", "--processes", "z_mumu")
    assert lines[0].startswith("machine: ") and "load average" in lines[0]
    row = lines[2].split()
    assert row[0] == "z_mumu" and 0.2 < float(row[2]) < 0.6
    assert any("initial-state shower" in line for line in lines)


def test_the_training_spread_tells_the_recipe_s_shared_error_from_the_run_to_run_one():
    """Two runs that share a ±4 % tilt and each add their own ±1 % pattern (10⁸ events each,
    statistical errors ~10⁻⁴): the run-to-run σ is 1 %, the shared part the tilt's (with half the
    patterns' sum), the deviations correlate; a run that is the truth shows no error."""
    bench = load_bench("training_spread")
    edges = np.linspace(0, 1, 11)
    truth_counts = np.full(10, 1e7)
    tilt = np.linspace(-0.04, 0.04, 10)
    own_a, own_b = 0.01 * (-1.0) ** np.arange(10), 0.01 * (-1.0) ** (np.arange(10) // 2)

    def histogram(counts):
        return Histogram(edges=edges, counts=counts, sumw2=counts.copy(), total=float(counts.sum()))

    truth = histogram(truth_counts)
    row = bench.spread_row(truth, histogram(truth_counts * (1 + tilt + own_a)),
                           histogram(truth_counts * (1 + tilt + own_b)))
    assert row["bins"] == 10
    assert abs(row["run_to_run"] - 0.01) < 5e-4
    assert abs(row["shared"] - np.sqrt(np.mean((tilt + (own_a + own_b) / 2) ** 2))) < 5e-4
    assert row["shared"] > 2 * row["run_to_run"] and row["corr"] > 0.8
    same = bench.spread_row(truth, truth, truth)
    assert same["a"] == same["run_to_run"] == 0.0 and np.isnan(same["corr"])


def test_training_spread_table(trained_run):
    lines = run("training_spread.py", str(trained_run), str(trained_run), "--events", "2000")
    rows = [line for line in lines if line.startswith("| m_mumu |")]
    assert lines[0].startswith("2,000 events of each run") and len(rows) == 1
    assert float(rows[0].split("|")[3].strip().rstrip("%")) >= 0
