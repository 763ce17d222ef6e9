"""The toy shower and detector of ecal_cloud and jet_images: physics, layout and feature maps."""
import numpy as np
import pytest

import bayesgen
from bayesgen.core.errors import ConfigError, DataError
from bayesgen.engine.preprocessing import Preprocessor
from bayesgen.plugins.processes import jet_images as ji
from bayesgen.plugins.processes import showers as sh
from bayesgen.plugins.processes.ecal_cloud import clouds_from_hits
from bayesgen.plugins.processes.jet_images import SCALES
from bayesgen.validation.detector import plot_view_examples, view_metrics

N = 1000


def jet_sums(objects, n):
    """Per-event (E, px, py, pz) of massless objects with energies ``objects.e``."""
    pt = objects.e / np.cosh(objects.eta)
    return [np.bincount(objects.event, w, n) for w in
            (objects.e, pt * np.cos(objects.phi), pt * np.sin(objects.phi), pt * np.sinh(objects.eta))]


def mass(objects, n):
    e, px, py, pz = jet_sums(objects, n)
    return np.sqrt(np.maximum(e ** 2 - px ** 2 - py ** 2 - pz ** 2, 0.0))


def n_prongs(clouds, radius=0.1, min_fraction=0.05, k=4):
    """Greedy cone clusters around the hottest free hit holding ≥ min_fraction of the energy."""
    eta, phi, e = np.moveaxis(clouds, -1, 0)
    free, count = e > 0, np.zeros(len(clouds), int)
    for _ in range(k):
        seed = np.argmax(np.where(free, e, -1.0), axis=1)[:, None]
        claimed = free & (np.hypot(eta - np.take_along_axis(eta, seed, 1), phi - np.take_along_axis(phi, seed, 1)) < radius)
        count += (e * claimed).sum(axis=1) > min_fraction * e.sum(axis=1)
        free &= ~claimed
    return count


@pytest.fixture(scope="module")
def showered():
    """Particles, ECAL hits and the cloud events of N top, quark and gluon jets each."""
    rng, cloud = np.random.default_rng(5), bayesgen.get_process("ecal_cloud")
    out = {}
    for flavour in (sh.TOP, sh.QUARK, sh.GLUON):
        particles = sh.jets(np.full(N, flavour), rng)
        fraction = sh.ecal_fractions(particles, rng)
        hits = sh.ecal(particles, fraction, rng)
        clouds, n_hits = clouds_from_hits(hits, N, cloud.n_points)
        events = np.concatenate([np.full((N, 1), float(flavour == sh.TOP)), n_hits[:, None], clouds.reshape(N, -1)], axis=1)
        out[flavour] = dict(particles=particles, fraction=fraction, ecal=hits, hcal=sh.hcal(particles, fraction, rng),
                            tracks=sh.tracks(particles, rng), events=events)
    return out


@pytest.fixture(scope="module")
def cloud():
    return bayesgen.get_process("ecal_cloud")


@pytest.fixture(scope="module")
def cloud_events(cloud):
    return cloud.sample(N, seed=7)


@pytest.fixture(scope="module")
def images():
    return bayesgen.get_process("jet_images", size=32)


@pytest.fixture(scope="module")
def image_events(images):
    return images.sample(1000, seed=7)


# --- shower physics ------------------------------------------------------------------------
def test_top_mass_is_m_top_at_parton_and_particle_level_and_qcd_is_lighter(showered):
    rng = np.random.default_rng(0)
    assert np.allclose(mass(sh.partons(np.full(500, sh.TOP), rng), 500), sh.M_TOP, rtol=1e-9)
    top, quark, gluon = (np.median(mass(showered[f]["particles"], N)) for f in (sh.TOP, sh.QUARK, sh.GLUON))
    assert top == pytest.approx(sh.M_TOP, abs=5.0)
    assert quark < gluon < 0.5 * sh.M_TOP


