"""ECAL point clouds of boosted top and QCD jets, from the toy shower of :mod:`.showers`.

An event is a top jet (probability ``top_fraction``) or a QCD jet (quark or gluon, equally
likely), pT 500–1000 GeV, seen as its ECAL crystals: the ``n_points`` (N) most energetic ones,
sorted by energy, each at its crystal centre (η, φ relative to the jet axis) with its energy E.

Event columns: ``is_top, n_hits, hit0_eta, hit0_phi, hit0_e, …, hit{N−1}_e`` (2 + 3N); points
past ``n_hits`` (≤ N) are all 0. Features ``(N, 3)``, channel last: per point
logit(min-max(x)) of x = η, φ over the grid extent ±GRID_HALF and of x = log E over
[log E_FLOOR, log E_CEILING] (clipped to [1e-6, 1 − 1e-6] before the logit); core standardises
them per channel. Conditions: the point mask ``mask_0 … mask_{N−1}`` (1 for the first
``n_hits`` points; ``mask_conditions = N``), then the class one-hot ``is_top, is_qcd``.
Validation sees the events as clouds (:meth:`EcalCloud.detector_view`).

Only ECAL is seen (≈ 42 % of a jet's energy: photons and part of the charged hadrons), so
the ECAL ``jet_mass`` of a top jet peaks near that fraction of m_top (≈ 70 GeV, QCD ≈ 15 GeV).
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, DetectorView, Process
from bayesgen.plugins.processes import showers

GRID_HALF = showers.N_CRYSTALS * showers.CRYSTAL / 2  #: η, φ range of the features (grid edge)
E_FLOOR = showers.ECAL_THRESHOLD      #: lower end of the log E range (no crystal is below)
E_CEILING = 2000.0                    #: upper end of the log E range (above any jet energy)
QCD_GLUON_FRACTION = 0.5              #: share of gluon jets among the QCD jets
_CLIP = 1e-6


def _logit(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, _CLIP, 1.0 - _CLIP)
    return np.log(u / (1.0 - u))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def clouds_from_hits(hits: showers.Hits, n: int, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_points`` hottest ``hits`` of each of ``n`` events as clouds ``(n, n_points, 3)``
    (η, φ, E; energy-descending, zero-padded) and the number kept ``(n,)``."""
    order = np.lexsort((-hits.e, hits.event))
    event = hits.event[order]
    rank = np.arange(len(event)) - np.searchsorted(event, event)
    keep = rank < n_points
    clouds = np.zeros((n, n_points, 3))
    clouds[event[keep], rank[keep]] = np.stack([hits.eta, hits.phi, hits.e], axis=1)[order][keep]
    return clouds, np.minimum(np.bincount(hits.event, minlength=n), n_points)


