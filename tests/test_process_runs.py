"""Every built-in process trains and validates through the CLI with a small budget."""
import json
from pathlib import Path

import pytest

from bayesgen.app.cli import main

DATA = Path(__file__).resolve().parent / "data"
SMALL = ["--sampler", "cfm", "--steps", "5", "--batch-size", "256"]

ROOT_MAPPING = f"""
[train.process_options]
path = "{DATA / 'uproot-HZZ.root'}"
allow_fewer = true
[train.process_options.mapping]
like = "z_mumu"
tree = "events"
weight = "EventWeight"
[train.process_options.mapping.collections.mu]
px = "Muon_Px"
py = "Muon_Py"
pz = "Muon_Pz"
E = "Muon_E"
charge = "Muon_Charge"
opposite_charge = true
"""

LHE_OPTIONS = f"""
[train.process_options]
path = "{DATA / 'pylhe-testfile-madgraph-2.2.1-Z-ckkwl-2000.lhe.gz'}"
like = "z_mumu"
leptons = [13, -13]
allow_fewer = true
"""

LHE_JETS_OPTIONS = LHE_OPTIONS.replace('like = "z_mumu"', 'like = "z_mumu_jets"') + """jet_pt_min = 20.0
n_jets_min = 1
"""


def train_and_validate(tmp_path, process, events, toml="", batch_size=256):
    config = tmp_path / "c.toml"
    config.write_text("[train.backbone_options]\nwidth = 16\ndepth = 1\n" + toml)
    run = tmp_path / "run"
    assert main(["train", "--process", process, *SMALL, "--events", str(events), "--out", str(run),
                 "--config", str(config), "--batch-size", str(batch_size)]) == 0
    assert main(["validate", str(run), "--events", "1000", "--sample-steps", "2"]) == 0
    return json.loads((run / "report" / "metrics.json").read_text())


@pytest.mark.parametrize("process,observable", [("z_mumu", "m_mumu"), ("z_ee", "m_ee"),
                                                ("h_zz_4mu", "m_4mu"), ("z_mumu_jets", "m_j1j2")])
def test_embedded_process_runs(tmp_path, process, observable):
    metrics = train_and_validate(tmp_path, process, 2048)
    assert metrics["process"] == process and observable in metrics["observables"]


@pytest.mark.parametrize("process,options,observable", [
    ("root_file", ROOT_MAPPING, "m_mumu"), ("lhe_file", LHE_OPTIONS, "m_mumu"),
    ("lhe_file", LHE_JETS_OPTIONS, "m_j1j2")])
def test_file_process_runs(tmp_path, process, options, observable):
    metrics = train_and_validate(tmp_path, process, 1024, options, batch_size=64)  # the files hold few events
    assert metrics["process"] == process and observable in metrics["observables"]