def test_ecal_jet_mass_tracks_m_top_scaled_by_the_ecal_energy_fraction(showered, cloud):
    ecal_mass = {f: cloud.observables(showered[f]["events"])["jet_mass"] for f in showered}
    e_jet = jet_sums(showered[sh.TOP]["particles"], N)[0]
    e_ecal = np.bincount(showered[sh.TOP]["ecal"].event, showered[sh.TOP]["ecal"].e, N)
    assert 150.0 < np.median(ecal_mass[sh.TOP] * e_jet / e_ecal) < 190.0
    assert np.median(ecal_mass[sh.TOP]) > 3 * np.median(ecal_mass[sh.QUARK])


def test_top_prongs_sit_about_2m_over_pt_apart_and_show_as_three_clusters(showered):
    rng = np.random.default_rng(1)
    for pt in (500.0, 1000.0):
        e, eta, phi = sh.top_partons(np.full(1000, pt), rng)
        delta_r2 = (eta[:, :, None] - eta[:, None, :]) ** 2 + (phi[:, :, None] - phi[:, None, :]) ** 2
        small_angle_mass = np.sqrt(0.5 * (e[:, :, None] * e[:, None, :] * delta_r2).sum(axis=(1, 2)))
        assert np.median(small_angle_mass) == pytest.approx(sh.M_TOP, rel=0.06)  # m² ≈ Σ E_i E_j ΔR_ij²
        assert 1.3 < np.median(np.sqrt(delta_r2).max(axis=(1, 2))) * pt / (2 * sh.M_TOP) < 1.7
    top, qcd = (n_prongs(showered[f]["events"][:, 2:].reshape(N, -1, 3)) >= 3 for f in (sh.TOP, sh.QUARK))
    assert top.mean() > 0.5 and top.mean() > 4 * qcd.mean()


def test_gluon_jets_have_about_ca_over_cf_more_particles(showered, image_events, images):
    counts = {f: np.bincount(showered[f]["particles"].event, minlength=N).mean() for f in (sh.QUARK, sh.GLUON)}
    assert counts[sh.GLUON] / counts[sh.QUARK] == pytest.approx(sh.C_A / sh.C_F, rel=0.15)
    pixels = images.observables(image_events)["n_nonempty"]
    gluon = image_events[:, 0] == 1
    assert 1.3 < pixels[gluon].mean() / pixels[~gluon].mean() < sh.C_A / sh.C_F


def test_energy_is_conserved_up_to_resolution(showered):
    for f in showered:
        s = showered[f]
        e_jet = jet_sums(s["particles"], N)[0]
        calo = np.bincount(s["ecal"].event, s["ecal"].e, N) + np.bincount(s["hcal"].event, s["hcal"].e, N)
        assert np.mean(calo / e_jet) == pytest.approx(1.0, abs=0.02) and np.std(calo / e_jet) < 0.08
        p = s["particles"]
        charged_pt = np.bincount(p.event, np.where(p.tag == sh.CHARGED, p.e / np.cosh(p.eta), 0.0), N)
        assert np.mean(np.bincount(s["tracks"].event, s["tracks"].e, N) / charged_pt) == pytest.approx(1.0, abs=0.02)
        in_ecal = np.bincount(p.event, p.e * s["fraction"], N) / e_jet
        expected = sh.TYPE_FRACTIONS[sh.PHOTON] + sh.TYPE_FRACTIONS[sh.CHARGED] * sh.CHARGED_ECAL_FRACTION
        assert np.mean(in_ecal) == pytest.approx(expected, abs=0.03)


# --- ecal_cloud -----------------------------------------------------------------------------
def test_ecal_hits_lie_on_crystal_centres_inside_the_grid(cloud, cloud_events):
    clouds = cloud.clouds(cloud_events)
    hits = clouds[clouds[..., 2] > 0]
    index = hits[:, :2] / sh.CRYSTAL + (sh.N_CRYSTALS - 1) / 2
    np.testing.assert_allclose(index, np.round(index), atol=1e-9)
    assert index.min() >= 0 and index.max() <= sh.N_CRYSTALS - 1
    assert hits[:, 2].min() > sh.ECAL_THRESHOLD


