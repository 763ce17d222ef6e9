"""The lepton processes' feature maps: ``features = "mass"`` carries the pair masses as network
coordinates, ``"leptons"`` each lepton's own; both invert exactly on the truth, and the mass
coordinate is the observable's mass."""
import numpy as np
import pytest

import bayesgen
from bayesgen.engine.config import TrainConfig
from bayesgen.core.errors import ConfigError, RunError
from bayesgen.engine.model import build_process
from bayesgen.engine.preprocessing import Preprocessor
from bayesgen.plugins.processes.electroweak import GAMMA_Z, M_Z
from bayesgen.plugins.processes.pair_mass import DEFAULT_ETA_COORDINATE, FEATURE_MAPS, opening, pair_mass, partner_pt
from bayesgen.core.kinematics import four_vectors, wrap_phi

N = 20_000
LEPTON_PROCESSES = ["z_mumu", "z_ee", "z_mumu_jets", "h_zz_4mu"]
def resonance(u):
    return M_Z + GAMMA_Z * np.sinh(u)


#: the mass coordinates of the ``mass`` map: (feature index, the pair's leptons (their pT
#: columns), the map back u → M)
MASS_COORDINATES = {
    "z_mumu": [(2, (0, 3), resonance)],
    "z_ee": [(2, (0, 3), resonance)],
    "z_mumu_jets": [(2, (0, 3), resonance)],
    "h_zz_4mu": [(1, (0, 3), resonance), (3, (6, 9), np.exp)],
}


def massless_pair_mass(events, a, b):
    """The pair's mass with both leptons taken massless, from vector."""
    pair = four_vectors(*events[:, a:a + 3].T, 0.0) + four_vectors(*events[:, b:b + 3].T, 0.0)
    return np.asarray(pair.mass)


@pytest.fixture(scope="module", params=LEPTON_PROCESSES)
def truth(request):
    process = bayesgen.get_process(request.param)
    return request.param, process.sample(N, seed=5)


def inverted(process, features, events, rng):
    """``process.from_features(features)``, given the conditions of ``events`` where the process has any."""
    return process.from_features(features, rng, *([process.conditions(events)] if process.n_conditions else []))


def phi_columns(process) -> list[int]:
    return [i for i, q in enumerate(process.quantities) if q.endswith("_phi")]


@pytest.mark.parametrize("features", FEATURE_MAPS)
def test_both_maps_round_trip_exactly(truth, features):
    name, events = truth
    process = bayesgen.get_process(name, features=features)
    conditions = process.conditions(events)
    raw = process.to_features(events)
    mask = process.feature_mask(conditions)
    assert np.isfinite(raw if mask is None else np.where(mask, raw, 0.0)).all()
    back = process.from_features(raw, np.random.default_rng(0), *([conditions] if process.n_conditions else []))
    phis = phi_columns(process)
    others = [c for c in range(events.shape[1]) if c not in phis]
    np.testing.assert_allclose(back[:, others], events[:, others], rtol=1e-5, atol=1e-9)
    rotation = wrap_phi(back[:, phis[0]] - events[:, phis[0]])   # the re-drawn global φ
    for c in phis[1:]:
        present = events[:, c - 2] > 0
        assert np.abs(wrap_phi(back[:, c] - events[:, c] - rotation)[present]).max() < 1e-5
    assert process.support(back).all()


def test_the_mass_map_holds_the_observed_pair_masses(truth):
    name, events = truth
    masses = bayesgen.get_process(name, features="mass")
    leptons = bayesgen.get_process(name, features="leptons")
    raw, plain = masses.to_features(events), leptons.to_features(events)
    replaced = [index for index, _, _ in MASS_COORDINATES[name]]
    for index, (a, b), mass in MASS_COORDINATES[name]:
        np.testing.assert_allclose(mass(raw[:, index]), massless_pair_mass(events, a, b), rtol=1e-6)
    if name != "h_zz_4mu":   # δ = φ₂ − φ₁ − π as asinh(δ/0.1), not artanh(δ/π); pT₁, η₂ in windows
        np.testing.assert_allclose(0.1 * np.sinh(raw[:, 4]), np.pi * np.tanh(plain[:, 4]), rtol=1e-6, atol=1e-12)
        replaced += [0, 3, 4]
        assert masses.feature_names[index] != leptons.feature_names[index]
    kept = [i for i in range(raw.shape[1]) if i not in replaced]
    np.testing.assert_array_equal(raw[:, kept], plain[:, kept])
    assert [n for i, n in enumerate(masses.feature_names) if i not in replaced] == \
        [n for i, n in enumerate(leptons.feature_names) if i not in replaced]


