"""The ``lhe_file`` process on the POWHEG (Z→ee) and MadGraph (Z→ℓℓ + jets, gzipped) test files."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pylhe
import pytest

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.plugins.processes import lhe_file
from bayesgen.plugins.processes.lhe_file import LHEFileProcess

DATA = Path(__file__).parent / "data"
POWHEG = DATA / "pylhe-testfile-powheg-box-v2-Z.lhe"  # 100 events, Z → e+e- + 1 parton
MADGRAPH = DATA / "pylhe-testfile-madgraph-2.2.1-Z-ckkwl-2000.lhe.gz"  # 2,000 events, ee or μμ + 0–2


def reference(path: Path, leptons: tuple[int, int]) -> dict[str, np.ndarray]:
    """Leading-lepton pT, parton count and weight of selected events, read event by event."""
    lead, n_jets, weights, entry = [], [], [], []
    for i, event in enumerate(pylhe.LHEFile.fromfile(path).events):
        final = [p for p in event.particles if p.status == 1]
        pts = {pid: [math.hypot(p.px, p.py) for p in final if p.id == pid] for pid in leptons}
        if all(pts.values()):
            lead.append(max(max(v) for v in pts.values()))
            n_jets.append(sum(abs(p.id) <= 5 or p.id == 21 for p in final))
            weights.append(event.eventinfo.weight)
            entry.append(i)
    return {"lead_pt": np.array(lead), "n_jets": np.array(n_jets), "weights": np.array(weights),
            "entry": np.array(entry)}


@pytest.fixture(scope="module")
def madgraph_reference() -> dict[str, np.ndarray]:
    return reference(MADGRAPH, (13, -13))


@pytest.fixture(scope="module")
def madgraph(madgraph_reference) -> tuple[LHEFileProcess, dict[str, np.ndarray]]:
    process = LHEFileProcess(MADGRAPH, like="z_mumu", leptons=[13, -13], chunk_size=700, holdout_fraction=0)
    return process, process.sample_arrays(len(madgraph_reference["entry"]), seed=0)


def test_hook_registers_lhe_file():
    assert lhe_file.bayesgen_processes() == {"lhe_file": LHEFileProcess}


def test_madgraph_z_plus_jets(madgraph, madgraph_reference):
    process, arrays = madgraph
    events = arrays["events"]
    ref = madgraph_reference
    assert events.shape == (1002, 6) == (len(ref["entry"]), 6)
    np.testing.assert_array_equal(arrays["entry"], ref["entry"])
    np.testing.assert_allclose(events[:, 0], ref["lead_pt"], rtol=1e-9)
    np.testing.assert_array_equal(arrays["n_jets"], ref["n_jets"])
    np.testing.assert_allclose(arrays["weights"], ref["weights"])
    # this file's merged samples hold 0, 1 or 2 extra final-state partons, all three present
    counts = Counter(arrays["n_jets"].tolist())
    assert set(counts) == {0, 1, 2} and min(counts.values()) > 80
    mass = process.observables(events)["m_mumu"]
    assert 89.0 < np.median(mass) < 93.0 and np.mean(np.abs(mass - 91.19) < 10.0) > 0.7
    assert np.all(events[:, 0] >= events[:, 3])
    assert np.all((events[:, [2, 5]] > -np.pi) & (events[:, [2, 5]] <= np.pi))


def test_sample_arrays_hold_weights_and_multiplicity_and_sampling_changes_nothing(madgraph):
    process, arrays = madgraph
    before = dict(vars(process))
    events = process.sample(500, seed=7)
    assert vars(process).keys() == before.keys()
    sampled = process.sample_arrays(500, seed=7)
    np.testing.assert_array_equal(sampled["events"], events)
    assert events.shape == (500, 6) and sampled["weights"].shape == (500,)
    assert sampled["n_jets"].shape == (500,) and np.all(np.isin(sampled["entry"], arrays["entry"]))
    np.testing.assert_array_equal(process.to_features(events), process.target.to_features(events))


def test_powheg_z_to_ee_and_chunking():
    process = LHEFileProcess(POWHEG, leptons=[11, -11], holdout_fraction=0)
    chunked = LHEFileProcess(POWHEG, leptons=[11, -11], chunk_size=7, holdout_fraction=0)
    a, b = process.sample_arrays(60, seed=2), chunked.sample_arrays(60, seed=2)
    for key in ("events", "weights", "n_jets", "entry"):
        np.testing.assert_array_equal(a[key], b[key])
    sampled = process.sample_arrays(100, seed=0)
    events = sampled["events"]
    ref = reference(POWHEG, (11, -11))
    np.testing.assert_allclose(events[:, 0], ref["lead_pt"], rtol=1e-9)
    np.testing.assert_allclose(sampled["weights"], 1223.55)
    assert np.all(sampled["n_jets"] == 1)  # POWHEG: exactly one real-emission parton
    assert abs(np.median(process.observables(events)["m_mumu"]) - 91.19) < 3.0


def test_errors(tmp_path):
    with pytest.raises(DataError, match=r"only 100 of 100 events pass.*asked for 200,000"):
        LHEFileProcess(POWHEG, leptons=[11, -11], holdout_fraction=0).sample(200_000, seed=0)
    for lenient in (False, True):  # no suggestion of "--events 0"; allow_fewer cannot help either
        with pytest.raises(DataError, match=r"none of the 100 events passes the selection \(final-state PDG "
                                            r"ids \[13, -13\]\) in the whole file; check") as error:
            LHEFileProcess(POWHEG, leptons=[13, -13], holdout_fraction=0, allow_fewer=lenient).sample(1, seed=0)
        assert "--events" not in str(error.value)
    with pytest.raises(DataError, match="LHE file not found"):
        LHEFileProcess(tmp_path / "nope.lhe", holdout_fraction=0).sample(1, seed=0)
    (tmp_path / "junk.lhe").write_text("<html>not LHE</html>\n")
    with pytest.raises(DataError, match="not a readable LHE file"):
        LHEFileProcess(tmp_path / "junk.lhe", holdout_fraction=0).sample(1, seed=0)
    text = POWHEG.read_text()
    (tmp_path / "cut.lhe").write_text(text[: text.index("<event>", len(text) // 2) + 40])
    with pytest.raises(DataError, match="broken LHE file"):
        LHEFileProcess(tmp_path / "cut.lhe", leptons=[11, -11], holdout_fraction=0).sample(1, seed=0)
    with pytest.raises(ConfigError, match="cannot be filled from 1 lepton"):
        LHEFileProcess(POWHEG, leptons=[11], holdout_fraction=0)


def test_partons_fill_the_jets_of_z_mumu_jets():
    process = LHEFileProcess(MADGRAPH, like="z_mumu_jets", leptons=[13, -13], jet_pt_min=20.0,
                             n_jets_min=1, holdout_fraction=0)
    arrays = process.sample_arrays(150, seed=0)
    events, entry = arrays["events"], arrays["entry"]
    by_entry = dict(enumerate(pylhe.LHEFile.fromfile(MADGRAPH).events))
    for row, i in zip(events[:200], entry[:200]):
        partons = sorted((math.hypot(p.px, p.py) for p in by_entry[int(i)].particles
                          if p.status == 1 and (abs(p.id) <= 5 or p.id == 21)), reverse=True)
        partons = [pt for pt in partons if pt >= 20.0]
        assert row[6] == len(partons) >= 1
        np.testing.assert_allclose(row[7:19:4][:len(partons)], partons, rtol=1e-9)
        assert np.all(row[7 + 4 * len(partons):] == 0.0)
    assert set(np.unique(events[:, 6])) == {1, 2}
    assert np.isfinite(process.to_features(events)).all()
    with pytest.raises(ConfigError, match="n_jets_max = 0 is below n_jets_min = 1"):
        LHEFileProcess(MADGRAPH, like="z_mumu_jets", n_jets_min=1, n_jets_max=0)
