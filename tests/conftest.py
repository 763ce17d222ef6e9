"""Shared fixtures: tiny training configurations, a third-party plugin made on the fly and a
CMS-dimuon-like ntuple."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from bayesgen.core import registry
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.training import train

TINY = dict(process="z_mumu", sampler="ddpm", backbone="mlp", steps=40, batch_size=256, lr=2e-3,
            events=4096, checkpoint_every=20, backbone_options={"width": 32, "depth": 2},
            sampler_options={"timesteps": 50})

THIRD_PARTY_MODULE = '''
import numpy as np
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, Process


class ToyGauss(Process):
    """Two correlated Gaussian features (a third-party test process)."""

    name = "toy_gauss"
    quantities = ("a", "b")
    feature_names = ("a", "b")
    binnings = {"a": Binning(-4, 4, 20, "a"), "b": Binning(-4, 4, 20, "b")}

    def __init__(self, nan_row=None):
        self.nan_row = nan_row

    def sample(self, n, seed):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=n)
        events = np.stack([a, 0.5 * a + rng.normal(size=n)], axis=1)
        if self.nan_row is not None:
            events[self.nan_row, 1] = np.nan
        return events

    def to_features(self, events):
        return np.asarray(events, dtype=np.float64)

    def from_features(self, features, rng, conditions=None):
        return features

    def observables(self, events):
        return {"a": events[:, 0], "b": events[:, 1]}


class ToySwitch(Process):
    """A class c (30 % ones) as condition; x ~ N(4c - 2, 0.5); y ~ N(1, 0.3) only when c = 1."""

    name = "toy_switch"
    quantities = ("c", "x", "y")
    feature_names = ("x", "y")
    condition_names = ("c_is_0", "c_is_1")
    binnings = {"x": Binning(-4, 4, 32, "x"), "y": Binning(0, 2, 20, "y")}

    def sample(self, n, seed):
        rng = np.random.default_rng(seed)
        c = (rng.random(n) < 0.3).astype(float)
        x = rng.normal(4 * c - 2, 0.5)
        y = np.where(c == 1, rng.normal(1.0, 0.3, n), 0.0)
        return np.stack([c, x, y], axis=1)

    def conditions(self, events):
        return np.stack([1 - events[:, 0], events[:, 0]], axis=1)

    def feature_mask(self, conditions):
        return np.stack([np.ones(len(conditions), bool), conditions[:, 1] == 1], axis=1)

    def to_features(self, events):
        return events[:, 1:]

    def from_features(self, features, rng, conditions=None):
        c = conditions[:, 1]
        return np.stack([c, features[:, 0], np.where(c == 1, features[:, 1], 0.0)], axis=1)

    def observables(self, events):
        return {"x": events[:, 1], "y": np.where(events[:, 0] == 1, events[:, 2], np.nan)}


@hookimpl
def bayesgen_processes():
    return {"toy_gauss": ToyGauss, "toy_switch": ToySwitch}
'''


@pytest.fixture
def third_party_plugin(tmp_path, monkeypatch) -> Path:
    """A distribution ``toyplug`` (module + dist-info with an entry point) on ``sys.path``;
    also a broken entry point ``brokenplug`` whose import fails."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "toyplug.py").write_text(THIRD_PARTY_MODULE)
    (site / "brokenplug.py").write_text("raise ImportError('missing dependency frobnicate')\n")
    for name in ("toyplug", "brokenplug"):
        info = site / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[bayesgen]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    registry.registry(refresh=True)
    yield site
    monkeypatch.undo()
    registry.registry(refresh=True)


MUON_MASS = 0.10566


def cms_dimuon_file(path: Path, n_events: int = 400, seed: int = 3) -> dict[str, np.ndarray]:
    """Rows ``Run, Event, Type, E1, px1, py1, pz1, pt1, eta1, phi1, Q1, (… 2), M`` in the layout of
    the public CMS dimuon ntuples: every event has a 'GG' row, 60 % a second 'GT' row with the same
    muons; the two muons come in random order and 10 % of pairs have the same charge."""
    rng = np.random.default_rng(seed)
    pt = rng.uniform(20.0, 60.0, (n_events, 2))
    eta, phi = rng.normal(0.0, 1.0, (n_events, 2)), rng.uniform(-np.pi, np.pi, (n_events, 2))
    charge = np.stack([np.where(rng.random(n_events) < 0.5, 1, -1)] * 2, axis=1)
    charge[:, 1] *= np.where(rng.random(n_events) < 0.9, -1, 1)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + MUON_MASS**2)
    rows = np.repeat(np.arange(n_events), np.where(rng.random(n_events) < 0.6, 2, 1))
    kind = np.where(np.r_[False, rows[1:] == rows[:-1]], "GT", "GG")
    columns = {"Run": (1 + rows // 100).astype(np.int32), "Event": (5000 + rows).astype(np.int64), "Type": kind}
    for i in (0, 1):
        for name, values in (("E", energy), ("px", px), ("py", py), ("pz", pz), ("pt", pt), ("eta", eta),
                             ("phi", phi), ("Q", charge)):
            columns[f"{name}{i + 1}"] = values[rows, i]
    mass = np.sqrt(np.maximum(energy.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0.0))
    columns["M"] = mass[rows]
    with uproot.recreate(path) as file:
        file["events"] = columns
    return columns


@pytest.fixture(scope="session")
def cms_dimuon(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A CMS-dimuon-like ntuple (see :func:`cms_dimuon_file`) and its columns."""
    path = tmp_path_factory.mktemp("cms") / "dimuon.root"
    return path, cms_dimuon_file(path)


@pytest.fixture(scope="session")
def make_cms_dimuon():
    """:func:`cms_dimuon_file` itself, for tests that need an ntuple of another size."""
    return cms_dimuon_file


def _tiny_config(out: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "out": str(out), **overrides})


@pytest.fixture
def tiny_config():
    """``tiny_config(out, **overrides)``: a training configuration that runs in seconds."""
    return _tiny_config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A small ddpm run on z_mumu (a few seconds), trained once per session."""
    return train(_tiny_config(tmp_path_factory.mktemp("runs") / "tiny", steps=300, checkpoint_every=100,
                              backbone_options={"width": 64, "depth": 2}), progress=False)
