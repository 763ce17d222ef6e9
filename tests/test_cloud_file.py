"""The ``cloud_file`` process: ECAL point clouds from .npz and ROOT files written on the fly,
mapped onto a stand-in target ``toy_cloud`` (the ``ecal_cloud`` layout with N = 5 hits)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from bayesgen.core import registry
from bayesgen.core.errors import ConfigError, DataError
from bayesgen.plugins.processes import cloud_file
from bayesgen.plugins.processes.cloud_file import CloudFileProcess
from bayesgen.plugins.processes.root_file import entry_uniform

N, M, N_EVENTS = 5, 8, 40

TOY_CLOUD_MODULE = '''
import numpy as np
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, DetectorView, Process

N = 5


class ToyCloud(Process):
    """The ecal_cloud event layout with 5 hits (a stand-in target for cloud_file tests)."""

    name = "toy_cloud"
    description = "toy point cloud"
    quantities = ("is_top", "n_hits") + tuple(f"hit{i}_{v}" for i in range(N) for v in ("eta", "phi", "e"))
    feature_names = quantities[2:]
    feature_shape = (N, 3)
    channel_axis = -1
    binnings = {"n_hits": Binning(-0.5, N + 0.5, N + 1, "hits")}

    def sample(self, n, seed):
        return np.zeros((n, len(self.quantities)))

    def to_features(self, events):
        return np.asarray(events)[:, 2:]

    def from_features(self, features, rng, conditions=None):
        n = len(features)
        return np.concatenate([np.zeros((n, 1)), (features[:, 2::3] > 0).sum(1, keepdims=True), features], 1)

    def observables(self, events):
        return {"n_hits": events[:, 1]}

    def detector_view(self, events):
        return DetectorView("cloud", np.asarray(events)[:, 2:].reshape(len(events), N, 3))

    def event_metrics(self, truth_events, generated_events, seed):
        return {"toy_metric": float(len(truth_events))}


@hookimpl
def bayesgen_processes():
    return {"toy_cloud": ToyCloud}
'''


@pytest.fixture(scope="module", autouse=True)
def toy_cloud(tmp_path_factory):
    """Register ``toy_cloud`` through an entry point of a distribution on ``sys.path``."""
    site = tmp_path_factory.mktemp("site")
    (site / "toycloudplug.py").write_text(TOY_CLOUD_MODULE)
    info = site / "toycloudplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toycloudplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bayesgen]\ntoycloudplug = toycloudplug\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        registry.registry(refresh=True)
        yield site
    sys.modules.pop("toycloudplug", None)
    registry.registry(refresh=True)


@pytest.fixture(scope="module")
def clouds() -> dict[str, np.ndarray]:
    """Zero-padded hits (n, M), unsorted, with E = 0 padding and a few negative energies."""
    rng = np.random.default_rng(7)
    e = rng.uniform(0.5, 50.0, (N_EVENTS, M))
    e[rng.random((N_EVENTS, M)) < 0.3] = 0.0
    e[rng.random((N_EVENTS, M)) < 0.05] = -1.0
    e[0] = 0.0                        # no hits at all
    e[1] = [3.0, 0, 9.0, 0, 1.0, 0, 0, 0]  # fewer than N
    e[2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # more than N, ascending
    eta = rng.normal(0.0, 0.3, (N_EVENTS, M))
    phi = rng.uniform(-2 * np.pi + 0.01, 2 * np.pi - 0.01, (N_EVENTS, M))
    phi[2] = [0.1, 0.2, 0.3, 0.4, 4.0, -4.0, 0.5, 0.6]  # two hits kept need wrapping
    eta[e == 0] = phi[e == 0] = 0.0
    label = (rng.random(N_EVENTS) < 0.5).astype(np.int64)
    return {"eta": eta, "phi": phi, "e": e, "label": label}


def expected(c: dict[str, np.ndarray], with_label: bool = True) -> np.ndarray:
    """The target events, computed event by event."""
    rows = []
    for i in range(len(c["e"])):
        hits = [(e, eta, math.atan2(math.sin(phi), math.cos(phi)))
                for e, eta, phi in zip(c["e"][i], c["eta"][i], c["phi"][i]) if e > 0]
        hits = sorted(hits, key=lambda h: -h[0])[:N]
        row = [float(c["label"][i]) if with_label else 0.0, len(hits)]
        for e, eta, phi in hits + [(0.0, 0.0, 0.0)] * (N - len(hits)):
            row += [eta, phi, e]
        rows.append(row)
    return np.array(rows)


def write_npz(path: Path, c: dict[str, np.ndarray], **extra) -> Path:
    np.savez_compressed(path, eta=c["eta"], phi=c["phi"], e=c["e"], y=c["label"], **extra)
    return path


def jagged(c: dict[str, np.ndarray]) -> dict[str, ak.Array]:
    """The same hits without the E = 0 padding (negative energies stay, to be dropped)."""
    keep = c["e"] != 0
    return {v: ak.Array([list(c[v][i][keep[i]]) for i in range(len(keep))]) for v in ("eta", "phi", "e")}


@pytest.fixture(scope="module")
def files(tmp_path_factory, clouds) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clouds")
    hits = jagged(clouds)
    with uproot.recreate(folder / "rntuple.root") as file:  # uproot >= 5.7 writes an RNTuple
        file["events"] = {"Hit_eta": hits["eta"], "Hit_phi": hits["phi"], "Hit_e": hits["e"],
                          "y": clouds["label"]}
    collection = ak.zip({"eta": hits["eta"], "phi": hits["phi"], "e": hits["e"]})
    with uproot.recreate(folder / "ttree.root") as file:  # a TTree: nHit, Hit_eta, Hit_phi, Hit_e
        file.mktree("events", {"Hit": collection.type.content, "y": np.int64}).extend(
            {"Hit": collection, "y": clouds["label"]})
    return {"npz": write_npz(folder / "clouds.npz", clouds),
            "rntuple": folder / "rntuple.root", "ttree": folder / "ttree.root"}


ROOT = dict(eta="Hit_eta", phi="Hit_phi", energy="Hit_e")


def test_hook_and_entry_point_register_cloud_file(files):
    assert cloud_file.bayesgen_processes() == {"cloud_file": CloudFileProcess}
    process = registry.get_process("cloud_file", path=files["npz"], like="toy_cloud")
    assert isinstance(process, CloudFileProcess) and process.n_max == N
    assert process.selection == "hits with E > 0, the 5 most energetic"


def test_reuses_the_target(files):
    process = CloudFileProcess(files["npz"], like="toy_cloud", label="y", holdout_fraction=0)
    target = process.target
    assert process.quantities == target.quantities and process.feature_names == target.feature_names
    assert process.feature_shape == (N, 3) and process.channel_axis == -1
    events = process.sample(N_EVENTS, seed=0)
    np.testing.assert_array_equal(process.to_features(events), events[:, 2:])
    assert process.event_metrics(events, events, seed=0) == {"toy_metric": float(N_EVENTS)}
    np.testing.assert_array_equal(process.detector_view(events).arrays, target.detector_view(events).arrays)
    np.testing.assert_array_equal(process.sample_with_weights(N_EVENTS, seed=0)[1], np.ones(N_EVENTS))


def test_npz_hits_sorted_truncated_padded(files, clouds):
    process = CloudFileProcess(files["npz"], like="toy_cloud", label="y", holdout_fraction=0)
    arrays = process.sample_arrays(N_EVENTS, seed=0)
    events = arrays["events"]
    np.testing.assert_array_equal(arrays["entry"], np.arange(N_EVENTS))
    np.testing.assert_allclose(events, expected(clouds), atol=1e-12)
    energies, phis = events[:, 4::3], events[:, 3::3]
    assert np.all(np.diff(energies, axis=1) <= 0) and np.all((phis > -np.pi) & (phis <= np.pi))
    assert events[0, 1] == 0 and not events[0, 2:].any()  # an event without hits
    np.testing.assert_array_equal(events[1, [1, 4, 7, 10]], [3, 9.0, 3.0, 1.0])
    assert not events[1, 11:].any()  # padding after the third hit
    np.testing.assert_array_equal(events[2, 4::3], [8.0, 7.0, 6.0, 5.0, 4.0])
    np.testing.assert_allclose(events[2, 3::3], [0.6, 0.5, -4.0 + 2 * np.pi, 4.0 - 2 * np.pi, 0.4])
    assert np.all(events[:, 1] == (events[:, 4::3] > 0).sum(axis=1))


@pytest.mark.parametrize("kind", ["rntuple", "ttree"])
def test_root_jagged_branches_give_the_same_events(files, clouds, kind):
    process = CloudFileProcess(files[kind], like="toy_cloud", label="y", holdout_fraction=0, **ROOT)
    np.testing.assert_allclose(process.sample(N_EVENTS, seed=0), expected(clouds), atol=1e-12)
    if kind == "ttree":  # uproot made the counts branch; a name written as Hit_e[nHit] works
        assert "nHit" in uproot.open(files[kind])["events"].keys()
        titled = CloudFileProcess(files[kind], like="toy_cloud", holdout_fraction=0, tree="events",
                                  **{**ROOT, "energy": "Hit_e[nHit]"})
        np.testing.assert_allclose(titled.sample(N_EVENTS, seed=0), expected(clouds, False), atol=1e-12)


@pytest.mark.parametrize("kind", ["npz", "rntuple"])
def test_chunked_reading_equals_one_chunk(files, kind):
    names = ROOT if kind != "npz" else {}
    one = CloudFileProcess(files[kind], like="toy_cloud", label="y", holdout_fraction=0, **names)
    chunked = CloudFileProcess(files[kind], like="toy_cloud", label="y", holdout_fraction=0,
                               chunk_size=3, **names)
    assert len(list(chunked.chunks())) == math.ceil(N_EVENTS / 3)
    a, b = one.sample_arrays(17, seed=5), chunked.sample_arrays(17, seed=5)
    np.testing.assert_array_equal(a["events"], b["events"])
    np.testing.assert_array_equal(a["entry"], b["entry"])
    assert np.all(np.diff(a["entry"]) > 0)


def test_label_optional_and_checked(files, clouds, tmp_path):
    with_label = CloudFileProcess(files["npz"], like="toy_cloud", label="y", holdout_fraction=0)
    without = CloudFileProcess(files["npz"], like="toy_cloud", holdout_fraction=0)
    a, b = with_label.sample(N_EVENTS, seed=0), without.sample(N_EVENTS, seed=0)
    np.testing.assert_array_equal(a[:, 0], clouds["label"])
    assert 0 < a[:, 0].sum() < N_EVENTS and not b[:, 0].any()
    np.testing.assert_array_equal(a[:, 1:], b[:, 1:])
    bad = {**clouds, "label": np.where(np.arange(N_EVENTS) == 6, 2, clouds["label"])}
    with pytest.raises(DataError, match=r"label 'y'.*must be 0 or 1.*found 2 at entry 6"):
        CloudFileProcess(write_npz(tmp_path / "bad.npz", bad), like="toy_cloud", label="y",
                         holdout_fraction=0).sample(5, seed=0)


def test_file_errors(files, clouds, tmp_path):
    with pytest.raises(DataError, match="point-cloud file not found"):
        CloudFileProcess(tmp_path / "nope.npz", like="toy_cloud").sample(5, seed=0)
    (tmp_path / "clouds.h5").write_bytes(b"\x89HDF")
    with pytest.raises(DataError, match=r"unknown file type '\.h5'.*\.npz.*\.root"):
        CloudFileProcess(tmp_path / "clouds.h5", like="toy_cloud").sample(5, seed=0)
    with pytest.raises(DataError, match=r"no array 'E' \(energy\); arrays: eta, phi, e, y"):
        CloudFileProcess(files["npz"], like="toy_cloud", energy="E").sample(5, seed=0)
    with pytest.raises(DataError, match=r"branch 'Hit_E' \(energy\).*did you mean Hit_e.*available"):
        CloudFileProcess(files["rntuple"], like="toy_cloud", **{**ROOT, "energy": "Hit_E"}).sample(5, 0)
    with pytest.raises(DataError, match=r"no tree 'Events'; trees: events"):
        CloudFileProcess(files["ttree"], like="toy_cloud", tree="Events", **ROOT).sample(5, seed=0)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz file"):
        CloudFileProcess(tmp_path / "broken.npz", like="toy_cloud").sample(5, seed=0)


def test_shape_errors(clouds, tmp_path):
    path = tmp_path / "short.npz"
    np.savez(path, eta=clouds["eta"], phi=clouds["phi"][:, :7], e=clouds["e"])
    with pytest.raises(DataError, match=r"mismatched shapes: 'eta' \(40, 8\), 'phi' \(40, 7\)"):
        CloudFileProcess(path, like="toy_cloud").sample(5, seed=0)
    np.savez(path, eta=clouds["eta"][:, 0], phi=clouds["phi"][:, 0], e=clouds["e"][:, 0])
    with pytest.raises(DataError, match="must be 2D"):
        CloudFileProcess(path, like="toy_cloud").sample(5, seed=0)
    write_npz(path, {**clouds, "label": clouds["label"][:-1]})
    with pytest.raises(DataError, match=r"label array 'y' has shape \(39,\), expected \(40,\)"):
        CloudFileProcess(path, like="toy_cloud", label="y").sample(5, seed=0)
    hits = jagged(clouds)
    phi = hits["phi"].tolist()
    phi[9] = phi[9] + [0.0]
    with uproot.recreate(tmp_path / "ragged.root") as file:
        file["events"] = {"eta": hits["eta"], "phi": ak.Array(phi), "e": hits["e"]}
    with pytest.raises(DataError, match=r"'phi' and 'e'.*mismatched shapes.*at entry 9"):
        CloudFileProcess(tmp_path / "ragged.root", like="toy_cloud", chunk_size=4).sample(5, seed=0)
    with uproot.recreate(tmp_path / "flat.root") as file:
        file["events"] = {"eta": clouds["eta"][:, 0], "phi": hits["phi"], "e": hits["e"]}
    with pytest.raises(DataError, match=r"branch 'eta' \(η\).*must be jagged"):
        CloudFileProcess(tmp_path / "flat.root", like="toy_cloud").sample(5, seed=0)


def test_non_finite_values_are_named_with_entry(clouds, tmp_path):
    phi = clouds["phi"].copy()
    phi[4, 6] = np.nan
    path = write_npz(tmp_path / "nan.npz", {**clouds, "phi": phi})
    with pytest.raises(DataError, match=r"non-finite value in array 'phi' at entry 4"):
        CloudFileProcess(path, like="toy_cloud", chunk_size=3).sample(5, seed=0)
    hits = jagged(clouds)
    e = hits["e"].tolist()
    e[7][0] = np.inf
    with uproot.recreate(tmp_path / "inf.root") as file:
        file["events"] = {"Hit_eta": hits["eta"], "Hit_phi": hits["phi"], "Hit_e": ak.Array(e)}
    with pytest.raises(DataError, match=r"non-finite value in branch 'Hit_e' at entry 7"):
        CloudFileProcess(tmp_path / "inf.root", like="toy_cloud", chunk_size=3, **ROOT).sample(5, 0)


def test_option_errors(files):
    with pytest.raises(ConfigError, match="not a point-cloud process"):
        CloudFileProcess(files["npz"], like="z_mumu")
    with pytest.raises(ConfigError, match="chunk_size must be positive"):
        CloudFileProcess(files["npz"], like="toy_cloud", chunk_size=0)
    with pytest.raises(ConfigError, match="own features"):
        CloudFileProcess(files["npz"], like="cloud_file")


def test_training_and_held_out_parts_are_disjoint(clouds, tmp_path):
    big = {k: np.concatenate([v] * 5) for k, v in clouds.items()}  # 200 events
    path = write_npz(tmp_path / "big.npz", big)
    process = CloudFileProcess(path, like="toy_cloud", label="y", chunk_size=64)
    held = entry_uniform(np.arange(200)) < process.holdout_fraction
    train = process.sample_arrays(int((~held).sum()), seed=0)
    test = process.holdout().sample_arrays(int(held.sum()), seed=1)
    assert not set(train["entry"]) & set(test["entry"])
    np.testing.assert_array_equal(np.sort(np.concatenate([train["entry"], test["entry"]])), np.arange(200))
    reference = expected(big)
    np.testing.assert_allclose(test["events"], reference[test["entry"]], atol=1e-12)
    np.testing.assert_allclose(train["events"], reference[train["entry"]], atol=1e-12)
    with pytest.raises(DataError, match=r"only .* in the held-out part"):
        process.holdout().sample(int(held.sum()) + 1, seed=0)
