"""The ``root_file`` process: jagged (HZZ test file) and flat/NanoAOD trees written on the fly."""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.plugins.processes import root_file
from bayesgen.plugins.processes.root_file import RootFileProcess
from bayesgen.plugins.processes.z_mumu import ZMuMu

HZZ = Path(__file__).parent / "data" / "uproot-HZZ.root"

QUANTITIES = ("mu1_pt", "mu1_eta", "mu1_phi", "mu2_pt", "mu2_eta", "mu2_phi")
HZZ_MAPPING = textwrap.dedent("""\
    like = "z_mumu"
    tree = "events"
    weight = "EventWeight"

    [collections.mu]
    px = "Muon_Px"
    py = "Muon_Py"
    pz = "Muon_Pz"
    E = "Muon_E"
    charge = "Muon_Charge"
    opposite_charge = true
    """)


def hzz_mapping(**muon) -> dict:
    spec = {"px": "Muon_Px", "py": "Muon_Py", "pz": "Muon_Pz", "E": "Muon_E",
            "charge": "Muon_Charge", "opposite_charge": True, **muon}
    return {"like": "z_mumu", "tree": "events", "weight": "EventWeight",
            "collections": {"mu": spec}}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """Leading opposite-charge muon pair per event, computed independently event by event."""
    tree = uproot.open(HZZ)["events"]
    a = tree.arrays(["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E", "Muon_Charge", "EventWeight"])
    rows, entries, weights = [], [], []
    for i, (px, py, pz, q, w) in enumerate(zip(a.Muon_Px.tolist(), a.Muon_Py.tolist(),
                                               a.Muon_Pz.tolist(), a.Muon_Charge.tolist(),
                                               a.EventWeight.tolist())):
        pt = np.hypot(px, py)
        order = np.argsort(-pt, kind="stable")
        partners = [j for j in order[1:] if q[j] != q[order[0]]]
        if len(order) < 2 or not partners:
            continue
        row = []
        for j in (order[0], partners[0]):
            row += [pt[j], math.asinh(pz[j] / pt[j]), math.atan2(py[j], px[j])]
        rows.append(row)
        entries.append(i)
        weights.append(w)
    return {"events": np.array(rows), "entry": np.array(entries), "weights": np.array(weights)}


@pytest.fixture(scope="module")
def hzz_all(tmp_path_factory) -> tuple[RootFileProcess, np.ndarray]:
    mapping = tmp_path_factory.mktemp("mapping") / "dimuon.toml"
    mapping.write_text(HZZ_MAPPING)
    process = RootFileProcess(path=str(HZZ), mapping=str(mapping), holdout_fraction=0)
    return process, process.sample(1406, seed=0)


def test_hook_registers_root_file():
    assert root_file.bayesgen_processes() == {"root_file": RootFileProcess}


def test_reuses_target_process(hzz_all):
    process, events = hzz_all
    target = process.target
    assert process.name == "root_file" and process.quantities == QUANTITIES
    assert process.feature_names == target.feature_names and process.binnings == target.binnings
    np.testing.assert_array_equal(process.to_features(events), target.to_features(events))
    assert set(process.observables(events)) == set(target.binnings)