def test_clouds_are_sorted_padded_and_counted(cloud, cloud_events):
    clouds, n_hits = cloud.clouds(cloud_events), cloud_events[:, 1]
    present = clouds[..., 2] > 0
    np.testing.assert_array_equal(present, np.arange(cloud.n_points) < n_hits[:, None])
    assert np.all(clouds[~present] == 0.0)
    assert np.all(np.diff(clouds[..., 2], axis=1) <= 0)
    assert set(np.unique(cloud_events[:, 0])) == {0.0, 1.0}
    assert np.mean(cloud_events[:, 0]) == pytest.approx(0.5, abs=0.05)
    full = cloud.sample(300, seed=3)
    few = bayesgen.get_process("ecal_cloud", n_points=40).sample(300, seed=3)  # the same jets, truncated
    np.testing.assert_array_equal(few[:, 1], np.minimum(full[:, 1], 40))
    np.testing.assert_array_equal(few[:, 2:], full[:, 2:2 + 120])


def test_cloud_conditions_and_mask(cloud, cloud_events):
    conditions = cloud.conditions(cloud_events)
    assert conditions.shape == (N, cloud.n_points + 2) and len(cloud.condition_names) == cloud.n_points + 2
    np.testing.assert_array_equal(conditions[:, :-2].sum(axis=1), cloud_events[:, 1])
    np.testing.assert_array_equal(conditions[:, -2], cloud_events[:, 0])
    np.testing.assert_array_equal(conditions[:, -2:].sum(axis=1), 1.0)
    mask = cloud.feature_mask(conditions)
    np.testing.assert_array_equal(mask.reshape(N, -1, 3), (cloud.clouds(cloud_events)[..., 2] > 0)[..., None].repeat(3, -1))


def test_cloud_features_round_trip(cloud, cloud_events):
    features = cloud.to_features(cloud_events)
    assert features.shape == (N, int(np.prod(cloud.feature_shape))) == (N, len(cloud.feature_names))
    assert np.isfinite(features).all()
    back = cloud.from_features(features, np.random.default_rng(0), cloud.conditions(cloud_events))
    np.testing.assert_allclose(back, cloud_events, rtol=1e-6, atol=1e-9)


def test_cloud_from_features_accepts_extreme_inputs(cloud, cloud_events):
    conditions = cloud.conditions(cloud_events[:50])
    for value in (-50.0, 50.0):
        events = cloud.from_features(np.full((50, cloud.n_features), value), np.random.default_rng(0), conditions)
        clouds = cloud.clouds(events)
        assert np.isfinite(events).all() and np.all(np.abs(clouds[..., :2]) <= 1.0875 + 1e-12)
        np.testing.assert_array_equal(clouds[..., 2] > 0, conditions[:, :-2] == 1)
        assert all(np.isfinite(v).all() for v in cloud.observables(events).values())


def test_core_preprocessing_round_trips_clouds(cloud, cloud_events):
    preprocessor = Preprocessor.fit(cloud, cloud_events)
    assert len(np.unique(preprocessor.standardizer.mean)) == 3  # one scale per channel (η, φ, E)
    rng = np.random.default_rng(0)
    back = preprocessor.inverse(preprocessor.forward(cloud_events, rng), rng, cloud.conditions(cloud_events))
    np.testing.assert_allclose(back, cloud_events, rtol=1e-4, atol=1e-5)  # float32 network features


# --- jet_images -----------------------------------------------------------------------------
def test_hcal_is_constant_over_each_towers_pixels(images, image_events):
    hcal = images.images(image_events)[:, 2]
    tower = sh.cell_index(sh.cell_centre(np.arange(images.size), images.pixel, images.size), sh.TOWER, sh.N_TOWERS)
    for t in np.unique(tower):
        block = hcal[:, tower == t][:, :, tower == t]
        np.testing.assert_array_equal(block.max(axis=(1, 2)), block.min(axis=(1, 2)))
    assert np.any(np.diff(hcal, axis=1) != 0)  # but differs between towers


def test_ecal_crystals_are_shared_among_pixels_by_area():
    pixel = 2 * ji.WINDOW / 32
    inside = sh.cell_centre(10, pixel, 32)
    index, fraction = ji._overlaps(np.array([inside, inside + pixel / 2]), sh.CRYSTAL, pixel, 32)
    np.testing.assert_array_equal(index, [[10, 11], [10, 11]])
    np.testing.assert_allclose(fraction, [[1.0, 0.0], [0.5, 0.5]])


