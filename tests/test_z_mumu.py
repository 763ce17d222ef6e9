"""Tests of the embedded Z/γ* → μ⁺μ⁻ generator and the dilepton observables."""
from __future__ import annotations

import numpy as np
import pytest

from bayesgen.plugins.processes import drell_yan, z_mumu
from bayesgen.plugins.processes.z_mumu import ZMuMu
from bayesgen.validation.observables import dilepton_observables, wrap_phi

N = 100_000


@pytest.fixture(scope="module")
def process() -> ZMuMu:
    return ZMuMu()


@pytest.fixture(scope="module")
def events(process) -> np.ndarray:
    return process.sample(N, seed=7)


@pytest.fixture(scope="module")
def truth() -> dict:
    return z_mumu.generate_truth(200_000, np.random.default_rng(11))


def _col(process, events, name):
    return events[:, process.quantities.index(name)]


# --- sampling ---------------------------------------------------------------------------------

def test_shape_dtype_and_acceptance(process, events):
    assert events.shape == (N, len(process.quantities)) == (N, 6)
    assert events.dtype == np.float64
    assert np.isfinite(events).all()
    pt1, pt2 = _col(process, events, "mu1_pt"), _col(process, events, "mu2_pt")
    assert (pt1 > z_mumu.PT_MIN).all() and (pt2 > z_mumu.PT_MIN).all()
    assert (pt1 >= pt2).all()
    for eta in ("mu1_eta", "mu2_eta"):
        assert (np.abs(_col(process, events, eta)) < z_mumu.ETA_MAX).all()
    for phi in ("mu1_phi", "mu2_phi"):
        p = _col(process, events, phi)
        assert (p > -np.pi).all() and (p <= np.pi).all()
    assert process.sample(0, 3).shape == (0, 6)


def test_mass_peak_and_width(process, events):
    m = process.observables(events)["m_mumu"]
    w = m[(m > 86.0) & (m < 96.0)]
    q25, q50, q75 = np.percentile(w, [25, 50, 75])
    assert abs(q50 - drell_yan.M_Z) < 0.3
    # Breit–Wigner alone (≈ Cauchy, half-width γ = Γ/2, truncated to ±5 GeV) gives
    # IQR = 2γ tan(atan(5/γ)/2) ≈ 1.95 GeV; the resolution σ_M ≈ M/2·√2·σ(pT)/pT ≈ 0.94 GeV
    # (Gaussian IQR 1.27 GeV) widens it to ≈ 2.3–2.5 GeV.  No smearing → 1.95, doubled
    # resolution or doubled Γ → > 3.
    assert 2.15 < q75 - q25 < 2.75


def test_truth_mass_is_breit_wigner(truth):
    m = truth["mass"]
    assert (m >= drell_yan.M_LOW).all() and (m <= drell_yan.M_HIGH).all()
    w = m[(m > 86.0) & (m < 96.0)]
    q25, q50, q75 = np.percentile(w, [25, 50, 75])
    gamma = drell_yan.GAMMA_Z / 2
    iqr = 2 * gamma * np.tan(np.arctan(5.0 / gamma) / 2)
    assert abs(q50 - drell_yan.M_Z) < 0.05
    assert abs((q75 - q25) - iqr) < 0.05


def test_truth_pair_spectra(truth):
    # p(pT) ∝ pT (1 + pT²/p0²)^(-n): median at p0 √(2^(1/(n-1)) - 1).
    expected = drell_yan.PT_SCALE * np.sqrt(2 ** (1 / (drell_yan.PT_POWER - 1)) - 1)
    assert abs(np.median(truth["pt"]) - expected) < 0.05
    mt = np.sqrt(truth["mass"] ** 2 + truth["pt"] ** 2)
    assert (np.abs(truth["y"]) < np.log(drell_yan.SQRT_S / mt)).all()
    assert 1.85 < truth["y"].std() < 2.02
    assert abs(truth["y"].mean()) < 0.03


