"""The z_mumu_jets Monte Carlo: recoil, separation, ordering, multiplicity and the
variable-length feature map."""
import numpy as np
import pytest

import bayesgen
from bayesgen.plugins.processes import z_mumu_jets as zj
from bayesgen.validation.observables import wrap_phi

N = 100_000


@pytest.fixture(scope="module")
def process():
    return bayesgen.get_process("z_mumu_jets")


@pytest.fixture(scope="module")
def events(process):
    return process.sample(N, seed=11)


def jets_of(events):
    return events[:, 7:].reshape(-1, zj.MAX_JETS, 4)


def test_generated_multiplicity_and_jet_spectrum(process):
    jets, n = process.generate_jets(200_000, np.random.default_rng(0))
    fractions = np.bincount(n, minlength=4)[1:] / len(n)
    np.testing.assert_allclose(fractions, zj.multiplicity_probabilities(), atol=0.005)
    pt = jets[n == 1, 0, 0]  # a single jet follows p(pT) ∝ pT^-a exactly
    ratio = ((pt > 30) & (pt < 60)).sum() / ((pt > 60) & (pt < 120)).sum()
    assert ratio == pytest.approx(2 ** (zj.JET_PT_POWER - 1), rel=0.05)


def test_reconstructed_jets_are_ordered_accepted_and_counted(events):
    jets, n_jets = jets_of(events), events[:, 6]
    present = jets[..., 0] > 0
    np.testing.assert_array_equal(present.sum(axis=1), n_jets)
    np.testing.assert_array_equal(present, np.arange(3) < n_jets[:, None])  # no holes
    assert np.all(jets[~present] == 0.0)
    assert np.all(jets[present][:, 0] > zj.JET_PT_MIN) and np.all(np.abs(jets[present][:, 1]) < zj.JET_ETA_MAX)
    assert np.all(np.diff(np.where(present, jets[..., 0], 0.0), axis=1) <= 0)
    assert set(np.unique(n_jets)) == {1, 2, 3}
    fractions = np.bincount(n_jets.astype(int))[1:] / len(n_jets)
    assert fractions[0] > fractions[1] > fractions[2] > 0.01


def test_jets_are_separated_from_each_other_and_the_muons(events):
    jets = jets_of(events)
    present = jets[..., 0] > 0
    for i in range(3):
        for eta, phi in ((events[:, 1], events[:, 2]), (events[:, 4], events[:, 5])):
            dr = np.hypot(jets[:, i, 1] - eta, wrap_phi(jets[:, i, 2] - phi))
            assert np.all(dr[present[:, i]] >= zj.DELTA_R_MIN)
        for k in range(i + 1, 3):
            dr = np.hypot(jets[:, i, 1] - jets[:, k, 1], wrap_phi(jets[:, i, 2] - jets[:, k, 2]))
            assert np.all(dr[present[:, k]] >= zj.DELTA_R_MIN)


def test_z_recoils_against_the_jets(process, events):
    one = events[:, 6] == 1
    ev = events[one]
    z = [sum(ev[:, 3 * m] * f(ev[:, 3 * m + 2]) for m in (0, 1)) for f in (np.cos, np.sin)]
    j = [ev[:, 7] * f(ev[:, 9]) for f in (np.cos, np.sin)]
    imbalance = np.hypot(z[0] + j[0], z[1] + j[1])
    assert np.median(imbalance) < 2 * zj.SOFT_SIGMA  # ~ soft term ⊕ resolution; 2 pT if not recoiling
    observables = process.observables(events)
    assert np.median(observables["dphi_mumu_j1"][one]) > 2.9
    assert np.corrcoef(observables["y_mumu"], observables["j1_eta"])[0, 1] > 0.1


def test_z_peak_is_that_of_z_mumu(process, events):
    mass = process.observables(events)["m_mumu"]
    reference = bayesgen.get_process("z_mumu").observables(bayesgen.get_process("z_mumu").sample(N, 11))["m_mumu"]
    iqr = np.subtract(*np.percentile(mass, [75, 25]))
    assert np.median(mass) == pytest.approx(zj.drell_yan.M_Z, abs=0.1)
    assert iqr == pytest.approx(np.subtract(*np.percentile(reference, [75, 25])), rel=0.1)


def test_features_round_trip_with_9_13_or_17_used(process, events):
    conditions = process.conditions(events)
    mask = process.feature_mask(conditions)
    np.testing.assert_array_equal(np.unique(mask.sum(axis=1)), [9, 13, 17])
    features = process.to_features(events)
    assert np.isfinite(features).all()
    back = process.from_features(features, np.random.default_rng(0), conditions)
    rotation = wrap_phi(back[:, 2] - events[:, 2])
    phi_columns = [2, 5, 9, 13, 17]
    others = [c for c in range(events.shape[1]) if c not in phi_columns]
    np.testing.assert_allclose(back[:, others], events[:, others], rtol=1e-9, atol=1e-9)
    for c in phi_columns[1:]:
        present = events[:, c - 2] > 0
        assert np.abs(wrap_phi(back[:, c] - events[:, c] - rotation)[present]).max() < 1e-9
    assert np.all(back[events[:, 6] < 3][:, 15:] == 0.0)


def test_per_jet_observables_are_undefined_where_the_jet_is_absent(process, events):
    observables = process.observables(events)
    n_jets = events[:, 6]
    np.testing.assert_array_equal(np.isnan(observables["j2_pt"]), n_jets < 2)
    np.testing.assert_array_equal(np.isnan(observables["m_j1j2"]), n_jets < 2)
    np.testing.assert_array_equal(np.isnan(observables["j3_eta"]), n_jets < 3)
    np.testing.assert_allclose(observables["ht"], jets_of(events)[..., 0].sum(axis=1))