def test_image_channels_hold_the_jet(images, image_events):
    obs = images.observables(image_events)
    total = obs["ecal_sum"] + obs["hcal_sum"]
    assert 0.9 * sh.PT_MIN < np.median(total) < sh.PT_MAX  # most of the jet lies in the window
    assert np.median(obs["track_sum"] / total) == pytest.approx(sh.TYPE_FRACTIONS[sh.CHARGED], abs=0.1)
    assert np.all(images.images(image_events) >= 0)


def test_image_features_round_trip_and_accept_extreme_inputs(images, image_events):
    features = images.to_features(image_events)
    assert features.shape == (len(image_events), len(images.feature_names))
    conditions = images.conditions(image_events)
    assert images.feature_mask(conditions) is None
    back = images.from_features(features, np.random.default_rng(0), conditions)
    np.testing.assert_allclose(back, image_events, rtol=1e-6, atol=0)
    for value in (-50.0, 50.0):
        events = images.from_features(np.full((5, images.n_features), value), np.random.default_rng(0), conditions[:5])
        assert np.isfinite(events).all() and np.all(events >= 0)
        np.testing.assert_array_equal(events[:, 0], image_events[:5, 0])


def test_images_are_zero_suppressed_alike_in_truth_and_generation(images, image_events):
    from bayesgen.plugins.processes.jet_images import READOUT_THRESHOLDS

    pixels = images.images(image_events)
    thresholds = np.reshape(READOUT_THRESHOLDS, (1, 3, 1, 1))
    assert not np.any((pixels > 0) & (pixels < thresholds))
    faint = np.log1p(0.5 * np.broadcast_to(thresholds, pixels[:2].shape) / np.reshape(SCALES, (1, 3, 1, 1)))
    back = images.from_features(faint.reshape(2, -1), np.random.default_rng(0), np.array([[1.0, 0.0]] * 2))
    assert np.all(back[:, 1:] == 0.0)  # half a threshold reads out as empty


def test_bigger_images_and_bad_options():
    big = bayesgen.get_process("jet_images", size=64)
    events = big.sample(20, seed=1)
    assert big.feature_shape == (3, 64, 64) and events.shape == (20, 1 + 3 * 64 * 64)
    for bad in (dict(size=48), dict(gluon_fraction=1.5)):
        with pytest.raises(ConfigError):
            bayesgen.get_process("jet_images", **bad)
    for bad in (dict(top_fraction=-0.1), dict(n_points=0)):
        with pytest.raises(ConfigError):
            bayesgen.get_process("ecal_cloud", **bad)


# --- detector-level validation: the processes' views, measured by validation -------------------
def test_detector_views_are_measured_and_drawn(cloud, cloud_events, images, image_events, tmp_path):
    small = bayesgen.get_process("ecal_cloud", n_points=30)  # small clouds keep the EMDs fast
    events = small.sample(400, seed=4)
    view = small.detector_view(events)
    assert view.kind == "cloud" and view.arrays.shape == (400, 30, 3)
    metrics = view_metrics(small.detector_view(events[:200]), small.detector_view(events[200:]), seed=0)
    assert set(metrics) == {"emd_mean", "emd_stderr", "emd_truth_vs_truth", "emd_truth_vs_truth_stderr"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["emd_mean"] == pytest.approx(metrics["emd_truth_vs_truth"], rel=0.5)
    image_view = images.detector_view(image_events)
    assert image_view.kind == "image" and image_view.channels == ji.CHANNELS
    image = view_metrics(images.detector_view(image_events[:100]), images.detector_view(image_events[100:200]))
    assert set(image) == set(ji.CHANNELS)
    with pytest.raises(DataError, match="cannot compare cloud views with image views"):
        view_metrics(view, image_view)
    plot_view_examples(cloud.detector_view(cloud_events[:10]), cloud.detector_view(cloud_events[10:20]),
                       tmp_path / "cloud.png")
    plot_view_examples(images.detector_view(image_events[:10]), images.detector_view(image_events[10:20]),
                       tmp_path / "images.png")
    assert (tmp_path / "cloud.png").stat().st_size > 0
    assert (tmp_path / "images.png").stat().st_size > 0