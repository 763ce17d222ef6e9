"""Tests of the embedded Z/γ* → e⁺e⁻ generator (shared Drell–Yan code with z_mumu)."""
from __future__ import annotations

import numpy as np
import pytest

from bayesgen.core.kinematics import wrap_phi
from bayesgen.plugins.processes import z_ee
from bayesgen.plugins.processes.lorentz import pt_eta_phi
from bayesgen.plugins.processes.z_ee import ZEE
from bayesgen.plugins.processes.z_mumu import ZMuMu

N = 100_000
M_Z = 91.1876


def _r_electron(pt):
    return np.sqrt(0.10**2 / pt + 0.007**2)     # 10 %/√E ⊕ 0.7 %, E → pT


def _r_muon(pt):
    return 0.01 + 1e-4 * pt


@pytest.fixture(scope="module")
def process() -> ZEE:
    return ZEE()


@pytest.fixture(scope="module")
def events(process) -> np.ndarray:
    return process.sample(N, seed=7)


def _iqr(m):
    w = m[(m > 86.0) & (m < 96.0)]
    q25, q50, q75 = np.percentile(w, [25, 50, 75])
    return q50, q75 - q25


def _pair_mass(a, b):
    p = a + b
    return np.sqrt(np.maximum(p[:, 3] ** 2 - np.sum(p[:, :3] ** 2, axis=1), 0.0))


def _expected_iqr(proc, resolution, seed):
    """IQR of the unsmeared reconstructed-lepton mass smeared to first order,
    M → M (1 + ½(r₁n₁ + r₂n₂)), with the resolution formula written out here, after the
    acceptance of ``proc``."""
    rng = np.random.default_rng(seed)
    t = proc.generate_truth(2 * N, rng)
    a, b = proc.lepton_momenta(t)
    (pa, ea, _), (pb, eb, _) = pt_eta_phi(a), pt_eta_phi(b)
    keep = proc.accepted(pa, ea) & proc.accepted(pb, eb)
    na, nb = rng.standard_normal((2, keep.sum()))
    m = _pair_mass(a[keep], b[keep]) * (1 + 0.5 * (resolution(pa[keep]) * na + resolution(pb[keep]) * nb))
    return _iqr(m)[1]


def test_shape_acceptance_and_crack(process, events):
    assert events.shape == (N, 6) and events.dtype == np.float64
    assert np.isfinite(events).all()
    pt = events[:, [0, 3]]
    eta = np.abs(events[:, [1, 4]])
    assert (pt > 25.0).all() and (pt[:, 0] >= pt[:, 1]).all()
    assert (eta < 2.5).all() and (eta > 2.4).any()
    assert not ((eta > 1.4442) & (eta < 1.566)).any()
    # the crack is a narrow gap: its neighbourhood is populated on both sides
    assert ((eta > 1.40) & (eta < 1.4442)).sum() > 500
    assert ((eta > 1.566) & (eta < 1.61)).sum() > 500
    phi = events[:, [2, 5]]
    assert (phi > -np.pi).all() and (phi <= np.pi).all()


def test_resolution_formula(process):
    np.testing.assert_allclose(z_ee.electron_resolution(np.array([45.0, 25.0])),
                               [0.0164688, 0.0211896], rtol=1e-4)
    rng = np.random.default_rng(1)
    pt = np.full(200_000, 40.0)
    rel = process.smear_pt(pt, np.zeros_like(pt), rng) / pt - 1
    assert abs(rel.std() / _r_electron(40.0) - 1) < 0.01 and abs(rel.mean()) < 1e-4


def test_mass_peak_broader_than_muons(process, events):
    q50, iqr_ee = _iqr(process.observables(events)["m_ee"])
    mumu = ZMuMu()
    _, iqr_mumu = _iqr(mumu.observables(mumu.sample(N, seed=7))["m_mumu"])
    assert abs(q50 - M_Z) < 0.3
    exp_ee = _expected_iqr(process, _r_electron, 5)
    exp_mumu = _expected_iqr(mumu, _r_muon, 6)
    # σ_M ≈ 1.1 GeV (ee) against 0.94 GeV (μμ) on a Breit–Wigner of IQR ≈ 1.95 GeV
    assert abs(iqr_ee - exp_ee) < 0.06 and abs(iqr_mumu - exp_mumu) < 0.06
    assert 2.3 < iqr_ee < 2.9
    assert 0.05 < iqr_ee - iqr_mumu < 0.4


