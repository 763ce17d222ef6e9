"""Tests of the embedded Z/γ* → e⁺e⁻ generator (shared Drell–Yan code with z_mumu)."""
from __future__ import annotations

import numpy as np
import pytest

from bayesgen.plugins.processes import z_ee
from bayesgen.plugins.processes.z_ee import ZEE
from bayesgen.plugins.processes.z_mumu import ZMuMu
from bayesgen.validation.observables import wrap_phi

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


def _expected_iqr(proc, resolution, seed):
    """IQR of the truth mass smeared to first order, M → M (1 + ½(r₁n₁ + r₂n₂)), with the
    resolution formula written out here, after the acceptance of ``proc`` on truth leptons."""
    rng = np.random.default_rng(seed)
    t = proc.generate_truth(2 * N, rng)
    a, b = t[f"{proc.lepton}_minus"], t[f"{proc.lepton}_plus"]
    pa, pb, ea, eb = (np.asarray(v) for v in (a.pt, b.pt, a.eta, b.eta))
    keep = proc.accepted(pa, ea) & proc.accepted(pb, eb)
    na, nb = rng.standard_normal((2, keep.sum()))
    m = t["mass"][keep] * (1 + 0.5 * (resolution(pa[keep]) * na + resolution(pb[keep]) * nb))
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
    # Breit–Wigner alone gives IQR ≈ 1.95 GeV; σ_M ≈ 1.1 GeV (ee) vs 0.94 GeV (μμ).
    assert abs(iqr_ee - exp_ee) < 0.06 and abs(iqr_mumu - exp_mumu) < 0.06
    assert 2.45 < iqr_ee < 2.85
    assert 0.1 < iqr_ee - iqr_mumu < 0.35
    assert abs((iqr_ee - iqr_mumu) - (exp_ee - exp_mumu)) < 0.08


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
