"""A physicist's own ntuple through the command line: every suggestion an error makes is followed
and works, runs carry their mapping and notice a changed input, unfinished runs say so."""
import re
import shutil

import numpy as np
import pytest
import torch
import uproot

from bayesgen.app.cli import main
from bayesgen.engine.checkpoint import save_checkpoint
from bayesgen.engine.io import read_events

FLAGS = ["--sampler", "cfm", "--steps", "3", "--batch-size", "64"]
MAPPING = """like = "z_mumu"
cut = "Type == 'GG'"
split_by = ["Run", "Event"]
[collections.mu]
px = ["px1", "px2"]
py = ["py1", "py2"]
pz = ["pz1", "pz2"]
E = ["E1", "E2"]
charge = ["Q1", "Q2"]
"""


@pytest.fixture
def ntuple(tmp_path, cms_dimuon):
    """The ntuple and its mapping file in a folder of their own, and a TOML naming them."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(cms_dimuon[0], data / "dimuon.root")
    (data / "dimuon.toml").write_text(MAPPING)
    config = tmp_path / "run.toml"
    config.write_text(f'[train.process_options]\npath = "{data / "dimuon.root"}"\nmapping = "{data / "dimuon.toml"}"\n'
                      "[train.backbone_options]\nwidth = 16\ndepth = 1\n")
    return data, config


def train(config, out, *extra) -> int:
    return main(["train", "--process", "root_file", *FLAGS, "--out", str(out), "--config", str(config), *extra])


def one_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bayesgen: error")]
    assert len(err) == 1, err
    return err[0]


def test_every_suggestion_an_error_makes_is_valid_and_works(tmp_path, ntuple, capsys):
    data, config = ntuple
    assert train(config, tmp_path / "a", "--events", "100000") == 2
    line = one_error(capsys)
    assert "pass the selection (cut \"Type == 'GG'\"; ≥ 2 mu) in the training part" in line
    n = int(re.search(r"\(--events (\d+)\) or set allow_fewer = true in \[train.process_options\]", line)[1])
    assert 250 < n < 400 and "--events 0" not in line
    assert train(config, tmp_path / "a", "--events", str(n)) == 0  # followed: the first suggestion
    lenient = tmp_path / "lenient.toml"  # followed: the second one
    lenient.write_text(config.read_text().replace("[train.process_options]\n", "[train.process_options]\nallow_fewer = true\n"))
    assert train(lenient, tmp_path / "b", "--events", "100000") == 0
    assert "using all" in capsys.readouterr().err
    # validation's truth comes from the held-out part: by default all of it; asked for more,
    # only the --truth-events suggestion applies there
    assert main(["validate", str(tmp_path / "a"), "--truth-events", "100000", "--sample-steps", "2"]) == 2
    line = one_error(capsys)
    assert "held-out part" in line and "allow_fewer" not in line
    m = int(re.search(r"\(--truth-events (\d+)\)$", line)[1])
    assert main(["validate", str(tmp_path / "a"), "--truth-events", str(m), "--sample-steps", "2"]) == 0
    # a batch larger than the training sample
    assert train(config, tmp_path / "c", "--events", "40") == 2
    line = one_error(capsys)
    assert "use --batch-size 40 or less" in line
    assert train(config, tmp_path / "c", "--events", "40", "--batch-size", "40") == 0


def test_an_empty_selection_is_one_clear_line_even_with_allow_fewer(tmp_path, ntuple, capsys):
    data, config = ntuple
    (data / "dimuon.toml").write_text(MAPPING.replace("'GG'", "'XX'"))
    for toml in (config.read_text(), config.read_text().replace("]\npath", "]\nallow_fewer = true\npath", 1)):
        config.write_text(toml)
        assert train(config, tmp_path / "run", "--events", "100") == 2
        line = one_error(capsys)
        assert "none of the 633 events passes the selection (cut \"Type == 'XX'\"; ≥ 2 mu)" in line
        assert "index" not in line and "Error" not in line.split("error:", 1)[1] and "--events" not in line
        assert not (tmp_path / "run").exists()


def test_a_run_keeps_its_mapping_and_notices_a_changed_input(tmp_path, ntuple, capsys, cms_dimuon, monkeypatch):
    data, config = ntuple
    run = tmp_path / "run"
    assert train(config, run, "--events", "200") == 0
    shutil.move(data / "dimuon.toml", tmp_path / "elsewhere.toml")  # the mapping file is gone
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "events.npz"
    assert main(["generate", str(run), "--events", "50", "--out", str(out)]) == 0
    assert len(read_events(out)["mu1_pt"]) == 50
    capsys.readouterr()
    assert main(["validate", str(run), "--events", "60", "--sample-steps", "2"]) == 0
    assert "changed since the run was trained" not in capsys.readouterr().err
    # the input file changes: validation still runs, and says so
    changed = {**cms_dimuon[1], "pt1": cms_dimuon[1]["pt1"] * 1.01}
    with uproot.recreate(data / "dimuon.root") as file:
        file["events"] = changed
    assert main(["validate", str(run), "--events", "60", "--sample-steps", "2"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "changed since" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"bayesgen: warning: {data / 'dimuon.root'} changed since "
                                                         "the run was trained on it (SHA-256 ")
    stored = torch.load(run / "checkpoint.pt", weights_only=True)["process_options"]
    assert stored["mapping"]["collections"]["mu"]["px"] == ["px1", "px2"] and len(stored["sha256"]) == 64


def test_generate_from_an_unfinished_run_warns_and_the_advice_works(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"]["steps"] = state["step"] + 2
    state["config"]["out"] = str(run)
    save_checkpoint(run, {k: v for k, v in state.items() if k != "format"})
    assert main(["generate", str(run), "--events", "20", "--out", str(tmp_path / "a.npz")]) == 0
    err = capsys.readouterr().err
    advice = f"`bayesgen train --out {run} --resume`"
    assert f"bayesgen: warning: run {run} is unfinished: trained 300 of 302 steps (continue it with {advice})" in err
    assert main(advice.strip("`").split()[1:]) == 0
    assert main(["generate", str(run), "--events", "20", "--out", str(tmp_path / "b.npz")]) == 0
    assert "unfinished" not in capsys.readouterr().err
    np.testing.assert_array_equal(read_events(tmp_path / "b.npz")["mu1_pt"].shape, (20,))