def test_jagged_selection_matches_independent_computation(hzz_all, reference):
    process, events = hzz_all
    assert events.shape == (1406, 6) and events.dtype == np.float64
    np.testing.assert_allclose(events, reference["events"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(process.sample_with_weights(1406, seed=0)[1], reference["weights"], rtol=1e-6)
    assert np.all(events[:, 0] >= events[:, 3])
    assert np.all((events[:, [2, 5]] > -np.pi) & (events[:, [2, 5]] <= np.pi))
    mass = process.observables(events)["m_mumu"]
    assert 85.0 < np.median(mass) < 95.0


def test_chunked_reading_equals_one_shot(reference):
    one_shot = RootFileProcess(HZZ, hzz_mapping(), step_size=10_000, holdout_fraction=0)
    chunked = RootFileProcess(HZZ, hzz_mapping(), step_size=97, holdout_fraction=0)
    a, b = one_shot.sample_arrays(500, seed=3), chunked.sample_arrays(500, seed=3)
    np.testing.assert_array_equal(a["events"], b["events"])
    np.testing.assert_array_equal(a["weights"], b["weights"])
    # a subset of the selected events, in file order, different for another seed
    assert np.all(np.diff(a["entry"]) > 0) and np.array_equal(a["entry"], b["entry"])
    rows = np.flatnonzero(np.isin(reference["entry"], a["entry"]))
    assert len(rows) == 500 and np.allclose(reference["events"][rows], a["events"], rtol=1e-5)
    assert not np.array_equal(one_shot.sample(500, seed=4), a["events"])


def test_too_few_events_is_a_clear_error():
    process = RootFileProcess(HZZ, hzz_mapping(), step_size=10_000, holdout_fraction=0)
    with pytest.raises(DataError, match=r"only 1,406 of 2,421 events pass.*asked for 200,000"):
        process.sample(200_000, seed=0)
    lenient = RootFileProcess(HZZ, hzz_mapping(), allow_fewer=True, holdout_fraction=0)
    with pytest.warns(UserWarning, match="using all 1,406"):
        assert len(lenient.sample(200_000, seed=0)) == 1406


def test_cuts_reduce_the_selection(reference):
    events = RootFileProcess(HZZ, hzz_mapping(pt_min=20.0, abs_eta_max=2.1),
                             allow_fewer=True, holdout_fraction=0)
    with pytest.warns(UserWarning):
        out = events.sample(2000, seed=0)
    assert 0 < len(out) < len(reference["events"])
    assert out[:, [0, 3]].min() > 20.0 and np.abs(out[:, [1, 4]]).max() < 2.1


def test_missing_branch_tree_and_file_are_named(tmp_path):
    with pytest.raises(DataError, match=r"branch 'Muon_Pxx'.*did you mean Muon_Px"):
        RootFileProcess(HZZ, hzz_mapping(px="Muon_Pxx"), holdout_fraction=0).sample(10, seed=0)
    with pytest.raises(DataError, match=r"no tree 'Events'; trees: events"):
        RootFileProcess(HZZ, {**hzz_mapping(), "tree": "Events"}, holdout_fraction=0).sample(10, seed=0)
    with pytest.raises(DataError, match="ROOT file not found"):
        RootFileProcess(tmp_path / "nope.root", hzz_mapping(), holdout_fraction=0).sample(10, seed=0)
    with pytest.raises(ConfigError, match="mapping file not found"):
        RootFileProcess(HZZ, tmp_path / "nope.toml", holdout_fraction=0)


def test_incomplete_mapping_names_the_quantities():
    with pytest.raises(ConfigError, match="does not provide mu1_pt, mu1_eta"):
        RootFileProcess(HZZ, {"like": "z_mumu", "branches": {"mu2_pt": "x", "mu2_eta": "y",
                                                             "mu2_phi": "z"}}, holdout_fraction=0)
    with pytest.raises(ConfigError, match="needs like"):
        RootFileProcess(HZZ, {"branches": {}}, holdout_fraction=0)
    with pytest.raises(ConfigError, match="unknown key"):
        RootFileProcess(HZZ, hzz_mapping(ptmin=3.0), holdout_fraction=0)


def _flat_file(path: Path, n: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    columns = {"pt1": rng.uniform(40, 60, n), "eta1": rng.normal(size=n),
               "phi1": rng.uniform(-np.pi, np.pi, n), "pt2": rng.uniform(20, 40, n),
               "eta2": rng.normal(size=n), "phi2": rng.uniform(0, 2 * np.pi, n),
               "w": rng.uniform(0.5, 1.5, n)}
    with uproot.recreate(path) as file:
        file["tree"] = columns  # uproot >= 5.7 writes an RNTuple
    return columns


FLAT = {"like": "z_mumu", "weight": "w",
        "branches": {f"mu{i}_{v}": f"{v}{i}" for i in (1, 2) for v in ("pt", "eta", "phi")}}


def test_flat_branches(tmp_path):
    columns = _flat_file(tmp_path / "flat.root")
    process = RootFileProcess(tmp_path / "flat.root", FLAT, step_size=64, holdout_fraction=0)  # one tree: no name
    events, weights = process.sample_with_weights(300, seed=0)
    np.testing.assert_array_equal(process.sample(300, seed=0), events)
    np.testing.assert_allclose(events[:, 0], columns["pt1"])
    np.testing.assert_allclose(events[:, 4], columns["eta2"])
    phi2 = np.where(columns["phi2"] > np.pi, columns["phi2"] - 2 * np.pi, columns["phi2"])
    np.testing.assert_allclose(events[:, 5], phi2)
    np.testing.assert_allclose(weights, columns["w"])
    mev = RootFileProcess(tmp_path / "flat.root", {**FLAT, "momentum_unit": "MeV"}, holdout_fraction=0)
    np.testing.assert_allclose(mev.sample(300, seed=0)[:, 3], 1e-3 * columns["pt2"])


def test_nan_is_reported_with_branch_and_entry(tmp_path):
    columns = _flat_file(tmp_path / "flat.root")
    columns["eta2"][123] = np.nan
    with uproot.recreate(tmp_path / "nan.root") as file:  # a TTree this time
        file.mktree("tree", {k: np.float64 for k in columns}).extend(columns)
    with pytest.raises(DataError, match=r"non-finite value in branch 'eta2' at entry 123"):
        RootFileProcess(tmp_path / "nan.root", FLAT, step_size=50, holdout_fraction=0).sample(10, seed=0)


def test_nanoaod_style_collection(tmp_path):
    muons = ak.zip({"pt": [[50.0, 30.0, 10.0], [45.0, 35.0], [60.0], [70.0, 40.0, 25.0]],
                    "eta": [[0.1, -0.2, 0.3], [1.0, 2.6], [0.0], [0.5, -0.5, 1.5]],
                    "phi": [[0.5, -2.0, 1.0], [3.0, 0.0], [0.0], [-1.0, 2.0, 1.0]],
                    "charge": [[1, -1, 1], [1, -1], [1], [-1, -1, 1]]})
    with uproot.recreate(tmp_path / "nano.root") as file:  # TTree: nMuon, Muon_pt, …
        file.mktree("Events", {"Muon": muons.type.content}).extend({"Muon": muons})
    mapping = {"like": "z_mumu", "tree": "Events",
               "collections": {"mu": {"pt": "Muon_pt", "eta": "Muon_eta", "phi": "Muon_phi",
                                      "charge": "Muon_charge", "opposite_charge": True,
                                      "abs_eta_max": 2.4}}}
    events = RootFileProcess(tmp_path / "nano.root", mapping, holdout_fraction=0).sample(2, seed=0)
    # event 1 loses its second muon to |η| < 2.4, event 2 has one muon; event 3 pairs 70 and 25
    np.testing.assert_allclose(events, [[50.0, 0.1, 0.5, 30.0, -0.2, -2.0],
                                        [70.0, 0.5, -1.0, 25.0, 1.5, 1.0]])


def test_training_and_validation_read_disjoint_entries():
    from bayesgen.plugins.processes.root_file import entry_uniform
    from bayesgen.validation.report import Truth

    process = RootFileProcess(HZZ, hzz_mapping(), allow_fewer=True)
    whole = RootFileProcess(HZZ, hzz_mapping(), holdout_fraction=0).sample_arrays(1406, seed=0)["entry"]
    with pytest.warns(UserWarning, match="training part"):
        train_entries = process.sample_arrays(10_000, seed=0)["entry"]
    with pytest.warns(UserWarning, match="held-out part"):
        truth = Truth.draw(process, 10_000, seed=1)
    with pytest.warns(UserWarning, match="held-out part"):
        held_out = process.holdout().sample_arrays(10_000, seed=1)
    def rows(events):  # the truth comes in random order (W1 compares contiguous batches)
        return events[np.lexsort(events.T[::-1])]

    np.testing.assert_array_equal(rows(truth.events), rows(held_out["events"]))
    held_out = held_out["entry"]
    assert not set(train_entries) & set(held_out)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_entries, held_out])), whole)
    assert len(held_out) / len(whole) == pytest.approx(0.2, abs=0.04)
    u = entry_uniform(np.arange(100_000))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    with pytest.warns(UserWarning, match="reuses the training entries"):
        RootFileProcess(HZZ, hzz_mapping(), holdout_fraction=0).holdout()


