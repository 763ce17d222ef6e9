"""What every process promises: every registered plugin through the contract of
``bayesgen/core/process.py`` (:func:`check_process`), and what the embedded Monte Carlo
processes promise besides."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import bayesgen
from bayesgen.core import registry
from bayesgen.core.errors import ContractError
from bayesgen.core.process import Binning, Process, check_process, physical_objects

EMBEDDED = ["z_mumu", "z_ee", "h_zz_4mu", "z_mumu_jets", "ecal_cloud", "jet_images"]


@pytest.mark.parametrize("name", EMBEDDED)
def test_reproducible_and_seed_dependent(name):
    process = bayesgen.get_process(name)
    a, b, c = process.sample(3000, 1), process.sample(3000, 1), process.sample(3000, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert process.sample(0, 3).shape == (0, len(process.quantities))
    assert set(process.observables(a)) == set(process.binnings)


# --- support: the truth lies in it, hand-made unphysical events do not --------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "w_munu"
MADGRAPH = Path(__file__).parent / "data" / "pylhe-testfile-madgraph-2.2.1-Z-ckkwl-2000.lhe.gz"


@pytest.fixture(scope="module")
def w_munu():
    """The example plugin's process, imported from the checkout."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield importlib.import_module("bayesgen_w_munu.process").WMuNu()
    finally:
        sys.path.remove(str(EXAMPLE))


def truth_in_support(process, n=2000, seed=11):
    events = process.sample(n, seed)
    assert process.support(events).all(), f"{process.name}: its own events left the support"
    assert process.support(events, selection=False).all()
    return events


@pytest.mark.parametrize("name", EMBEDDED)
def test_own_truth_lies_in_the_support(name):
    truth_in_support(bayesgen.get_process(name))


def test_example_plugin_truth_lies_in_the_support(w_munu):
    events = truth_in_support(w_munu)
    met_beyond_beam = events[:3].copy()
    met_beyond_beam[:, 3] = 7000.0
    assert not w_munu.support(met_beyond_beam, selection=False).any()


# (column, value, outside with the selection, outside the physical limits): one event edited
UNPHYSICAL = {
    "z_mumu": [("mu1_pt", 3.7e13, True, True), ("mu1_pt", np.nan, True, True), ("mu2_eta", np.inf, True, True),
               ("mu1_phi", 3.5, True, True), ("mu1_eta", 2.6, True, False), ("mu2_pt", 5.0, True, False),
               ("mu2_pt", 1000.0, True, False),  # sub-leading above the leading muon
               ("mu1_pt", -1.0, True, True)],
    "z_ee": [("e1_pt", 7000.0, True, True), ("e1_eta", 1.5, True, False), ("e2_phi", -np.pi, True, True)],
    "h_zz_4mu": [("mu3_pt", 1e9, True, True), ("mu4_eta", -2.5, True, False), ("mu2_phi", np.nan, True, True)],
    "z_mumu_jets": [("j1_pt", 1e13, True, True), ("j1_m", -5.0, True, True), ("j1_eta", 2.7, True, False),
                    ("j3_pt", 30.0, True, True),  # a jet beyond the multiplicity
                    ("n_jets", 1.5, True, True), ("mu1_pt", np.nan, True, True)],
    "ecal_cloud": [("hit0_e", 1e5, True, True), ("hit0_e", np.nan, True, True), ("hit1_eta", 1.5, True, False),
                   ("n_hits", 301.0, True, True), ("is_top", 0.5, True, True), ("hit0_e", 0.05, True, False)],
    "jet_images": [("ecal_16_16", -1.0, True, True), ("hcal_10_10", 1e4, True, True), ("track_0_0", 0.2, True, False),
                   ("is_gluon", np.nan, True, True)],
}


@pytest.mark.parametrize("name,column,value,out_selected,out_physical",
                         [(name, *case) for name, cases in UNPHYSICAL.items() for case in cases])
def test_hand_made_unphysical_events_are_outside(name, column, value, out_selected, out_physical):
    process = bayesgen.get_process(name)
    events = process.sample(50, seed=3)
    if name == "z_mumu_jets":
        events = events[events[:, process.quantities.index("n_jets")] == 1]
    assert process.support(events).all()
    edited = events.copy()
    edited[0, process.quantities.index(column)] = value
    assert process.support(edited)[1:].all()
    assert process.support(edited)[0] == (not out_selected)
    assert process.support(edited, selection=False)[0] == (not out_physical)


def test_energy_beyond_the_beam_is_unphysical_even_below_half_sqrt_s():
    """pT = 6 TeV at η = 2 carries E = 22.6 TeV: no 13 TeV collision makes that muon."""
    pt, eta, phi = np.array([[6000.0, 40.0]]), np.array([[2.0, 0.0]]), np.zeros((1, 2))
    assert not physical_objects(pt, eta, phi, 0.1, 13000.0)[0]
    assert physical_objects(pt, np.zeros((1, 2)), phi, 0.1, 13000.0)[0]
    # two muons of 6 TeV each at η = 0 are each allowed, together beyond √s only with a third
    three = np.full((1, 3), 6000.0)
    assert physical_objects(three[:, :2], np.zeros((1, 2)), np.zeros((1, 2)), 0.0, 13000.0)[0]
    assert not physical_objects(three, np.zeros((1, 3)), np.zeros((1, 3)), 0.0, 13000.0)[0]


def test_default_support_is_finiteness(third_party_plugin):
    process = bayesgen.get_process("toy_gauss")
    events = process.sample(10, 0)
    events[3, 1] = np.nan
    assert process.support(events).tolist() == [i != 3 for i in range(10)]