@pytest.fixture(scope="module")
def tails():
    """Fraction of events whose bare or dressed lepton pair lost more than 5 % of the Born mass,
    for electrons and muons (same seed), before (``"all"``) and after the acceptance."""
    out = {}
    for lepton, proc in (("e", ZEE(dress_cone=0.0)), ("mu", ZMuMu())):
        t = proc.generate_truth(N, np.random.default_rng(9))
        for cone in ((0.0, 0.1) if lepton == "e" else (0.0,)):
            proc.dress_cone = cone
            a, b = proc.lepton_momenta(t)
            (pa, ea, _), (pb, eb, _) = pt_eta_phi(a), pt_eta_phi(b)
            keep = proc.accepted(pa, ea) & proc.accepted(pb, eb)
            lost = _pair_mass(a, b) < 0.95 * t["mass"]
            out[lepton, cone, "all"], out[lepton, cone, "accepted"] = np.mean(lost), np.mean(lost[keep])
    return out


def test_bare_electrons_have_the_larger_radiative_tail(tails):
    # first order: the tail scales with ln(M²/m²) − 1: 23.2 for electrons, 12.5 for muons; the
    # acceptance then removes more of the electrons' tail (p_T > 25 against 20 GeV)
    ratio = tails["e", 0.0, "all"] / tails["mu", 0.0, "all"]
    assert ratio == pytest.approx((2 * np.log(M_Z / 0.000511) - 1) / (2 * np.log(M_Z / 0.10566) - 1), rel=0.08)
    assert tails["e", 0.0, "accepted"] > 1.3 * tails["mu", 0.0, "accepted"]


def test_dressing_recovers_most_of_the_collinear_photons(tails):
    # the photons outside ΔR = 0.1 carry a log of angles ~ln(1/0.1²), not ln(M²/m_e²)
    for selection in ("all", "accepted"):
        assert tails["e", 0.1, selection] < 0.5 * tails["e", 0.0, selection]
        assert tails["e", 0.1, selection] < tails["mu", 0.0, selection]


def test_dressed_electron_is_the_bare_one_plus_its_photons():
    proc = ZEE()
    t = proc.generate_truth(3000, np.random.default_rng(4))
    dressed = proc.lepton_momenta(t)
    bare = [t["e_minus"], t["e_plus"]]
    for i in np.flatnonzero(t["n_photons"] > 0)[:300]:
        expected = [bare[0][i].copy(), bare[1][i].copy()]
        for photon in t["photons"][i, :t["n_photons"][i]]:
            _, eta_g, phi_g = pt_eta_phi(photon)
            distance = [np.hypot(eta_g - pt_eta_phi(b[i])[1], wrap_phi(phi_g - pt_eta_phi(b[i])[2])) for b in bare]
            nearer = int(distance[1] < distance[0])
            if distance[nearer] < z_ee.DRESS_CONE:
                expected[nearer] += photon
        np.testing.assert_allclose(dressed[0][i], expected[0], atol=1e-9)
        np.testing.assert_allclose(dressed[1][i], expected[1], atol=1e-9)


def test_observables_cover_binnings(process, events):
    obs = process.observables(events)
    assert set(obs) == set(process.binnings)
    assert {"m_ee", "pt_ee", "e1_pt", "e2_phi"} <= set(obs)
    for name, v in obs.items():
        assert v.shape == (N,) and np.isfinite(v).all(), name
    np.testing.assert_array_equal(obs["e2_eta"], events[:, 4])


def test_features_finite_and_round_trip(process, events):
    f = process.to_features(events)
    assert f.shape == (N, process.n_features) == (N, 5)
    assert np.isfinite(f).all()
    back = process.from_features(f, np.random.default_rng(0))
    for i in (0, 1, 3, 4):
        np.testing.assert_allclose(back[:, i], events[:, i], rtol=1e-5, atol=1e-9)
    d_orig = wrap_phi(events[:, 5] - events[:, 2])
    d_back = wrap_phi(back[:, 5] - back[:, 2])
    assert np.abs(wrap_phi(d_back - d_orig)).max() < 1e-5 * np.pi
    np.testing.assert_allclose(process.observables(back)["m_ee"],
                               process.observables(events)["m_ee"], rtol=1e-5)


def test_plugin_hook_and_naming():
    assert z_ee.bayesgen_processes() == {"z_ee": ZEE}
    assert ZEE.quantities == ("e1_pt", "e1_eta", "e1_phi", "e2_pt", "e2_eta", "e2_phi")
    assert ZEE.feature_names[0] == "log_e1_pt" and ZEE.name == "z_ee"
    assert ZMuMu.quantities[0] == "mu1_pt" and "m_mumu" in ZMuMu.binnings
