"""The command line: subcommands, TOML config, and one clear line for each kind of bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from bayesgen.app.cli import main
from bayesgen.core.errors import DataError
from bayesgen.engine.preprocessing import Preprocessor, check_finite
from bayesgen.plugins.processes.z_mumu import ZMuMu

TINY_FLAGS = ["--steps", "4", "--events", "1024", "--batch-size", "256"]


def error_line(capsys) -> str:
    """The single stderr line of a failed command (no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one line, got: {err}"
    assert err[0].startswith("bayesgen: error: ")
    return err[0]


def only_files(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("flag,name,kind", [("--process", "z_mumux", "process"),
                                            ("--sampler", "ddmp", "sampler"),
                                            ("--backbone", "mpl", "backbone")])
def test_unknown_plugin_names(tmp_path, capsys, flag, name, kind):
    assert main(["train", flag, name, *TINY_FLAGS, "--out", str(tmp_path / "run")]) == 2
    line = error_line(capsys)
    assert f"unknown {kind} '{name}'" in line and "known:" in line and "did you mean" in line
    assert only_files(tmp_path) == []


def test_run_directory_without_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["generate", str(tmp_path / "empty"), "--out", str(tmp_path / "x.root")]) == 2
    assert "no checkpoint in run directory" in error_line(capsys)
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in error_line(capsys)
    assert only_files(tmp_path) == ["empty"]


def test_corrupted_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"\x00not a checkpoint" * 10)
    assert main(["generate", str(run), "--out", str(tmp_path / "x.root")]) == 2
    assert "is corrupted or unreadable" in error_line(capsys)
    assert only_files(tmp_path) == ["run"]


def test_truncated_checkpoint(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    data = (trained_run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert main(["generate", str(run), "--out", str(tmp_path / "x.npz")]) == 2
    assert "is corrupted or unreadable" in error_line(capsys)
    assert only_files(tmp_path) == ["run"]


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_event_counts(trained_run, tmp_path, capsys, value):
    assert main(["generate", str(trained_run), "--events", value, "--out", str(tmp_path / "x.root")]) == 2
    assert f"--events must be positive, got {value}" in error_line(capsys)
    assert main(["train", "--events", value, "--out", str(tmp_path / "run")]) == 2
    assert "--events must be positive" in error_line(capsys)
    assert only_files(tmp_path) == []


def test_output_in_missing_directory(trained_run, tmp_path, capsys):
    assert main(["generate", str(trained_run), "--events", "10",
                 "--out", str(tmp_path / "nope" / "x.root")]) == 2
    assert "output directory does not exist" in error_line(capsys)
    assert main(["validate", str(trained_run), "--out", str(tmp_path / "nope" / "report")]) == 2
    assert "output directory does not exist" in error_line(capsys)
    assert only_files(tmp_path) == []


def test_non_finite_training_data_names_feature_and_row(third_party_plugin, tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "nan.toml"
    config.write_text(f'process = "toy_gauss"\nout = "{out}"\n[train]\nprocess_options = {{nan_row = 17}}\n')
    assert main(["train", "--config", str(config), *TINY_FLAGS]) == 2
    line = error_line(capsys)
    assert "non-finite value in training events: 'b' is nan at row 17" in line
    assert not out.exists()


def test_check_finite_reports_first_bad_row():
    events = ZMuMu().sample(100, seed=0)
    events[42, 3] = np.inf
    events[60, 0] = np.nan
    with pytest.raises(DataError, match=r"'mu2_pt' is inf at row 42 \(2 bad rows in all\)"):
        check_finite(events, ZMuMu.quantities, "events")
    with pytest.raises(DataError, match="mu2_pt"):
        Preprocessor.fit(ZMuMu(), events)


def test_toml_config_is_read_and_flags_override_it(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text(f'out = "{out}"\nsteps = 3\n[train]\nevents = 1024\nbatch-size = 256\n'
                      '[train.backbone_options]\nwidth = 16\ndepth = 1\n')
    assert main(["train", "--config", str(config), "--steps", "6"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["steps"] == 6 and saved["events"] == 1024 and saved["backbone_options"]["width"] == 16


def test_unknown_toml_option_is_named(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nstepz = 3\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "unknown option 'stepz' in [train] of" in error_line(capsys)


def test_train_generate_validate_through_the_cli(trained_run, tmp_path, capsys):
    out = tmp_path / "ev.root"
    assert main(["generate", str(trained_run), "--events", "500", "--sample-steps", "5",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert "wrote 500 events" in capsys.readouterr().out and out.is_file()
    report = tmp_path / "report"
    assert main(["validate", str(trained_run), "--events", "2000", "--sample-steps", "5",
                 "--out", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert {"process", "sampler", "backbone", "n_events", "observables"} <= set(metrics)
    assert metrics["process"] == "z_mumu" and metrics["n_events"] == 2000
    assert {"m_mumu", "mu1_pt", "dr_mumu"} <= set(metrics["observables"])
    for values in metrics["observables"].values():
        assert {"w1", "max_rel_dev_bulk", "chi2_ndf", "w1_over_floor", "n_truth", "n_generated"} <= set(values)
    # the summary printed: every metric as a multiple of its floor, the AUC beside 0.5
    printed = capsys.readouterr().out
    m_mumu = metrics["observables"]["m_mumu"]
    line = next(line for line in printed.splitlines() if line.startswith("m_mumu "))
    assert (f"W1 {m_mumu['w1_over_floor']:5.1f}×  dev {m_mumu['max_rel_dev_bulk_over_floor']:5.1f}×  "
            f"χ² {m_mumu['chi2_ndf_over_floor']:5.1f}×") in line
    assert f"truth vs truth 0.5 ± {metrics['classifier']['auc_floor_std']:.3f}" in printed
    pngs = {p.stem for p in report.glob("*.png")}
    assert pngs == set(metrics["observables"])


def test_help_shows_defaults():
    result = subprocess.run([sys.executable, "-m", "bayesgen", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "(default: z_mumu)" in result.stdout and "--batch-size" in result.stdout


def test_console_script_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bayesgen", "generate", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"bayesgen: error: no checkpoint in run directory {tmp_path} (expected checkpoint.pt); "
        "train into it first with `bayesgen train --out`"]


def test_shared_toml_serves_every_subcommand(tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "shared.toml"
    config.write_text(f'process = "z_mumu"\nsampler = "cfm"\nout = "{run}"\nseed = 4\n[train]\nsteps = 3\nevents = 1024\n'
                      'batch_size = 256\n[train.backbone_options]\nwidth = 16\ndepth = 1\n'
                      f'[validate]\nevents = 500\nsample_steps = 2\nout = "{tmp_path / "report"}"\n')
    assert main(["train", "--config", str(config)]) == 0
    assert main(["validate", str(run), "--config", str(config)]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n_events"] == 500 and metrics["sample_steps"] == 2