def test_file_processes_use_the_target_physics_without_its_selection():
    """A file selected by looser cuts than its target (LHE partons at any η, muons below the
    target's pT threshold) is in the support; an unphysical event is not."""
    from bayesgen.plugins.processes.lhe_file import LHEFileProcess

    for like in ("z_mumu", "z_mumu_jets"):
        process = LHEFileProcess(MADGRAPH, like=like, leptons=[13, -13], holdout_fraction=0, allow_fewer=True)
        events = process.sample(5003, seed=0)
        assert process.support(events).all()
        assert not process.target.support(events).all(), "the file is meant to pass looser cuts than the target"
        events[0, 0] = 3.7e13
        assert not process.support(events)[0]


def test_cloud_file_events_lie_in_the_support(tmp_path):
    from bayesgen.plugins.processes.cloud_file import CloudFileProcess

    target = bayesgen.get_process("ecal_cloud")
    clouds = target.clouds(target.sample(200, seed=4))
    np.savez(tmp_path / "clouds.npz", eta=clouds[..., 0], phi=clouds[..., 1], e=clouds[..., 2])
    process = CloudFileProcess(tmp_path / "clouds.npz", holdout_fraction=0)
    events = process.sample(200, seed=0)
    assert process.support(events).all()
    events[0, 4] = -1.0  # a negative hit energy
    assert not process.support(events)[0]



# --- every registered process through the contract ----------------------------------------------

DATA = Path(__file__).parent / "data"
HZZ_MAPPING = {"like": "z_mumu", "tree": "events", "weight": "EventWeight",
               "collections": {"mu": {"px": "Muon_Px", "py": "Muon_Py", "pz": "Muon_Pz", "E": "Muon_E",
                                      "charge": "Muon_Charge", "opposite_charge": True}}}


def clouds_file(folder: Path) -> Path:
    target = bayesgen.get_process("ecal_cloud")
    clouds = target.clouds(target.sample(60, seed=4))
    np.savez(folder / "clouds.npz", eta=clouds[..., 0], phi=clouds[..., 1], e=clouds[..., 2])
    return folder / "clouds.npz"


#: options for the processes that read a file (the others take none)
FILE_OPTIONS = {
    "root_file": lambda folder: {"path": DATA / "uproot-HZZ.root", "mapping": HZZ_MAPPING, "holdout_fraction": 0},
    "lhe_file": lambda folder: {"path": MADGRAPH, "like": "z_mumu", "leptons": [13, -13], "holdout_fraction": 0},
    "cloud_file": lambda folder: {"path": clouds_file(folder), "holdout_fraction": 0},
}


@pytest.mark.parametrize("name", sorted(registry.registry().plugins("processes")))
def test_every_registered_process_meets_its_contract(name, tmp_path):
    options = FILE_OPTIONS[name](tmp_path) if name in FILE_OPTIONS else {}
    process = registry.get_process(name, **options)
    check_process(process, f"the process {name!r}", process.sample(40, seed=5))


def test_the_example_plugin_meets_its_contract(w_munu):
    check_process(w_munu, "the process 'w_munu'", w_munu.sample(40, seed=5))


class Flat(Process):
    """A process that keeps its contract, to be broken one rule at a time."""

    name, description = "flat", "two uniform numbers"
    quantities = feature_names = ("a", "b")
    binnings = {"a": Binning(0, 1, 10), "b": Binning(0, 1, 10)}

    def sample(self, n, seed):
        return np.random.default_rng(seed).random((n, 2))

    def to_features(self, events):
        return np.asarray(events)

    def from_features(self, features, rng, conditions=None):
        return np.asarray(features)

    def observables(self, events):
        return {"a": events[:, 0], "b": events[:, 1]}


class TwoArguments(Flat):
    def from_features(self, features, rng):
        return np.asarray(features)


class MissingObservable(Flat):
    def observables(self, events):
        return {"a": events[:, 0]}


class MaskWithoutPoints(Flat):
    condition_names = ("mask_0", "mask_1")
    mask_conditions = 2


class WrongWidth(Flat):
    def to_features(self, events):
        return np.asarray(events)[:, :1]


@pytest.mark.parametrize("broken,rule", [
    (TwoArguments, "from_features must take (features, rng, conditions=None)"),
    (MissingObservable, "observables must have the keys of binnings: ['b'] differ"),
    (MaskWithoutPoints, "a point mask of 2 conditions needs feature_shape (N=2, C), got None"),
    (WrongWidth, "to_features must return (30, 2), got (30, 1)"),
])
def test_a_broken_process_is_named_with_the_rule(broken, rule):
    check_process(Flat(), "the process 'flat'", Flat().sample(30, 0))
    with pytest.raises(ContractError) as error:
        check_process(broken(), "the process 'broken'", Flat().sample(30, 0))
    assert str(error.value) == f"the process 'broken' breaks the process contract: {rule}"


def test_building_a_process_checks_its_declarations(monkeypatch):
    """Core checks the declarations when it builds a process, before any training."""
    from bayesgen.engine.config import TrainConfig
    from bayesgen.engine.model import build_process

    real = registry.registry().get
    monkeypatch.setattr(registry.registry(), "get",
                        lambda kind, name: TwoArguments if name == "two_arguments" else real(kind, name))
    with pytest.raises(ContractError, match="the process 'two_arguments' breaks the process contract: from_features"):
        build_process(TrainConfig(process="two_arguments"))
