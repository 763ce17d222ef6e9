"""The example third-party plugin ``examples/w_munu``: pip-installed into an isolated directory,
found and driven by the command line, and its physics (m_T Jacobian edge, V−A, acceptance)."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesgen.core.kinematics import wrap_phi

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "w_munu"


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    """``examples/w_munu`` installed offline with pip into its own ``--target`` directory (from a
    copy, so the build leaves nothing in the checkout)."""
    work = tmp_path_factory.mktemp("w_munu")
    source, site = work / "source", work / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                             "--no-index", "--target", str(site), str(source)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "bayesgen_w_munu" / "process.py").is_file()
    return site


def bayesgen(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m bayesgen ARGS`` with ``site`` first on PYTHONPATH; fails the test on an error."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one thread: fast even on a busy machine
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, "-m", "bayesgen", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# --- the command line --------------------------------------------------------------------------

def test_plugins_lists_w_munu(target, tmp_path):
    result = bayesgen(target, "plugins", cwd=tmp_path)
    lines = result.stdout.splitlines()
    processes = lines[lines.index("processes:") + 1:lines.index("backbones:")]
    assert any(line.split()[0] == "w_munu" and "W -> mu nu" in line for line in processes)
    assert "bayesgen_w_munu" not in result.stderr and "w_munu" not in result.stderr


@pytest.fixture(scope="module")
def run_dir(target, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("w_munu_run")
    # ε-prediction: an untrained network's x̂₀ = x_t/√ᾱ lands at the edges of the clipped range,
    # outside the acceptance (ddpm's recipe, v-prediction, would put it near the mean instead)
    (work / "eps.toml").write_text('[train.sampler_options]\nprediction = "eps"\nschedule = "linear"\n')
    bayesgen(target, "train", "--process", "w_munu", "--steps", "3", "--events", "1024",
             "--batch-size", "256", "--out", "RUN", "--config", "eps.toml", cwd=work)
    return work / "RUN"


def test_train_writes_run(run_dir):
    assert (run_dir / "checkpoint.pt").is_file()
    assert json.loads((run_dir / "config.json").read_text())["process"] == "w_munu"


def test_validate_writes_report(target, run_dir, wmunu):
    # three training steps put nearly every event outside the acceptance: measured as drawn
    bayesgen(target, "validate", str(run_dir), "--events", "500", "--sample-steps", "2", "--keep-unphysical",
             cwd=run_dir.parent)
    report = run_dir / "report"
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["process"] == "w_munu" and metrics["out_of_support_fraction"] > 0.5
    assert set(metrics["observables"]) == set(wmunu.WMuNu.binnings)
    for name in wmunu.WMuNu.binnings:
        assert (report / f"{name}.png").is_file()


# --- the process, imported from the installed copy --------------------------------------------

@pytest.fixture(scope="module")
def wmunu(target):
    """The module ``bayesgen_w_munu.process`` as installed in ``target``."""
    def names():
        return [n for n in sys.modules if n == "bayesgen_w_munu" or n.startswith("bayesgen_w_munu.")]

    for name in names():
        del sys.modules[name]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module("bayesgen_w_munu.process")
    finally:
        sys.path.remove(str(target))
    assert Path(module.__file__).resolve().is_relative_to(target.resolve())
    yield module
    for name in names():
        del sys.modules[name]


@pytest.fixture(scope="module")
def events(wmunu) -> np.ndarray:
    return wmunu.WMuNu().sample(100_000, seed=5)


def _mode(values: np.ndarray, low: float, high: float) -> tuple[float, np.ndarray, np.ndarray]:
    """The centre of the fullest 1 GeV bin in [low, high], the counts and the bin centres."""
    counts, edges = np.histogram(values, bins=np.arange(low, high + 1.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres[counts.argmax()], counts, centres


def test_shape_acceptance_and_ranges(wmunu, events):
    process = wmunu.WMuNu()
    assert events.shape == (100_000, len(process.quantities)) == (100_000, 5)
    assert events.dtype == np.float64 and np.isfinite(events).all()
    col = dict(zip(process.quantities, events.T))
    assert (col["mu_pt"] > wmunu.PT_MIN).all() and (np.abs(col["mu_eta"]) < wmunu.ETA_MAX).all()
    assert (col["met"] > 0).all()
    for phi in ("mu_phi", "met_phi"):
        assert (col[phi] > -np.pi).all() and (col[phi] <= np.pi).all()
    assert process.sample(0, seed=1).shape == (0, 5)
    observables = process.observables(events)
    assert set(observables) == set(process.binnings)
    assert all(v.shape == (100_000,) and np.isfinite(v).all() for v in observables.values())


def test_seeds_reproduce(wmunu):
    process = wmunu.WMuNu()
    a, b, c = process.sample(5000, seed=1), process.sample(5000, seed=1), process.sample(5000, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_round_trip(wmunu, events):
    """Features → events restores everything but the global φ, which is re-drawn uniformly."""
    process = wmunu.WMuNu()
    features = process.to_features(events)
    assert features.shape == (len(events), process.n_features) and np.isfinite(features).all()
    back = process.from_features(features, np.random.default_rng(0))
    np.testing.assert_allclose(back[:, [0, 1, 3]], events[:, [0, 1, 3]], rtol=1e-5, atol=1e-12)
    dphi_back, dphi = (wrap_phi(ev[:, 4] - ev[:, 2]) for ev in (back, events))  # φ_MET − φ_μ
    np.testing.assert_allclose(wrap_phi(dphi_back - dphi), 0.0, atol=1e-5 * np.pi)
    np.testing.assert_allclose(process.to_features(back), features, rtol=1e-5, atol=1e-9)
    for name in ("mt", "dphi", "pt_w"):
        np.testing.assert_allclose(process.observables(back)[name], process.observables(events)[name],
                                   rtol=1e-5, atol=1e-6)
    assert abs(np.mean(back[:, 2])) < 0.05  # φ_μ re-drawn uniformly


def test_mt_jacobian_edge(wmunu, events):
    """m_T peaks just below M_W and falls steeply above it; MET resolution only softens the edge."""
    mt = wmunu.WMuNu().observables(events)["mt"]
    mode, counts, centres = _mode(mt, 40.0, 110.0)
    assert 65.0 < mode < 82.0
    assert counts[centres == 100.5][0] < 0.1 * counts.max()
    assert (mt > 100.0).mean() < 0.02


def test_mt_edge_at_w_mass_without_resolution(wmunu, monkeypatch):
    """With perfect resolution m_T ≤ m(μν), so the edge sits at M_W: the mode is within 2.5 GeV
    below it and the density 10 GeV above it is under 5 % of the peak."""
    for name in ("MET_SIGMA", "RES_CONST", "RES_SLOPE"):
        monkeypatch.setattr(wmunu, name, 0.0)
    mt = wmunu.WMuNu().observables(wmunu.WMuNu().sample(100_000, seed=6))["mt"]
    mode, counts, centres = _mode(mt, 40.0, 110.0)
    assert wmunu.M_W - 2.5 < mode < wmunu.M_W + 0.5
    assert counts[centres == 90.5][0] < 0.05 * counts.max()
    assert mt.max() < wmunu.M_HIGH + 0.01


def test_muon_pt_jacobian_peak(wmunu, events):
    mode, _, _ = _mode(events[:, 0], 25.0, 60.0)
    assert 36.0 < mode < 41.0  # ≈ M_W / 2


def test_v_minus_a_charge_asymmetry(wmunu, monkeypatch):
    """(1 − cosθ)² sends μ⁺ against the quark (the W's boost), (1 + cosθ)² sends μ⁻ along it:
    before cuts μ⁻ are more forward than μ⁺ from identically distributed W."""
    mean_abs_eta = {}
    for fraction in (1.0, 0.0):
        monkeypatch.setattr(wmunu, "W_PLUS_FRACTION", fraction)
        mean_abs_eta[fraction] = np.abs(wmunu.generate(100_000, np.random.default_rng(3))[:, 1]).mean()
    assert mean_abs_eta[0.0] > mean_abs_eta[1.0] + 0.3
