"""Tests of the embedded H → ZZ* → 4μ generator."""
from __future__ import annotations

import numpy as np
import pytest
import vector

from bayesgen.core.kinematics import four_vectors, wrap_phi
from bayesgen.plugins.processes import h_zz_4mu as hzz
from bayesgen.plugins.processes.h_zz_4mu import HZZ4Mu

N = 100_000
M_H, M_Z, GAMMA_Z = 125.0, 91.1876, 2.4952
R_LEPTON = 2 * (-0.5 + 2 * 0.2312) * (-0.5) / ((-0.5 + 2 * 0.2312) ** 2 + 0.25)


@pytest.fixture(scope="module")
def process() -> HZZ4Mu:
    return HZZ4Mu()


@pytest.fixture(scope="module")
def events(process) -> np.ndarray:
    return process.sample(N, seed=7)


@pytest.fixture(scope="module")
def truth() -> dict:
    return hzz.generate_truth(300_000, np.random.default_rng(11))


def _expected_mass_density(m1, m2):
    """p(m₁, m₂) ∝ 4m₁m₂ BW(m₁²)BW(m₂²) λ^½(λ + 12x₁x₂) on m₂ ≤ m₁, m₁ + m₂ < M_H."""
    x1, x2 = (m1 / M_H) ** 2, (m2 / M_H) ** 2
    lam = (1 - x1 - x2) ** 2 - 4 * x1 * x2
    bw = 1 / (((m1**2 - M_Z**2) ** 2 + (M_Z * GAMMA_Z) ** 2)
              * ((m2**2 - M_Z**2) ** 2 + (M_Z * GAMMA_Z) ** 2))
    ok = (m2 <= m1) & (m1 + m2 < M_H) & (m2 >= hzz.M2_MIN)
    return np.where(ok, m1 * m2 * bw * np.sqrt(np.clip(lam, 0, None)) * (lam + 12 * x1 * x2), 0)


def _chi2_per_bin(values, edges, axis):
    """Observed vs numerically integrated counts of m₁ (axis 0) or m₂ (axis 1); χ²/ndf."""
    fine1 = np.arange(M_H / 2, M_H, 0.02) + 0.01
    fine2 = np.arange(0.0, M_H / 2, 0.05) + 0.025
    p = _expected_mass_density(fine1[:, None], fine2[None, :])
    marginal = p.sum(axis=1 - axis)
    grid = fine1 if axis == 0 else fine2
    expected = np.histogram(grid, edges, weights=marginal)[0] / marginal.sum() * len(values)
    observed = np.histogram(values, edges)[0]
    use = expected > 20
    return np.sum((observed[use] - expected[use]) ** 2 / expected[use]) / use.sum()


# --- sampling ---------------------------------------------------------------------------------

def test_shape_acceptance_and_pair_order(process, events):
    assert events.shape == (N, 12) and events.dtype == np.float64
    assert np.isfinite(events).all()
    ev = events.reshape(N, 4, 3)
    pt = ev[:, :, 0]
    assert (pt > hzz.PT_MIN).all() and (np.abs(ev[:, :, 1]) < hzz.ETA_MAX).all()
    ranked = np.sort(pt, axis=1)
    assert (ranked[:, 3] > hzz.PT_LEAD).all() and (ranked[:, 2] > hzz.PT_SUB).all()
    assert (pt[:, 0] >= pt[:, 1]).all() and (pt[:, 2] >= pt[:, 3]).all()
    assert (ev[:, :, 2] > -np.pi).all() and (ev[:, :, 2] <= np.pi).all()
    assert (ranked[:, 0] < 10).mean() > 0.2  # the 5 GeV threshold is really used


def test_four_muon_mass_peak_and_resolution(process, events):
    obs = process.observables(events)
    m4 = obs["m_4mu"]
    assert abs(np.median(m4) - M_H) < 0.05
    # σ_M/M = ½ √(Σ r_i² w_i²), w_i = Σ_{j≠i} m_ij²/M², r_i = 0.01 + 1e-4 pT_i (Γ_H negligible).
    ev = events.reshape(N, 4, 3)
    mu = [four_vectors(ev[:, i, 0], ev[:, i, 1], ev[:, i, 2], 0.1056584) for i in range(4)]
    w = np.zeros((N, 4))
    for i in range(4):
        for j in range(4):
            if i != j:
                w[:, i] += np.asarray((mu[i] + mu[j]).mass) ** 2 / m4**2
    r = 0.01 + 1e-4 * ev[:, :, 0]
    sigma = 0.5 * m4 * np.sqrt(np.sum((r * w) ** 2, axis=1))
    expected = M_H + sigma * np.random.default_rng(3).standard_normal(N)
    iqr = np.subtract(*np.percentile(m4, [75, 25]))
    iqr_exp = np.subtract(*np.percentile(expected, [75, 25]))
    assert 1.0 < iqr < 1.6  # σ ≈ 0.95 GeV
    assert abs(iqr / iqr_exp - 1) < 0.04


