"""The interface every process plugin implements.

An *event array* is a float array of shape ``(n_events, len(quantities))`` holding physical
quantities in GeV and radians (φ wrapped to (-π, π]); its columns become the branches of
generated ROOT files. A *raw feature array* ``(n_events, n_features)`` is what the network sees
before standardisation, which core applies on top (see :mod:`bayesgen.engine.preprocessing`).

A *detector-level* process (point clouds, images) declares ``feature_shape``, e.g. ``(300, 3)``
points × (η, φ, E) or ``(3, 32, 32)`` channels × pixels, and the ``channel_axis`` of it; its
features still travel flat, ``(n, prod(feature_shape))`` in C order, and core standardises them
per channel (pooled over the other axes), so a permutation of points or a shift of pixels does
not change the scaling. Backbones receive ``feature_shape`` to unflatten them.

A *conditional* process (e.g. Z + jets, conditioned on the jet multiplicity) also names
``condition_names``: :meth:`Process.conditions` gives the network's condition per event, which
must take few distinct values (categories, one-hot or integer); core stores their frequencies in
the training data and draws generation conditions from them. Such a process may have features
that are absent for some conditions (the third jet of a two-jet event): :meth:`feature_mask`
says which are present, core fills the absent ones with narrow Gaussian noise for the network
and :meth:`from_features` ignores them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Binning:
    """Regular binning of one observable: ``bins`` bins from ``low`` to ``high``."""

    low: float
    high: float
    bins: int
    label: str = ""

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.bins + 1)


class Process(ABC):
    """A physics process: where its events come from and how the network sees them.

    Subclasses set ``name``, ``description`` (one line), ``quantities`` (event-array column
    names), ``feature_names`` and ``binnings`` (observable name → :class:`Binning`).
    """

    name: str
    description: str
    quantities: tuple[str, ...]
    feature_names: tuple[str, ...]
    binnings: dict[str, Binning]
    condition_names: tuple[str, ...] = ()
    feature_shape: tuple[int, ...] | None = None
    channel_axis: int = -1
    #: Centre-of-mass energy √s of the collisions, in GeV (13000.0 for the embedded 13 TeV
    #: processes); ``None`` where the events come without one (a file that does not say).
    #: Validation plots state it.
    sqrt_s: float | None = None
    #: Training options that suit this process, over :class:`~bayesgen.engine.config.TrainConfig`'s
    #: defaults and under the user's TOML and flags: any of its options, with ``backbone_options``
    #: and ``sampler_options`` keyed by plugin name (used with that plugin), e.g.
    #: ``{"backbone": "transformer", "steps": 2000, "backbone_options": {"transformer": {"width": 64}}}``.
    training_defaults: dict = {}

    @abstractmethod
    def sample(self, n: int, seed: int) -> np.ndarray:
        """Draw ``n`` events ``(n, len(quantities))``, reproducibly for a given ``seed``."""

    def sample_with_weights(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``(events, weights (n,))``; embedded Monte Carlo events all weigh 1, file-based
        processes return the generator's event weights."""
        events = self.sample(n, seed)
        return events, np.ones(len(events))

    def sample_available(self, n: int, seed: int) -> np.ndarray:
        """At most ``n`` events ``(≤ n, len(quantities))``: ``n`` from a Monte Carlo, all there
        are from a finite source (a file's part) that holds fewer. Validation draws its default
        truth with it; :meth:`sample` by default."""
        return self.sample(n, seed)

    @abstractmethod
    def to_features(self, events: np.ndarray) -> np.ndarray:
        """Event array → raw feature array ``(n, len(feature_names))``."""

    @abstractmethod
    def from_features(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Raw feature array → event array; ``rng`` restores symmetries removed by
        :meth:`to_features` (e.g. a global φ rotation). A conditional process takes a third
        argument, the conditions ``(n, len(condition_names))`` of the events."""

    def conditions(self, events: np.ndarray) -> np.ndarray:
        """Event array → network condition ``(n, len(condition_names))``; empty by default."""
        return np.empty((len(events), 0))

    def feature_mask(self, conditions: np.ndarray) -> np.ndarray | None:
        """Which features are present ``(n, n_features)`` bool for these conditions; ``None``
        when every feature always is."""
        return None

    @abstractmethod
    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Event array → observable name → values ``(n,)``; keys match :attr:`binnings`."""

    def event_metrics(self, truth_events: np.ndarray, generated_events: np.ndarray, seed: int) -> dict:
        """Metrics over whole events beyond the 1D observables (e.g. the EMD between point
        clouds), json-serialisable; none by default."""
        return {}

    def plot_examples(self, truth_events: np.ndarray, generated_events: np.ndarray, out_dir: Path) -> None:
        """Write pictures of example events into ``out_dir`` (truth above generated); none by default."""

    def portable_options(self, options: dict) -> dict:
        """The ``options`` this process was built with, as a run stores them to rebuild it
        anywhere later: files it reads its setup from inlined, input paths absolute, inputs'
        checksums added so that a changed input is noticed. The options themselves by default."""
        return dict(options)

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """Which events ``(n, len(quantities))`` lie in the process's support: bool ``(n,)``.

        An event is in it when a collision could have produced it (finite values, pT and masses
        ≥ 0, φ in (-π, π], energies within the beam's; see :func:`physical_objects`) and, with
        ``selection``, when it also passes the selection the process's own events pass
        (acceptance cuts, pT ordering, a point cloud's grid), so every event :meth:`sample`
        returns is in it. ``generate`` never writes an event outside it silently: it draws it
        again, or flags it. A file-based process shaped like this one asks with
        ``selection=False``, since its file was selected by other cuts. By default: every
        quantity finite."""
        return np.isfinite(np.asarray(events, dtype=np.float64)).all(axis=1)

    def holdout(self) -> "Process":
        """Where validation draws its truth: events never used in training. Monte Carlo with a
        fresh seed is independent already, so by default the process itself; a file-based
        process returns its held-out entries."""
        return self

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_conditions(self) -> int:
        return len(self.condition_names)


def physical_objects(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray | float,
                     sqrt_s: float) -> np.ndarray:
    """Events ``(n,)`` whose objects ``(n, k)`` (pT, η, φ, mass; GeV, radians) a collision at
    √s could produce: every value finite, pT ≥ 0, mass ≥ 0 (≥ −10⁻⁴ E: a massless parton's
    mass computed from its four-momentum rounds either way), φ in (-π, π], each energy
    E = √(pT² cosh²η + m²) at most the beam energy √s/2 and their sum at most √s. An absent
    object given as all zeros passes (E = 0)."""
    pt, eta, phi = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi))
    mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), pt.shape)
    with np.errstate(all="ignore"):
        energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass ** 2)
        ok = (pt >= 0) & (mass >= -1e-4 * energy) & (phi > -np.pi) & (phi <= np.pi) & (energy <= sqrt_s / 2)
        return ok.all(axis=1) & (energy.sum(axis=1) <= sqrt_s)


def sample_accepted(n: int, seed: int, draw: Callable[[int, np.random.Generator], np.ndarray], n_columns: int,
                    initial_efficiency: float = 0.4, max_batch: int = 1_000_000) -> np.ndarray:
    """Exactly ``n`` events ``(n, n_columns)`` float64 from ``draw(batch, rng)``, which returns the
    accepted events of ``batch`` generated ones; batches are sized from the observed acceptance."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    chunks, have, efficiency = [], 0, initial_efficiency
    while have < n:
        batch = int(min(max_batch, max(1000, 1.1 * (n - have) / efficiency)))
        events = draw(batch, rng)
        efficiency = max(0.05, len(events) / batch)
        chunks.append(events)
        have += len(events)
    out = np.concatenate(chunks, axis=0)[:n] if chunks else np.empty((0, n_columns))
    return np.ascontiguousarray(out, dtype=np.float64)
