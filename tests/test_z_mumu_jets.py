"""The z_mumu_jets Monte Carlo: jets from the initial-state shower the Z recoils against,
clustering and separation, ordering, multiplicity and the variable-length feature map."""
import numpy as np
import pytest

import bayesgen
from bayesgen.core.kinematics import wrap_phi
from bayesgen.plugins.processes import z_mumu_jets as zj
from bayesgen.plugins.processes.electroweak import M_Z

N = 30_000


@pytest.fixture(scope="module")
def process():
    return bayesgen.get_process("z_mumu_jets")


@pytest.fixture(scope="module")
def events(process):
    return process.sample(N, seed=11)


def jets_of(events):
    return events[:, 7:].reshape(-1, zj.MAX_JETS, 4)


def test_reconstructed_jets_are_ordered_accepted_and_counted(events):
    jets, n_jets = jets_of(events), events[:, 6]
    present = jets[..., 0] > 0
    np.testing.assert_array_equal(present.sum(axis=1), n_jets)
    np.testing.assert_array_equal(present, np.arange(zj.MAX_JETS) < n_jets[:, None])  # no holes
    assert np.all(jets[~present] == 0.0)
    assert np.all(jets[present][:, 0] > zj.JET_PT_MIN) and np.all(np.abs(jets[present][:, 1]) < zj.JET_ETA_MAX)
    assert np.all(np.diff(np.where(present, jets[..., 0], 0.0), axis=1) <= 0)
    assert set(np.unique(n_jets)) == {1, 2, 3}
    fractions = np.bincount(n_jets.astype(int))[1:] / len(n_jets)
    # each extra jet costs about a power of α_s: a falling staircase
    assert fractions[0] > 2 * fractions[1] > 4 * fractions[2] > 0.01


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


def test_clustering_merges_close_partons_and_conserves_momentum():
    rng = np.random.default_rng(0)
    n = 2000
    pt, eta, phi = rng.exponential(30, (n, 5)) + 1, rng.normal(0, 1.5, (n, 5)), rng.uniform(-np.pi, np.pi, (n, 5))
    phi[:, 1] = phi[:, 0] + 0.2                                  # parton 1 sits 0.2 from parton 0
    eta[:, 1] = eta[:, 0]
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=-1)
    jets = zj.cluster(p)
    np.testing.assert_allclose(jets.sum(axis=1), p.sum(axis=1), atol=1e-9)
    present = jets[..., 3] > 0
    assert (present.sum(axis=1) <= 4).all()
    j_pt = np.hypot(jets[..., 0], jets[..., 1])
    j_eta = np.arcsinh(jets[..., 2] / np.where(present, j_pt, 1))
    j_phi = np.arctan2(jets[..., 1], jets[..., 0])
    for a in range(5):
        for b in range(a + 1, 5):
            both = present[:, a] & present[:, b]
            dr = np.hypot(j_eta[:, a] - j_eta[:, b], wrap_phi(j_phi[:, a] - j_phi[:, b]))
            assert (dr[both] >= zj.DELTA_R_MIN).all()
    assert (np.diff(np.where(present, j_pt, 0), axis=1) <= 1e-9).all()


def test_z_recoils_against_the_jets(process, events):
    one = events[:, 6] == 1
    ev = events[one]
    z = [sum(ev[:, 3 * m] * f(ev[:, 3 * m + 2]) for m in (0, 1)) for f in (np.cos, np.sin)]
    j = [ev[:, 7] * f(ev[:, 9]) for f in (np.cos, np.sin)]
    imbalance = np.hypot(z[0] + j[0], z[1] + j[1])
    pt_z, pt_j = np.hypot(*z), ev[:, 7]
    # the Z balances the jet up to the unclustered soft radiation, the primordial k_⊥ and the
    # jet resolution (25 % at 30 GeV): far less than the 2 p_T a non-recoiling Z would leave
    assert np.median(imbalance) < 0.5 * np.median(pt_z + pt_j)
    assert np.median(pt_z / pt_j) == pytest.approx(1.0, abs=0.15)
    observables = process.observables(events)
    assert np.median(observables["dphi_mumu_j1"][one]) > 2.8
    assert np.corrcoef(observables["y_mumu"], observables["j1_eta"])[0, 1] > 0.2


def test_leading_jet_spectrum_falls_like_the_z_pt(process, events):
    observables = process.observables(events)
    pt = observables["j1_pt"]
    assert 25.0 < np.median(pt) < 50.0 and np.mean(pt > 100.0) > 0.03
    above = [np.mean(pt > cut) for cut in (30.0, 60.0, 120.0)]
    assert above[0] > 2 * above[1] > 4 * above[2] > 0


def test_z_peak_is_that_of_z_mumu(process, events):
    mass = process.observables(events)["m_mumu"]
    reference = bayesgen.get_process("z_mumu").observables(bayesgen.get_process("z_mumu").sample(N, 11))["m_mumu"]
    window = lambda m: m[(m > 86) & (m < 96)]
    iqr = np.subtract(*np.percentile(window(mass), [75, 25]))
    assert np.median(window(mass)) == pytest.approx(np.median(window(reference)), abs=0.15)
    assert np.median(window(mass)) == pytest.approx(M_Z, abs=0.4)      # FSR pulls it ~0.2 GeV low
    assert iqr == pytest.approx(np.subtract(*np.percentile(window(reference), [75, 25])), rel=0.1)


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