def test_z_masses_reco(process, events):
    obs = process.observables(events)
    z1, z2 = obs["m_z1"], obs["m_z2"]
    near = z1[np.abs(z1 - M_Z) < 5]
    assert abs(np.median(near) - M_Z) < 0.5 and len(near) > 0.6 * N
    # Z₁ is the heavier true pair; smearing (σ_M ≈ 0.6 GeV at m₁ ≈ m₂ ≈ 62 GeV, more for a
    # boosted Higgs) swaps the order only at the edge m₁ + m₂ = M_H
    assert np.mean(z2 > z1) < 1e-3 and (z2 <= z1 + 2.0).all()
    # m_4μ ≥ m_Z1 + m_Z2 for any two time-like pairs: the kinematic edge of m_Z2.
    assert (obs["m_4mu"] - z1 - z2 >= -1e-9).all()
    assert 18 < np.median(z2) < 30 and np.percentile(z2, 99) < 60


def test_truth_z_masses_follow_phase_space(truth):
    m1, m2, mh = truth["m1"], truth["m2"], truth["m_h"]
    assert (m1 + m2 < mh).all() and (m2 <= m1).all() and (m2 >= 0.99 * hzz.M2_MIN).all()
    assert (np.abs(mh - M_H) <= hzz.H_WINDOW).all()
    assert abs(np.median(m1[np.abs(m1 - M_Z) < 2]) - M_Z) < 0.2
    assert _chi2_per_bin(m2, np.arange(0.5, 63.0, 2.0), axis=1) < 2.0
    assert _chi2_per_bin(m1, np.arange(62.5, 125.0, 1.0), axis=0) < 2.0
    # The Z* is broad, low and bounded by M_H − m₁ (≈ 34 GeV for an on-shell Z₁).
    assert 22 < np.median(m2) < 27 and 0.05 < np.mean(m2 < 10) < 0.12


def test_accept_reject_bound_holds():
    u, cdf, bound = hzz.mass_tables()
    assert np.all(np.diff(cdf) >= 0) and cdf[0] == 0 and cdf[-1] == 1
    rng = np.random.default_rng(0)
    uu = rng.uniform(u[0], u[-1], 500_000)
    m1 = np.sqrt(M_Z**2 + M_Z * GAMMA_Z * np.tan(uu))
    s2 = rng.uniform(hzz.M2_MIN**2, np.minimum(m1, M_H - m1) ** 2)
    f = hzz.mass_density(m1**2, s2) * ((m1**2 - M_Z**2) ** 2 + (M_Z * GAMMA_Z) ** 2)
    assert (f <= np.interp(uu, u, bound)).all()


def test_decay_angles(truth):
    mu = truth["muons"]
    np.testing.assert_allclose(mu.sum(axis=0), truth["higgs"], rtol=1e-9, atol=1e-7)
    p4 = [vector.array({"px": m[:, 0], "py": m[:, 1], "pz": m[:, 2], "E": m[:, 3]}) for m in mu]
    np.testing.assert_allclose(p4[2].mass, 0.1056584, rtol=1e-5)
    higgs = p4[0] + p4[1] + p4[2] + p4[3]
    for k, (a, b) in enumerate(((0, 1), (2, 3))):
        z_h = (p4[a] + p4[b]).boostCM_of_p4(higgs)
        mu_z = p4[a].boostCM_of_p4(higgs).boostCM_of_p4(z_h)
        cos = mu_z.to_Vector3D().dot(z_h.to_Vector3D()) / (mu_z.p * z_h.p)
        np.testing.assert_allclose(cos, truth[f"cos_theta{k + 1}"], atol=1e-6)
    m1, m2, mh, hel = truth["m1"], truth["m2"], truth["m_h"], truth["helicity"]
    x = (mh**2 - m1**2 - m2**2) / (2 * m1 * m2)
    assert abs(np.mean(hel == 0) - np.mean(x**2 / (x**2 + 2))) < 0.005
    assert abs(np.mean(hel == 1) - np.mean(hel == -1)) < 0.006
    for c in (truth["cos_theta1"], truth["cos_theta2"]):
        assert abs(np.mean(c[hel == 0] ** 2) - 0.2) < 0.004      # ¾(1 − c²)
        assert abs(np.mean(c[hel != 0] ** 2) - 0.4) < 0.005      # 1 + c²
        for lam in (1, -1):                                      # ⟨c⟩ = λR/2
            assert abs(np.mean(c[hel == lam]) - lam * R_LEPTON / 2) < 0.01


def test_boost_matches_vector():
    rng = np.random.default_rng(4)
    p = np.column_stack([rng.normal(0, 20, (1000, 3)), np.zeros(1000)])
    p[:, 3] = np.sqrt((p[:, :3] ** 2).sum(1) + 0.5**2)
    par = np.column_stack([rng.normal(0, 50, (1000, 3)), np.zeros(1000)])
    par[:, 3] = np.sqrt((par[:, :3] ** 2).sum(1) + 90.0**2)
    out = hzz.boost(p, par)
    v = lambda a: vector.array({"px": a[:, 0], "py": a[:, 1], "pz": a[:, 2], "E": a[:, 3]})
    ref = v(p).boost_p4(v(par))
    np.testing.assert_allclose(out, np.column_stack([ref.px, ref.py, ref.pz, ref.E]),
                               rtol=1e-10, atol=1e-9)