class EcalCloud(Process):
    """ECAL point clouds (η, φ, E) of boosted top and QCD jets (toy shower + crystal ECAL)."""

    name = "ecal_cloud"
    description = "ECAL point clouds of boosted top vs QCD jets (toy shower, N hits x (eta, phi, E), class condition)"
    channel_axis = -1
    sqrt_s = 2 * showers.BEAM_ENERGY
    #: a point transformer sized for a CPU: about 0.5 s a step with one thread
    training_defaults = {"backbone": "transformer", "batch_size": 64, "events": 20_000, "steps": 2000,
                         "backbone_options": {"transformer": {"width": 64, "depth": 2, "heads": 4,
                                                              "fourier_features": 32}},
                         "sampler_options": {"ddpm": {"schedule": "cosine", "prediction": "v"}}}

    def __init__(self, top_fraction: float = 0.5, n_points: int = 300):
        if not 0.0 <= top_fraction <= 1.0:
            raise ConfigError(f"top_fraction must be in [0, 1], got {top_fraction}")
        if int(n_points) != n_points or n_points < 1:
            raise ConfigError(f"n_points must be a positive integer, got {n_points}")
        self.top_fraction, self.n_points = float(top_fraction), int(n_points)
        n = self.n_points
        self.quantities = ("is_top", "n_hits", *(f"hit{i}_{v}" for i in range(n) for v in ("eta", "phi", "e")))
        self.feature_names = tuple(f"hit{i}_{v}_logit" for i in range(n) for v in ("eta", "phi", "log_e"))
        self.condition_names = (*(f"mask_{i}" for i in range(n)), "is_top", "is_qcd")
        self.mask_conditions = n
        self.feature_shape = (n, 3)
        self.binnings = {
            "et_sum": Binning(0.0, 800.0, 40, r"$\sum E_T$ [GeV]"),
            "n_hits": Binning(0.0, float(n), min(n, 50), r"$n_\mathrm{hits}$"),
            "e_max": Binning(0.0, 300.0, 30, r"$E_\mathrm{max}$ [GeV]"),
            "jet_mass": Binning(0.0, 150.0, 50, r"$m_\mathrm{ECAL}$ [GeV]"),
            "girth": Binning(0.0, 0.4, 40, r"girth $\sum E\,\Delta R / \sum E$"),
        }

    # --- Monte Carlo -------------------------------------------------------------------------
    def simulate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` events ``(n, 2 + 3N)``."""
        is_top = rng.random(n) < self.top_fraction
        gluon = rng.random(n) < QCD_GLUON_FRACTION
        flavour = np.where(is_top, showers.TOP, np.where(gluon, showers.GLUON, showers.QUARK))
        particles = showers.jets(flavour, rng)
        hits = showers.ecal(particles, showers.ecal_fractions(particles, rng), rng)
        clouds, n_hits = clouds_from_hits(hits, n, self.n_points)
        return np.concatenate([is_top[:, None], n_hits[:, None], clouds.reshape(n, -1)], axis=1)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` events, reproducible for ``(n, seed)``."""
        return showers.simulate_in_chunks(self.simulate, n, seed, len(self.quantities))

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """``is_top`` 0 or 1, ``n_hits`` whole in [0, N], the points past it all 0, the others
        finite with E > 0 and φ in (-π, π], ΣE within the beam energy; with ``selection`` also
        inside the grid (|η|, |φ| ≤ GRID_HALF), above the ECAL threshold and energy-descending."""
        ev = np.asarray(events, dtype=np.float64)
        clouds, n_hits = self.clouds(ev), ev[:, 1]
        present = np.arange(self.n_points) < n_hits[:, None]
        eta, phi, e = clouds[..., 0], clouds[..., 1], clouds[..., 2]
        with np.errstate(invalid="ignore"):
            point_ok = np.where(present, np.isfinite(clouds).all(-1) & (e > 0) & (phi > -np.pi) & (phi <= np.pi),
                                (clouds == 0).all(-1))
            if selection:
                point_ok &= ~present | ((np.abs(eta) <= GRID_HALF) & (np.abs(phi) <= GRID_HALF) & (e >= E_FLOOR))
                point_ok[:, 1:] &= e[:, 1:] <= e[:, :-1]
            return (np.isin(ev[:, 0], (0.0, 1.0)) & (n_hits == np.round(n_hits)) & (n_hits >= 0)
                    & (n_hits <= self.n_points) & point_ok.all(axis=1) & (e.sum(axis=1) <= showers.BEAM_ENERGY))

    def clouds(self, events: np.ndarray) -> np.ndarray:
        """Event array → clouds ``(n, N, 3)`` of (η, φ, E)."""
        return np.asarray(events, dtype=np.float64)[:, 2:].reshape(-1, self.n_points, 3)

    # --- network representation --------------------------------------------------------------
    def conditions(self, events: np.ndarray) -> np.ndarray:
        """Point mask ``(n, N)`` then the one-hot class ``(is_top, is_qcd)``."""
        ev = np.asarray(events, dtype=np.float64)
        mask = np.arange(self.n_points) < ev[:, 1:2]
        return np.concatenate([mask, ev[:, :1], 1.0 - ev[:, :1]], axis=1).astype(np.float64)

    def feature_mask(self, conditions: np.ndarray) -> np.ndarray:
        """A point's three features are present where its mask is 1."""
        return np.repeat(np.asarray(conditions)[:, :self.n_points] > 0.5, 3, axis=1)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 2 + 3N)`` → ``(n, 3N)``; absent points give finite placeholders."""
        clouds = self.clouds(events)
        unit = np.stack([(clouds[..., 0] + GRID_HALF) / (2 * GRID_HALF), (clouds[..., 1] + GRID_HALF) / (2 * GRID_HALF),
                         np.log(np.maximum(clouds[..., 2], E_FLOOR) / E_FLOOR) / np.log(E_CEILING / E_FLOOR)], axis=-1)
        return _logit(unit).reshape(len(clouds), -1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 3N)`` and the conditions → ``(n, 2 + 3N)``: absent points 0, present ones sorted
        by energy."""
        unit = _sigmoid(np.asarray(features, dtype=np.float64).reshape(-1, self.n_points, 3))
        points = np.stack([(2 * unit[..., 0] - 1) * GRID_HALF, (2 * unit[..., 1] - 1) * GRID_HALF,
                           E_FLOOR * (E_CEILING / E_FLOOR) ** unit[..., 2]], axis=-1)
        conditions = np.asarray(conditions, dtype=np.float64)
        present = conditions[:, :self.n_points] > 0.5
        points = np.where(present[..., None], points, 0.0)
        order = np.argsort(-points[..., 2], axis=1, kind="stable")
        points = np.take_along_axis(points, order[..., None], axis=1)
        is_top = (conditions[:, self.n_points] > conditions[:, self.n_points + 1]).astype(np.float64)
        return np.concatenate([is_top[:, None], present.sum(axis=1, keepdims=True).astype(np.float64),
                               points.reshape(len(points), -1)], axis=1)

    # --- validation --------------------------------------------------------------------------
    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """``et_sum`` (Σ E/cosh η), ``n_hits``, ``e_max``, ``jet_mass`` (hits as massless
        four-vectors) and ``girth`` (E-weighted mean ΔR to the axis; 0 without hits)."""
        clouds = self.clouds(events)
        eta, phi, e = clouds[..., 0], clouds[..., 1], clouds[..., 2]
        pt = e / np.cosh(eta)
        p = [(pt * np.cos(phi)).sum(axis=1), (pt * np.sin(phi)).sum(axis=1), (pt * np.sinh(eta)).sum(axis=1)]
        energy = e.sum(axis=1)
        mass2 = energy ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2
        girth = np.divide((e * np.hypot(eta, phi)).sum(axis=1), energy, out=np.zeros_like(energy), where=energy > 0)
        return {"et_sum": pt.sum(axis=1), "n_hits": np.asarray(events, dtype=np.float64)[:, 1],
                "e_max": e.max(axis=1), "jet_mass": np.sqrt(np.maximum(mass2, 0.0)), "girth": girth}

    def detector_view(self, events: np.ndarray) -> DetectorView:
        """The events as clouds ``(n, N, 3)`` of hits (η, φ, E)."""
        return DetectorView("cloud", self.clouds(events))


@hookimpl
def bayesgen_processes():
    return {"ecal_cloud": EcalCloud}