def test_partner_pt_inverts_the_pair_mass():
    rng = np.random.default_rng(1)
    pt_a, pt_b = rng.uniform(20, 200, (2, 1000))
    eta_a, eta_b, delta = rng.uniform(-2.4, 2.4, 1000), rng.uniform(-2.4, 2.4, 1000), rng.uniform(-3.1, 3.1, 1000)
    o = opening(eta_a, eta_b, delta)
    # cosh Δη − cos Δφ with Δφ = δ + π
    np.testing.assert_allclose(o, np.cosh(eta_a - eta_b) - np.cos(delta + np.pi), rtol=1e-12)
    np.testing.assert_allclose(partner_pt(pair_mass(pt_a, pt_b, o), pt_a, o), pt_b, rtol=1e-12)


def test_an_unknown_map_is_refused_and_a_run_records_its_map():
    with pytest.raises(ConfigError, match="unknown feature map features = 'pt'; known: mass, leptons"):
        bayesgen.get_process("z_mumu", features="pt")
    for name in LEPTON_PROCESSES:
        process = build_process(TrainConfig(process=name, process_options={"features": "leptons"}))
        recorded = process.portable_options({})
        assert recorded["features"] == "leptons"
        assert recorded.get("eta_coordinate", "logit") == DEFAULT_ETA_COORDINATE["leptons"] == "logit"  # h_zz_4mu: none
        default = build_process(TrainConfig(process=name)).portable_options({})
        assert default["features"] == FEATURE_MAPS[0] == "mass"
        assert default.get("eta_coordinate", "window") == DEFAULT_ETA_COORDINATE["mass"] == "window"


def test_a_run_does_not_load_under_another_feature_map():
    leptons, masses = (bayesgen.get_process("z_mumu", features=f) for f in ("leptons", "mass"))
    state = Preprocessor.fit(leptons, leptons.sample(500, seed=1)).state_dict()
    assert Preprocessor.from_state_dict(leptons, state).standardizer.mean.tolist() == state["mean"]
    with pytest.raises(RunError, match="trained on the z_mumu features log_mu1_pt, logit_mu1_eta, log_mu2_pt"):
        Preprocessor.from_state_dict(masses, state)
    del state["feature_names"]   # a run from before the maps: nothing to check
    Preprocessor.from_state_dict(masses, state)


def test_a_pair_labelled_the_other_way_round_comes_back_in_pt_order():
    process = bayesgen.get_process("z_mumu", features="leptons")
    events = process.sample(2000, seed=9)
    relabelled = events[:, [3, 4, 5, 0, 1, 2]]          # the subleading lepton first
    raw = process.to_features(relabelled)
    assert (raw[:, 2] > raw[:, 0]).all()
    back = process.from_features(raw, np.random.default_rng(0))
    np.testing.assert_allclose(back[:, [0, 1, 3, 4]], events[:, [0, 1, 3, 4]], rtol=1e-9)
    assert process.support(back).all()


@pytest.mark.parametrize("name", ["z_mumu", "z_ee"])
def test_every_mass_feature_vector_gives_a_pair_in_pt_order_above_threshold(name):
    process = bayesgen.get_process(name, features="mass", eta_coordinate="logit")
    rng = np.random.default_rng(4)
    raw = process.to_features(process.sample(5000, seed=2))
    wild = raw.mean(axis=0) + 2.0 * raw.std(axis=0) * rng.standard_normal(raw.shape)   # beyond the truth
    events = process.from_features(wild, rng)
    mass = M_Z + GAMMA_Z * np.sinh(wild[:, 2])
    eta = process.eta_map.inverse(wild[:, [1, 3]]) if process.eta_map else wild[:, [1, 3]]
    # a pair with both leptons above pt_min needs M ≥ pt_min √(2 (cosh Δη − cos Δφ))
    reachable = mass > process.pt_min * np.sqrt(2 * opening(eta[:, 0], eta[:, 1], 0.1 * np.sinh(wild[:, 4])))
    assert 0.3 < reachable.mean() < 1
    assert np.isfinite(events[reachable]).all()
    pt1, pt2 = events[reachable, 0], events[reachable, 3]
    assert (pt1 >= pt2 * (1 - 1e-9)).all() and (pt2 >= process.pt_min * (1 - 1e-9)).all()
    assert not process.support(events[~reachable]).any()