# --- observables and preprocessing --------------------------------------------------------------

def test_observables_cover_binnings(process, events):
    obs = process.observables(events)
    assert set(obs) == set(process.binnings)
    for name, v in obs.items():
        assert v.shape == (N,) and np.isfinite(v).all(), name
    np.testing.assert_array_equal(obs["mu3_pt"], events[:, 6])


def test_features_finite_and_round_trip(process, events):
    f = process.to_features(events)
    assert f.shape == (N, process.n_features) == (N, 11)
    assert np.isfinite(f).all()
    back = process.from_features(f, np.random.default_rng(0))
    assert back.shape == events.shape
    ev, bk = events.reshape(N, 4, 3), back.reshape(N, 4, 3)
    np.testing.assert_allclose(bk[:, :, :2], ev[:, :, :2], rtol=1e-5, atol=1e-9)
    assert (bk[:, :, 2] > -np.pi).all() and (bk[:, :, 2] <= np.pi).all()
    assert abs(bk[:, 0, 2].mean()) < 0.05
    d_orig = wrap_phi(ev[:, 1:, 2] - ev[:, :1, 2])
    d_back = wrap_phi(bk[:, 1:, 2] - bk[:, :1, 2])
    assert np.abs(wrap_phi(d_back - d_orig)).max() < 1e-5 * np.pi
    np.testing.assert_allclose(f[:, [0, 2]], np.log(ev[:, [0, 2], 0]), rtol=1e-12)   # both feature maps
    np.testing.assert_allclose(HZZ4Mu(features="leptons").to_features(events)[:, :4], np.log(ev[:, :, 0]), rtol=1e-12)
    # mass observables survive the round trip (global φ rotation is a symmetry)
    o1, o2 = process.observables(events), process.observables(back)
    for k in ("m_4mu", "m_z1", "m_z2", "pt_4mu"):
        np.testing.assert_allclose(o2[k], o1[k], rtol=1e-4, atol=1e-4)


def test_plugin_hook():
    assert hzz.bayesgen_processes() == {"h_zz_4mu": HZZ4Mu}
    assert HZZ4Mu.name == "h_zz_4mu" and len(HZZ4Mu.quantities) == 12


# --- production: gluon fusion and the initial-state shower --------------------------------------

@pytest.mark.parametrize("luminosity", ["gg", "qqbar"])
def test_higgs_rapidity_is_the_gluon_luminosity(truth, luminosity):
    """Born rapidity against x₁g(x₁)x₂g(x₂) at μ_F = M_H, x₁,₂ = (M_H/√s)e^{±y}; the u ū
    luminosity has another shape and fails."""
    from bayesgen.plugins.processes import pdf
    fine = np.linspace(-4.6, 4.6, 921)
    x1, x2 = M_H / 13000 * np.exp(fine), M_H / 13000 * np.exp(-fine)
    f1, f2 = pdf.parton_densities(x1, M_H**2), pdf.parton_densities(x2, M_H**2)
    shape = f1[:, 0] * f2[:, 0] if luminosity == "gg" else f1[:, 2] * f2[:, 7] + f1[:, 7] * f2[:, 2]
    cumulative = np.concatenate([[0], np.cumsum(0.5 * (shape[1:] + shape[:-1]) * np.diff(fine))])
    edges = np.linspace(-4.5, 4.5, 37)
    expected = np.diff(np.interp(edges, fine, cumulative)) / cumulative[-1] * len(truth["y"])
    observed = np.histogram(truth["y"], edges)[0]
    chi2 = np.sum((observed - expected) ** 2 / np.maximum(expected, 1)) / len(edges)
    assert (chi2 < 2.0) == (luminosity == "gg"), chi2


def test_higgs_recoils_against_gluon_radiation(truth):
    """p_T(H) from the shower: a Sudakov peak, and harder than the Z's since gluons radiate with
    C_A = 3 against C_F = 4/3 (same shower, z_mumu's Z for comparison)."""
    from bayesgen.plugins.processes import z_mumu
    pt_h = np.hypot(truth["higgs"][:, 0], truth["higgs"][:, 1])
    counts, edges = np.histogram(pt_h, np.arange(0.0, 60.0, 2.0))
    assert 4.0 <= edges[np.argmax(counts)] <= 20.0 and counts[0] < 0.5 * counts.max()
    z = z_mumu.generate_truth(100_000, np.random.default_rng(2))["system"]
    pt_z = np.hypot(z[:, 0], z[:, 1])
    assert np.median(pt_h) > 1.8 * np.median(pt_z)
    assert 0.04 < np.mean(pt_h > 100.0) < 0.2
    np.testing.assert_allclose(truth["higgs"][:, 3] ** 2 - np.sum(truth["higgs"][:, :3] ** 2, axis=1),
                               truth["m_h"] ** 2, rtol=1e-8)
