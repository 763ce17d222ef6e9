"""Tests of the detector-level metrics and example plots (ECAL clouds, calorimeter images)."""

import json

import numpy as np
import pytest

from bayesgen.validation.detector import (
    cloud_emd,
    cloud_summaries,
    image_metrics,
    mean_emd,
    plot_cloud_examples,
    plot_image_examples,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLOUD = np.array([[0.0, 0.0, 10.0], [0.1, -0.05, 5.0], [-0.2, 0.1, 2.0]])


def _toy_clouds(n: int, seed: int, scale: float = 1.0, n_max: int = 12) -> np.ndarray:
    """``n`` clouds of 4..n_max Gaussian hits around the axis with exponential energies, zero-padded."""
    rng = np.random.default_rng(seed)
    clouds = np.zeros((n, n_max, 3))
    for c, m in zip(clouds, rng.integers(4, n_max + 1, size=n)):
        c[:m, :2] = rng.normal(0.0, 0.1, size=(m, 2))
        c[:m, 2] = scale * rng.exponential(5.0, size=m)
    return clouds


# --- clouds ----------------------------------------------------------------------------------


def test_cloud_emd_of_a_cloud_with_itself_is_zero():
    assert cloud_emd(CLOUD, CLOUD) == pytest.approx(0.0, abs=1e-12)


def test_moving_one_hit_costs_energy_times_distance_over_radius():
    moved = CLOUD.copy()
    moved[2, 0] += 0.05  # the 2 GeV hit moves by Δη = 0.05 (nearest hit of any other stays farther)
    assert cloud_emd(CLOUD, moved, radius=0.4) == pytest.approx(2.0 * 0.05 / 0.4)
    assert cloud_emd(CLOUD, moved, radius=0.2) == pytest.approx(2.0 * 0.05 / 0.2)


def test_phi_difference_is_wrapped():
    a = np.array([[0.0, np.pi - 0.01, 4.0]])
    b = np.array([[0.0, -np.pi + 0.01, 4.0]])  # 0.02 apart across the ±π seam
    assert cloud_emd(a, b) == pytest.approx(4.0 * 0.02 / 0.4)


def test_extra_far_hit_costs_its_energy():
    extra = np.vstack([CLOUD, [3.0, 2.5, 7.5]])  # far away from every hit: ΔR ≫ radius
    assert cloud_emd(CLOUD, extra) == pytest.approx(7.5)
    assert cloud_emd(extra, CLOUD) == pytest.approx(7.5)


def test_cloud_emd_is_symmetric():
    a, b = _toy_clouds(2, seed=3)
    assert cloud_emd(a, b) > 0
    assert cloud_emd(a, b) == pytest.approx(cloud_emd(b, a))


def test_padding_hits_are_ignored():
    a, b = _toy_clouds(2, seed=4)
    padded = np.vstack([a, [[1.0, -2.0, 0.0]] * 5])  # zero-energy hits at odd places
    assert cloud_emd(padded, b) == pytest.approx(cloud_emd(a, b))


def test_empty_cloud_is_at_the_total_energy_of_the_other():
    empty = np.zeros((4, 3))
    assert cloud_emd(empty, CLOUD) == pytest.approx(17.0)
    assert cloud_emd(CLOUD, empty) == pytest.approx(17.0)
    assert cloud_emd(empty, empty) == 0.0


def test_mean_emd_detects_an_energy_scale_shift():
    truth_a, truth_b = _toy_clouds(60, seed=1), _toy_clouds(60, seed=2)
    baseline, baseline_err = mean_emd(truth_a, truth_b, n_pairs=100)
    shifted, shifted_err = mean_emd(truth_a, _toy_clouds(60, seed=2, scale=1.5), n_pairs=100)
    assert np.isfinite(baseline_err) and np.isfinite(shifted_err) and baseline_err > 0
    assert shifted > baseline + 3 * np.hypot(baseline_err, shifted_err)
    assert mean_emd(truth_a, truth_b, n_pairs=100) == (baseline, baseline_err)  # seeded


def test_cloud_summaries_on_a_hand_made_batch():
    clouds = np.array([
        [[0.0, 0.0, 10.0], [1.0, 0.2, 3.0], [2.0, 0.0, 0.0]],
        [[0.5, 0.1, 4.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    ])
    summaries = cloud_summaries(clouds)
    np.testing.assert_allclose(summaries["et_sum"], [10.0 + 3.0 / np.cosh(1.0), 4.0 / np.cosh(0.5)])
    np.testing.assert_array_equal(summaries["n_hits"], [2, 1])


# --- images ----------------------------------------------------------------------------------

CHANNELS = ("track", "ecal", "hcal")


def _toy_images(n: int, seed: int) -> np.ndarray:
    """(n, 3, 4, 4) images: exponential energies with a quarter of the pixels exactly zero."""
    rng = np.random.default_rng(seed)
    images = rng.exponential(2.0, size=(n, 3, 4, 4)) + 0.01
    images[:, :, :2, :2] = 0.0
    return images


def test_identical_image_samples_agree():
    images = _toy_images(20, seed=0)
    metrics = image_metrics(images, images.copy(), CHANNELS)
    json.dumps(metrics)
    for name in CHANNELS:
        m = metrics[name]
        assert m["mean_image_rel_l1"] == 0.0
        assert m["pixel_spectrum_w1"] == pytest.approx(0.0, abs=1e-12)
        assert m["total_energy_w1"] == pytest.approx(0.0, abs=1e-12)
        assert m["empty_fraction"] == {"truth": 0.25, "generated": 0.25}


def test_scaling_one_channel_shows_only_in_that_channel():
    truth = _toy_images(20, seed=1)
    truth[0, :, 0, 0] = 0.0006  # empty (< empty_below = 1e-3), but not once doubled
    generated = truth.copy()
    generated[:, 1] *= 2.0
    metrics = image_metrics(truth, generated, CHANNELS)
    ecal = metrics["ecal"]
    assert ecal["total_energy_w1"] > 1.0
    assert ecal["mean_image_rel_l1"] == pytest.approx(1.0)  # mean image doubled
    assert ecal["pixel_spectrum_w1"] == pytest.approx(np.log10(2.0), abs=0.01)  # one more pixel
    assert ecal["empty_fraction"] == {"truth": 0.25, "generated": 0.25 - 1 / (20 * 16)}
    for name in ("track", "hcal"):
        m = metrics[name]
        assert m["total_energy_w1"] == 0.0 and m["mean_image_rel_l1"] == 0.0
        assert m["empty_fraction"] == {"truth": 0.25, "generated": 0.25}


# --- plots -----------------------------------------------------------------------------------


def _assert_png_alone(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_plot_cloud_examples_writes_a_png(tmp_path):
    path = tmp_path / "clouds.png"
    plot_cloud_examples(_toy_clouds(3, seed=5), _toy_clouds(2, seed=6), path, k=4)  # k > n
    _assert_png_alone(path)


def test_plot_image_examples_writes_a_png(tmp_path):
    path = tmp_path / "images.png"
    plot_image_examples(_toy_images(2, seed=7), _toy_images(5, seed=8), path, CHANNELS, k=3)
    _assert_png_alone(path)