# --- a CMS-dimuon-like ntuple (conftest's cms_dimuon): flat Cartesian and polar branches, charges ---
def leading_first(columns: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """(pt, η, φ) of both muons of these rows, the harder first, computed from the Cartesian branches."""
    out = []
    for row in rows:
        muons = []
        for i in (1, 2):
            px, py, pz = (columns[f"{c}{i}"][row] for c in ("px", "py", "pz"))
            pt = math.hypot(px, py)
            muons.append([pt, math.asinh(pz / pt), math.atan2(py, px)])
        muons.sort(key=lambda m: -m[0])
        out.append(muons[0] + muons[1])
    return np.array(out)


CARTESIAN = {"like": "z_mumu", "cut": "Type == 'GG'",
             "collections": {"mu": {c: [f"{c}1", f"{c}2"] for c in ("px", "py", "pz", "E")}}}
POLAR_BRANCHES = {"like": "z_mumu", "cut": "Type == 'GG'",
                  "branches": {f"mu{i}_{v}": f"{v}{i}" for i in (1, 2) for v in ("pt", "eta", "phi")}}


@pytest.fixture
def cms(cms_dimuon) -> tuple[Path, dict[str, np.ndarray]]:
    return cms_dimuon


def test_flat_cartesian_branches_are_mapped_and_pt_ordered(cms):
    path, columns = cms
    gg = np.flatnonzero(columns["Type"] == "GG")
    events = RootFileProcess(path, CARTESIAN, holdout_fraction=0, step_size=77).sample(len(gg), seed=0)
    np.testing.assert_allclose(events, leading_first(columns, gg), rtol=1e-9, atol=1e-9)
    # the same muons from the flat pT/η/φ branches, reordered after mapping
    polar = RootFileProcess(path, POLAR_BRANCHES, holdout_fraction=0).sample(len(gg), seed=0)
    np.testing.assert_allclose(polar, events, rtol=1e-9, atol=1e-9)
    mass = ZMuMu().observables(events)["m_mumu"]
    np.testing.assert_allclose(mass, columns["M"][gg], rtol=1e-6)


def test_order_by_pt_false_keeps_the_file_order(cms):
    path, columns = cms
    gg = np.flatnonzero(columns["Type"] == "GG")
    as_filed = RootFileProcess(path, {**POLAR_BRANCHES, "order_by_pt": False},
                               holdout_fraction=0).sample(len(gg), seed=0)
    np.testing.assert_array_equal(as_filed[:, 0], columns["pt1"][gg])
    softer_first = np.mean(as_filed[:, 0] < as_filed[:, 3])
    assert 0.35 < softer_first < 0.65  # what pT ordering repairs: muon 1 is the softer in half the events
    cartesian = RootFileProcess(path, {**CARTESIAN, "order_by_pt": False}, holdout_fraction=0).sample(len(gg), seed=0)
    np.testing.assert_allclose(cartesian[:, 0], columns["pt1"][gg], rtol=1e-9)


@pytest.fixture
def charged_target():
    """A target process with charges among its quantities and a charge-dependent observable."""
    from types import SimpleNamespace

    from bayesgen.core import registry
    from bayesgen.core.hooks import hookimpl
    from bayesgen.core.process import Binning

    class ChargedDimuon(ZMuMu):
        name = "charged_dimuon"
        quantities = ("mu1_pt", "mu1_eta", "mu1_phi", "mu1_charge", "mu2_pt", "mu2_eta", "mu2_phi", "mu2_charge")
        binnings = {"pt_mu_minus": Binning(0.0, 100.0, 20)}

        def observables(self, events):
            return {"pt_mu_minus": np.where(events[:, 3] < 0, events[:, 0], events[:, 4])}

    plugin = SimpleNamespace(bayesgen_processes=hookimpl(lambda: {"charged_dimuon": ChargedDimuon}))
    registry.registry().manager.register(plugin, name="test-charged-dimuon")
    yield "charged_dimuon"
    registry.registry().manager.unregister(plugin)


def test_charges_fill_quantities_observables_and_selections(cms, charged_target):
    path, columns = cms
    mapping = {"like": charged_target, "cut": "Type == 'GG'", "collections": {"mu": {
        **{c: [f"{c}1", f"{c}2"] for c in ("pt", "eta", "phi")}, "charge": ["Q1", "Q2"]}}}
    gg = np.flatnonzero(columns["Type"] == "GG")
    process = RootFileProcess(path, mapping, holdout_fraction=0)
    events = process.sample(len(gg), seed=0)
    first_is_lead = columns["pt1"][gg] >= columns["pt2"][gg]
    np.testing.assert_array_equal(events[:, 3], np.where(first_is_lead, columns["Q1"][gg], columns["Q2"][gg]))
    np.testing.assert_array_equal(events[:, 7], np.where(first_is_lead, columns["Q2"][gg], columns["Q1"][gg]))
    minus_pt = np.where(columns["Q1"][gg] < 0, columns["pt1"][gg], columns["pt2"][gg])
    opposite = columns["Q1"][gg] != columns["Q2"][gg]
    np.testing.assert_allclose(process.observables(events)["pt_mu_minus"][opposite], minus_pt[opposite])
    # in selections: the collection's opposite_charge, or a cut on the charge branches
    pairs = RootFileProcess(path, {**mapping, "collections": {"mu": {**mapping["collections"]["mu"],
                                                                     "opposite_charge": True}}},
                            holdout_fraction=0, allow_fewer=True)
    by_cut = RootFileProcess(path, {**mapping, "cut": "Type == 'GG' and Q1 * Q2 < 0"}, holdout_fraction=0,
                             allow_fewer=True)
    with pytest.warns(UserWarning, match=f"using all {opposite.sum()}"):
        a = pairs.sample(len(gg), seed=0)
    with pytest.warns(UserWarning, match=f"using all {opposite.sum()}"):
        b = by_cut.sample(len(gg), seed=0)
    np.testing.assert_array_equal(a, b)
    assert np.all(a[:, 3] * a[:, 7] < 0)


@pytest.mark.parametrize("cut,reference", [
    ("Type == 'GG'", lambda c: c["Type"] == "GG"),
    ("Type != 'GG' and pt1 > 30", lambda c: (c["Type"] != "GG") & (c["pt1"] > 30)),
    ("not Type in ['GT'] or 25 < pt2 <= 35", lambda c: (c["Type"] != "GT") | ((c["pt2"] > 25) & (c["pt2"] <= 35))),
    ("(abs(eta1) < 1.2) & (M > 40) | ~(Q1 == Q2)",
     lambda c: ((np.abs(c["eta1"]) < 1.2) & (c["M"] > 40)) | (c["Q1"] != c["Q2"])),
    ("sqrt(px1 ** 2 + py1 ** 2) / pt1 > 0.999 and Event % 2 == 0", lambda c: c["Event"] % 2 == 0),
])
def test_cut_expressions_select_like_numpy(cms, cut, reference):
    path, columns = cms
    expected = np.flatnonzero(reference(columns))
    process = RootFileProcess(path, {**POLAR_BRANCHES, "cut": cut}, holdout_fraction=0, step_size=50)
    assert np.array_equal(process.sample_arrays(len(expected), seed=0)["entry"], expected)


@pytest.mark.parametrize("cut,message", [
    ("Type = 'GG'", "is not a valid expression"),
    ("__import__('os').system('true')", "this call"),
    ("Type.upper() == 'GG'", "this call"),
    ("pt1[0] > 3", "a Subscript"),
    ("[x for x in pt1]", "a ListComp"),
    ("pt1 > 3 if M else 0", "a IfExp"),
    ("pt1 in pt2", "`in` takes a list of constants"),
    ("pt1 is None", "the comparison Is"),
])
def test_cut_expressions_refuse_everything_else(cms, cut, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        RootFileProcess(cms[0], {**POLAR_BRANCHES, "cut": cut}, holdout_fraction=0)


def test_cut_errors_name_the_branch_or_the_result(cms):
    with pytest.raises(DataError, match=r"branch 'Typ' not in tree 'events'.*did you mean Type"):
        RootFileProcess(cms[0], {**POLAR_BRANCHES, "cut": "Typ == 'GG'"}, holdout_fraction=0).sample(1, seed=0)
    with pytest.raises(ConfigError, match=r"gives float64 values, not true/false"):
        RootFileProcess(cms[0], {**POLAR_BRANCHES, "cut": "pt1 * 2"}, holdout_fraction=0).sample(1, seed=0)
    with pytest.raises(ConfigError, match=r"cut must be an expression in a string"):
        RootFileProcess(cms[0], {**POLAR_BRANCHES, "cut": ["Type == 'GG'"]}, holdout_fraction=0)


def _identities(columns, entries) -> set[tuple[int, int]]:
    return set(zip(columns["Run"][entries].tolist(), columns["Event"][entries].tolist()))


@pytest.mark.filterwarnings("ignore:.*using all:UserWarning")
def test_split_by_event_identity_keeps_every_row_of_an_event_on_one_side(cms):
    path, columns = cms
    mapping = {**POLAR_BRANCHES, "split_by": ["Run", "Event"]}
    del mapping["cut"]
    process = RootFileProcess(path, mapping, allow_fewer=True, step_size=37)
    with pytest.warns(UserWarning, match=r"233 selected rows repeat an event \(Run, Event\)"):
        train = process.sample_arrays(10_000, seed=0)["entry"]
    with pytest.warns(UserWarning, match="repeat an event"):
        held_out = process.holdout().sample_arrays(10_000, seed=1)["entry"]
    assert not _identities(columns, train) & _identities(columns, held_out)
    assert len(train) + len(held_out) == len(columns["Run"])
    n_events = len(_identities(columns, np.arange(len(columns["Run"]))))
    assert len(_identities(columns, held_out)) / n_events == pytest.approx(0.2, abs=0.06)
    # split by entry (the default), the two rows of an event often land on both sides
    by_entry = RootFileProcess(path, {k: v for k, v in mapping.items() if k != "split_by"}, allow_fewer=True)
    with pytest.warns(UserWarning):
        a, b = by_entry.sample_arrays(10_000, 0)["entry"], by_entry.holdout().sample_arrays(10_000, 1)["entry"]
    assert len(_identities(columns, a) & _identities(columns, b)) > 20


def test_deduplicate_keeps_the_first_selected_row_of_each_event(cms):
    path, columns = cms
    mapping = {**POLAR_BRANCHES, "split_by": ["Run", "Event"], "deduplicate": True, "cut": "pt1 > 0"}
    entries = RootFileProcess(path, mapping, holdout_fraction=0, allow_fewer=True, step_size=37)  # across chunks
    with pytest.warns(UserWarning, match="using all 400"):
        rows = entries.sample_arrays(10_000, seed=0)["entry"]
    _, first = np.unique(np.stack([columns["Run"], columns["Event"]]), axis=1, return_index=True)
    np.testing.assert_array_equal(rows, np.sort(first))
    assert set(columns["Type"][rows]) == {"GG"}
    with pytest.raises(ConfigError, match="deduplicate = true needs split_by"):
        RootFileProcess(path, {**POLAR_BRANCHES, "deduplicate": True})
    with pytest.raises(DataError, match=r"split_by = \['Type'\] must name integer branches"):
        RootFileProcess(path, {**POLAR_BRANCHES, "split_by": "Type"}, holdout_fraction=0).sample(1, seed=0)


def test_mapping_mistakes_get_one_line_that_says_the_fix(cms):
    path, _ = cms
    flat_as_jagged = {**CARTESIAN, "collections": {"mu": {c: f"{c}1" for c in ("px", "py", "pz", "E")}}}
    with pytest.raises(DataError, match=r"\[collections.mu\] px = 'px1': that branch of tree 'events' is flat "
                                        r".* list one per object: px = \[\"px1\", …\]"):
        RootFileProcess(path, flat_as_jagged, holdout_fraction=0).sample(1, seed=0)
    with pytest.raises(ConfigError, match=r"\[branches\] mu1_pt must name one branch \(a string\), got "
                                          r"\['pt1', 'pt2'\] \(one branch per object belongs in a "
                                          r"\[collections.<prefix>\] table"):
        RootFileProcess(path, {**POLAR_BRANCHES, "branches": {**POLAR_BRANCHES["branches"],
                                                              "mu1_pt": ["pt1", "pt2"]}})
    with pytest.raises(ConfigError, match=r"mixes jagged branches and lists"):
        RootFileProcess(path, {**CARTESIAN, "collections": {"mu": {**CARTESIAN["collections"]["mu"], "E": "E1"}}})
    with pytest.raises(ConfigError, match=r"unknown key 'order_by_PT' in the mapping \(did you mean 'order_by_pt'"):
        RootFileProcess(path, {**CARTESIAN, "order_by_PT": False})
    with pytest.raises(ConfigError, match=r"pt_min in \[collections.mu\] must be a number, got 'high'"):
        RootFileProcess(path, {**CARTESIAN, "collections": {"mu": {**CARTESIAN["collections"]["mu"],
                                                                   "pt_min": "high"}}})
    with pytest.raises(DataError, match=r"\[collections.mu\] px lists 'Muon_Px', a jagged branch .* px = \"Muon_Px\""):
        RootFileProcess(HZZ, {"like": "z_mumu", "collections": {"mu": {
            c: [f"Muon_{c.capitalize() if c != 'E' else c}"] * 2 for c in ("px", "py", "pz", "E")}}},
            holdout_fraction=0).sample(1, seed=0)