@pytest.mark.parametrize("name", ["z_mumu", "z_ee", "z_mumu_jets"])
@pytest.mark.parametrize("features", FEATURE_MAPS)
def test_the_logit_eta_coordinate_round_trips_and_keeps_every_lepton_inside_the_acceptance(name, features):
    """``eta_coordinate = "logit"`` (the default of the ``leptons`` features): the features hold
    2 artanh(η/η_max), invert exactly on the truth, and any value at all (here ±30, far in the
    tails) comes back with |η| < η_max."""
    process = bayesgen.get_process(name, features=features, eta_coordinate="logit")
    plain = bayesgen.get_process(name, features=features, eta_coordinate="eta")
    events = plain.sample(2000, seed=3)
    raw = process.to_features(events)
    np.testing.assert_allclose(raw[:, [1, 3]], 2 * np.arctanh(events[:, [1, 4]] / process.eta_max), rtol=1e-12)
    np.testing.assert_allclose(np.delete(raw, [1, 3], axis=1), np.delete(plain.to_features(events), [1, 3], axis=1))
    back = inverted(process, raw, events, np.random.default_rng(0))
    np.testing.assert_allclose(back[:, [0, 1, 3, 4]], events[:, [0, 1, 3, 4]], rtol=1e-5, atol=1e-9)
    far = raw.copy()
    far[:, 1], far[:, 3] = 30.0, -30.0
    eta = inverted(process, far, events, np.random.default_rng(0))[:, [1, 4]]
    assert (np.abs(eta) < process.eta_max).all() and process.feature_names[1].startswith("logit_")
    with pytest.raises(ConfigError, match="unknown feature map eta_coordinate = 'x'; known: window, logit, eta"):
        bayesgen.get_process(name, eta_coordinate="x")


@pytest.mark.parametrize("name", ["z_mumu", "z_ee", "z_mumu_jets"])
def test_the_window_eta_coordinate_round_trips_and_its_walls_are_the_acceptance_and_the_threshold(name):
    """``eta_coordinate = "window"`` (the default of the ``mass`` features): η₂ as the logit
    within [max(−η_max, η₁ − Δη_max), min(η_max, η₁ + Δη_max)], cosh Δη_max = M²/(2 pt_min²)
    − cos δ. It inverts exactly on the truth; any feature vector whose mass leaves a window comes
    back with both leptons in the acceptance, in pT order and above the threshold; a wall reached
    through Δη_max is the threshold itself (both leptons at pt_min)."""
    process = bayesgen.get_process(name, eta_coordinate="window")
    logit = bayesgen.get_process(name, eta_coordinate="logit")
    events = process.sample(2000, seed=3)
    raw = process.to_features(events)
    assert process.feature_names[3].startswith("window_") and np.isfinite(raw).all()
    np.testing.assert_allclose(np.delete(raw, 3, axis=1), np.delete(logit.to_features(events), 3, axis=1))
    back = inverted(process, raw, events, np.random.default_rng(0))
    np.testing.assert_allclose(back[:, [0, 1, 3, 4]], events[:, [0, 1, 3, 4]], rtol=1e-5, atol=1e-9)

    rng = np.random.default_rng(4)
    wild = raw.mean(axis=0) + 3.0 * raw.std(axis=0) * rng.standard_normal(raw.shape)
    pair = inverted(process, wild, events, rng)[:, :6]
    mass, delta = M_Z + GAMMA_Z * np.sinh(wild[:, 2]), 0.1 * np.sinh(wild[:, 4])
    reachable = mass >= process.pt_min * np.sqrt(2 * (1 + np.cos(delta)))   # some opening passes the threshold
    assert 0.5 < reachable.mean() < 1
    pt1, eta1, pt2, eta2 = (pair[reachable, i] for i in (0, 1, 3, 4))
    assert (np.abs(np.stack([eta1, eta2])) < process.eta_max).all()
    assert (pt1 >= pt2 * (1 - 1e-9)).all() and (pt2 >= process.pt_min * (1 - 1e-9)).all()
    assert not (pair[~reachable, 3] >= process.pt_min).any()   # the smaller pT below it, or NaN

    # a forward leader near the Z: the reach (≈ 2.9), not |η| < η_max, bounds η₂ on the far side
    forward = events[(np.abs(events[:, 1]) > 1.5) & (massless_pair_mass(events, 0, 3) < 120)][:20]
    edge = process.to_features(forward)
    edge[:, 3] = -30.0 * np.sign(forward[:, 1])
    walls = inverted(process, edge, forward, rng)
    assert len(forward) == 20
    np.testing.assert_allclose(walls[:, [0, 3]], process.pt_min, rtol=1e-6)