def test_muons_sum_to_pair(truth):
    pair, mm, mp = truth["pair"], truth["mu_minus"], truth["mu_plus"]
    s = mm + mp
    for c in ("px", "py", "pz", "E"):
        np.testing.assert_allclose(getattr(s, c), getattr(pair, c), rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(s.mass, truth["mass"], rtol=1e-9)
    np.testing.assert_allclose(mm.mass, z_mumu.MUON_MASS, rtol=1e-6)


def test_collins_soper_angle(truth):
    """cosθ_CS rebuilt from the lab muons with the standard light-cone formula
    cosθ = sign(Q_z) 2(P1⁺P2⁻ − P1⁻P2⁺)/(M √(M² + Q_T²)) / β matches the sampled value."""
    mm, mp, pair = truth["mu_minus"], truth["mu_plus"], truth["pair"]
    p1p, p1m = (mm.E + mm.pz) / np.sqrt(2), (mm.E - mm.pz) / np.sqrt(2)
    p2p, p2m = (mp.E + mp.pz) / np.sqrt(2), (mp.E - mp.pz) / np.sqrt(2)
    m = np.asarray(pair.mass)
    beta = np.sqrt(1 - 4 * z_mumu.MUON_MASS**2 / m**2)
    cos_rec = (np.sign(pair.pz) * 2 * (p1p * p2m - p1m * p2p)
               / (m * np.sqrt(m**2 + pair.pt**2)) / beta)
    c = truth["cos_theta"]
    np.testing.assert_allclose(cos_rec, c, atol=1e-6)
    # p(c) ∝ 1 + c² + (8/3) A_FB c: <c²> = 2/5, <c⁴> = 9/35, (F − B)/(F + B) = A_FB.
    assert abs(np.mean(c**2) - 0.4) < 0.005
    assert abs(np.mean(c**4) - 9 / 35) < 0.005
    assert abs(np.mean(np.sign(c)) - drell_yan.A_FB) < 0.01
    assert abs(np.mean(truth["phi_cs"])) < 0.03


# --- observables ------------------------------------------------------------------------------

def test_wrap_phi_edges():
    pi = np.pi
    x = np.array([0.0, pi, -pi, 3 * pi, -3 * pi, 2 * pi, -2 * pi, 1.0, -1.0,
                  np.nextafter(pi, 4.0), np.nextafter(-pi, -4.0), -1e-20])
    r = wrap_phi(x)
    np.testing.assert_allclose(r[:9], [0, pi, pi, pi, pi, 0, 0, 1, -1], atol=1e-12)
    assert np.all(r > -pi) and np.all(r <= pi)
    assert r[11] == -1e-20  # in-range values pass through unchanged
    # one ulp beyond ±π: either side of the seam is within rounding, the angle must agree
    np.testing.assert_allclose(np.cos(r[9:11]), -1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(r[9:11]), pi, atol=1e-12)
    y = np.random.default_rng(0).uniform(-50, 50, 10_000)
    wy = wrap_phi(y)
    assert np.all(wy > -pi) and np.all(wy <= pi)
    np.testing.assert_allclose(np.cos(wy), np.cos(y), atol=1e-12)
    np.testing.assert_allclose(np.sin(wy), np.sin(y), atol=1e-12)


def test_dilepton_back_to_back():
    m = z_mumu.MUON_MASS
    o = dilepton_observables(np.array([45.6]), np.array([0.0]), np.array([0.3]),
                             np.array([45.6]), np.array([0.0]), np.array([0.3 - np.pi]), m)
    np.testing.assert_allclose(o["mll"], 2 * np.sqrt(45.6**2 + m**2), rtol=1e-12)
    np.testing.assert_allclose(o["ptll"], 0.0, atol=1e-10)
    np.testing.assert_allclose(o["yll"], 0.0, atol=1e-12)
    np.testing.assert_allclose(o["dphi"], np.pi, rtol=1e-12)
    np.testing.assert_allclose(o["dr"], np.pi, rtol=1e-12)
    # Δφ across the ±π seam, and Δη entering ΔR.
    o = dilepton_observables(30.0, 1.0, 3.0, 40.0, -0.5, -3.0, m)
    np.testing.assert_allclose(o["dphi"], 2 * np.pi - 6.0, rtol=1e-12)
    np.testing.assert_allclose(o["dr"], np.hypot(1.5, 2 * np.pi - 6.0), rtol=1e-12)


def test_dilepton_against_explicit_formulas():
    rng = np.random.default_rng(5)
    n, m = 1000, z_mumu.MUON_MASS
    pt1, pt2 = rng.uniform(5, 100, (2, n))
    eta1, eta2 = rng.uniform(-3, 3, (2, n))
    phi1, phi2 = rng.uniform(-np.pi, np.pi, (2, n))
    o = dilepton_observables(pt1, eta1, phi1, pt2, eta2, phi2, m)

    def p4(pt, eta, phi):
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)

    px, py, pz, e = (a + b for a, b in zip(p4(pt1, eta1, phi1), p4(pt2, eta2, phi2)))
    np.testing.assert_allclose(o["mll"], np.sqrt(e**2 - px**2 - py**2 - pz**2), rtol=1e-8)
    np.testing.assert_allclose(o["ptll"], np.hypot(px, py), rtol=1e-10)
    np.testing.assert_allclose(o["yll"], 0.5 * np.log((e + pz) / (e - pz)), rtol=1e-8, atol=1e-10)
    dphi = np.abs(wrap_phi(phi1 - phi2))
    np.testing.assert_allclose(o["dphi"], dphi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(o["dr"], np.hypot(eta1 - eta2, dphi), rtol=1e-10)


def test_observables_cover_binnings(process, events):
    obs = process.observables(events)
    assert set(obs) == set(process.binnings)
    for name, v in obs.items():
        assert v.shape == (N,) and np.isfinite(v).all(), name
    np.testing.assert_array_equal(obs["mu2_eta"], _col(process, events, "mu2_eta"))
    assert (obs["dphi_mumu"] >= 0).all() and (obs["dphi_mumu"] <= np.pi).all()


# --- preprocessing ----------------------------------------------------------------------------

def test_features_finite_and_round_trip(process, events):
    f = process.to_features(events)
    assert f.shape == (N, process.n_features) == (N, 5)
    assert np.isfinite(f).all()
    back = process.from_features(f, np.random.default_rng(0))
    assert back.shape == events.shape
    for i in (0, 1, 3, 4):  # pt, eta
        np.testing.assert_allclose(back[:, i], events[:, i], rtol=1e-5, atol=1e-9)
    phi1 = back[:, 2]
    assert (phi1 > -np.pi).all() and (phi1 <= np.pi).all() and abs(phi1.mean()) < 0.05
    assert (back[:, 5] > -np.pi).all() and (back[:, 5] <= np.pi).all()
    d_orig = wrap_phi(events[:, 5] - events[:, 2])
    d_back = wrap_phi(back[:, 5] - back[:, 2])
    np.testing.assert_allclose(np.abs(d_back), np.abs(d_orig), rtol=1e-5)
    assert np.abs(wrap_phi(d_back - d_orig)).max() < 1e-5 * np.pi


def test_feature_delta_convention(process):
    # back-to-back → δ = 0 → feature 0; collinear in φ (δ = ±π) stays finite (clipped).
    ev = np.array([[40.0, 0.1, 2.0, 30.0, -0.2, 2.0 - np.pi],
                   [40.0, 0.1, -1.0, 30.0, -0.2, -1.0],
                   [40.0, 0.1, 0.0, 30.0, -0.2, np.pi / 2]])
    f = process.to_features(ev)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[0, 4], 0.0, atol=1e-12)
    assert abs(f[1, 4]) > 8.0
    np.testing.assert_allclose(f[2, 4], np.arctanh(-0.5), rtol=1e-12)
    np.testing.assert_allclose(f[:, [0, 2]], np.log(ev[:, [0, 3]]), rtol=1e-12)


def test_plugin_hook():
    assert z_mumu.bayesgen_processes() == {"z_mumu": ZMuMu}
    assert ZMuMu.name == "z_mumu"
