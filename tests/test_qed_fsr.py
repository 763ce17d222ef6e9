"""The QED final-state shower against its first-order emission rate with the lepton-mass
logarithm, and its kinematics."""
import numpy as np
import pytest
from scipy import integrate

from bayesgen.plugins.processes import qed_fsr
from bayesgen.plugins.processes.lorentz import dot

M = 91.1876
N = 200_000
MUON, ELECTRON = 0.1056584, 0.51099895e-3
ALPHA = 1 / 137.035999


def pairs(n, mass, rng):
    """ℓ⁻ℓ⁺ back to back in their rest frame (M), isotropic."""
    c = rng.uniform(-1, 1, n)
    s, phi = np.sqrt(1 - c * c), rng.uniform(0, 2 * np.pi, n)
    p = np.sqrt(M * M / 4 - mass * mass) * np.stack([s * np.cos(phi), s * np.sin(phi), c], axis=1)
    e = np.full((n, 1), M / 2)
    return np.concatenate([p, e], axis=1), np.concatenate([-p, e], axis=1)


def hard_photon_probability(mass, x0, coupling=ALPHA / (2 * np.pi)):
    """P(at least one photon with 1 − z > x₀) = 1 − exp(−2∫ dz p(z)), two leptons, with
    p(z) = (α/2π)[(1 + z²)/(1 − z) ln(t_max/t_min) − 2z/(1 − z)(1 − t_min/t_max)],
    t_min = (1 − z)²m², t_max = min(z, 1 − z)² M²: the t integral of the splitting
    probability, whose ln(M²/m²) is the lepton-mass logarithm."""
    def p(one_minus_z):
        z = 1 - one_minus_z
        t_min, t_max = one_minus_z**2 * mass**2, min(z, one_minus_z) ** 2 * M * M
        return coupling * ((1 + z * z) / one_minus_z * np.log(t_max / t_min)
                           - 2 * z / one_minus_z * (1 - t_min / t_max))
    return 1 - np.exp(-2 * integrate.quad(p, x0, 1, limit=200)[0])


@pytest.fixture(scope="module", params=[MUON, ELECTRON], ids=["muon", "electron"])
def radiated(request):
    rng = np.random.default_rng(2)
    minus, plus = pairs(N, request.param, rng)
    return request.param, minus, plus, qed_fsr.radiate(minus, plus, request.param, rng)


@pytest.mark.parametrize("reference", ["alpha_over_2pi", "alpha_over_pi", "other_lepton_mass"])
@pytest.mark.parametrize("x0", [0.02, 0.1, 0.3])
def test_hard_photon_rate_is_the_collinear_log(radiated, reference, x0):
    mass, *_, result = radiated
    observed = np.mean((((1 - result.z) > x0) & (result.emitter >= 0)).any(axis=1))
    sigma = np.sqrt(observed * (1 - observed) / N)
    if reference == "alpha_over_2pi":
        expected = hard_photon_probability(mass, x0)
        # O(α²) differences (a harder photon's recoil on later ones) stay below 2 % of the rate
        assert abs(observed - expected) < 3 * sigma + 0.02 * expected
    else:
        wrong = (hard_photon_probability(mass, x0, ALPHA / np.pi) if reference == "alpha_over_pi"
                 else hard_photon_probability(ELECTRON if mass == MUON else MUON, x0))
        assert abs(observed - wrong) > 5 * sigma + 0.02 * wrong


def test_electrons_radiate_more_than_muons_by_the_log_ratio():
    rng = np.random.default_rng(7)
    rates = {}
    for mass in (MUON, ELECTRON):
        minus, plus = pairs(N, mass, rng)
        result = qed_fsr.radiate(minus, plus, mass, rng)
        rates[mass] = np.mean((((1 - result.z) > 0.05) & (result.emitter >= 0)).any(axis=1))
    # first order: ∝ ln(M²/m²) − 1 up to the same z-dependent terms
    ratio = rates[ELECTRON] / rates[MUON]
    assert ratio == pytest.approx((np.log(M**2 / ELECTRON**2) - 1) / (np.log(M**2 / MUON**2) - 1), rel=0.1)


def test_momentum_is_conserved_and_masses_kept(radiated):
    mass, minus, plus, result = radiated
    total = result.minus + result.plus + result.photons.sum(axis=1)
    np.testing.assert_allclose(total, minus + plus, atol=1e-9)
    np.testing.assert_allclose(np.sqrt(dot(result.minus, result.minus)), mass, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(dot(result.plus, result.plus)), mass, rtol=1e-5)
    photons = result.photons[result.photons[..., 3] > 0]
    np.testing.assert_allclose(dot(photons, photons), 0.0, atol=1e-9)
    counts = (result.photons[..., 3] > 0).sum(axis=1)
    np.testing.assert_array_equal(counts, result.n_photons)
    m_ll = np.sqrt(dot(result.minus + result.plus, result.minus + result.plus))
    assert (m_ll <= M + 1e-9).all() and (m_ll[result.n_photons > 0] < M).all()
    # collinear: the hardest photons sit close to their emitter
    slot = result.n_photons > 0
    lepton = np.where((result.emitter[slot, 0] == 0)[:, None], result.minus[slot], result.plus[slot])
    photon = result.photons[slot, 0]
    cos = np.sum(lepton[:, :3] * photon[:, :3], axis=1) / (np.linalg.norm(lepton[:, :3], axis=1) * photon[:, 3])
    assert np.median(cos) > 0.99