def test_the_window_eta_coordinate_needs_the_mass_features():
    with pytest.raises(ConfigError, match="eta_coordinate = 'window' .* needs features = 'mass', got 'leptons'"):
        bayesgen.get_process("z_mumu", features="leptons", eta_coordinate="window")


@pytest.mark.parametrize("name", ["z_mumu", "z_ee", "z_mumu_jets"])
def test_the_half_angle_delta_coordinate_round_trips_and_puts_dphi_zero_at_infinity(name):
    """``delta_coordinate = "half_angle"``: δ as asinh(tan(δ/2)/(w/2)) inverts exactly on the
    truth and is asinh(δ/w), the default, about the peak; δ = ±π (Δφ = 0), where the truth's
    density is not zero, lies at ±∞, so that any value is an angle and ever larger ones close
    the pair in φ, whereas the default ends at ±asinh(π/w) and turns values past it into larger
    Δφ."""
    process = bayesgen.get_process(name, delta_coordinate="half_angle")
    default = bayesgen.get_process(name)
    events = process.sample(2000, seed=3)
    raw, plain = process.to_features(events), default.to_features(events)
    assert (process.feature_names[4], default.feature_names[4]) == ("asinh_tan_half_dphi", "asinh_dphi")
    np.testing.assert_allclose(raw[:, :4], plain[:, :4])
    peak = np.abs(plain[:, 4]) < 1.0   # |δ| < 0.12 rad
    assert peak.mean() > 0.05   # z_mumu_jets: δ wider, the pair recoiling against jets
    np.testing.assert_allclose(raw[peak, 4], plain[peak, 4], atol=2e-3)
    rng = np.random.default_rng(0)
    back = inverted(process, raw, events, rng)
    np.testing.assert_allclose(back[:, [0, 1, 3, 4]], events[:, [0, 1, 3, 4]], rtol=1e-5, atol=1e-9)
    dphi = f"dphi_{process.lepton * 2}"
    np.testing.assert_allclose(process.observables(back)[dphi], process.observables(events)[dphi], atol=1e-9)

    wall = np.arcsinh(np.pi / 0.1)
    assert np.abs(plain[:, 4]).max() <= wall < np.abs(raw[:, 4]).max()
    u = np.array([wall + 0.5, 10.0, 40.0, 800.0])
    dphi_at = np.pi - np.abs(process.delta_map.inverse(np.concatenate([u, -u])))   # Δφ = π − |δ|
    assert (np.diff(dphi_at[:4]) <= 0).all() and (dphi_at[:4] == dphi_at[4:]).all()
    assert 0.5 < dphi_at[0] < 1.0 and dphi_at[1] < 1e-2 and dphi_at[3] == pytest.approx(0.0, abs=1e-12)
    assert np.pi - abs(default.delta_map.inverse(wall + 0.5)) < -1.0   # past π: wraps to Δφ > 1 rad


def test_the_delta_coordinate_is_one_of_the_known_and_needs_the_mass_features():
    with pytest.raises(ConfigError, match="unknown feature map delta_coordinate = 'x'; known: asinh, half_angle"):
        bayesgen.get_process("z_mumu", delta_coordinate="x")
    with pytest.raises(ConfigError, match="delta_coordinate sets δ's coordinate in the 'mass' features"):
        bayesgen.get_process("z_mumu", features="leptons", delta_coordinate="half_angle")
    recorded = bayesgen.get_process("z_mumu", delta_coordinate="half_angle").portable_options({})
    assert recorded["delta_coordinate"] == "half_angle"
    assert bayesgen.get_process("z_mumu").portable_options({})["delta_coordinate"] == "asinh"
