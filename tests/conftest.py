"""Shared fixtures: tiny training configurations and a third-party plugin made on the fly."""
from __future__ import annotations

from pathlib import Path

import pytest

from bayesgen.core import registry
from bayesgen.core.config import TrainConfig
from bayesgen.core.training import train

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

    def from_features(self, features, rng):
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

    def from_features(self, features, rng, conditions):
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
