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
and :meth:`from_features` ignores them. A point cloud with padding declares
``mask_conditions = N``: its first N condition columns are the point mask (1 a real point, 0
padding), which core hands to a backbone as ``mask_features`` (see :mod:`bayesgen.core.backbone`).

What core relies on, beyond the docstrings of the methods below: every method is a function of
its arguments (``rng`` and ``seed`` are the only randomness); every array has the shape its
docstring names, with as many rows as events; :meth:`sample` returns events in the support;
:meth:`from_features` takes ``(features, rng, conditions=None)`` whether the process is
conditional or not (core always passes the conditions, ``None`` without any). Validation reads
only :meth:`observables`, :attr:`binnings`, :meth:`detector_view` and :meth:`event_metrics`.
:func:`check_process` checks these rules; every registered process meets them in
``tests/test_process_contract.py``.
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bayesgen.core.errors import ContractError


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


@dataclass(frozen=True)
class DetectorView:
    """Events as a detector records them, for validation's whole-event metrics and example
    pictures.

    ``kind = "cloud"``: ``arrays (n, N, 3)`` of hits (η, φ, E), η and φ relative to the jet axis
    in radians, E in GeV, padding hits with E = 0. ``kind = "image"``: ``arrays (n, C, H, W)`` of
    pixel energies in GeV, one channel per sub-detector named in ``channels``; pixels below
    ``empty_below`` GeV count as empty.
    """

    kind: str
    arrays: np.ndarray
    channels: tuple[str, ...] = ()
    empty_below: float = 0.0

    KINDS = ("cloud", "image")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"DetectorView kind must be one of {', '.join(self.KINDS)}, got {self.kind!r}")


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
    #: how many leading condition columns are a point mask (1 real, 0 padding); 0 for none
    mask_conditions: int = 0
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
    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """Raw feature array → event array; ``rng`` restores symmetries removed by
        :meth:`to_features` (e.g. a global φ rotation); ``conditions (n, len(condition_names))``
        are the events' conditions, ``None`` for a process without any."""

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

    def detector_view(self, events: np.ndarray) -> DetectorView | None:
        """The events as point clouds or images, from which validation measures whole events
        (the EMD between clouds, mean images) and draws example events; ``None`` (the default)
        for events that are neither."""
        return None

    def event_metrics(self, truth_events: np.ndarray, generated_events: np.ndarray, seed: int) -> dict:
        """Metrics of the plugin's own over whole events, beyond those validation computes from
        the observables and the :meth:`detector_view`; json-serialisable, none by default."""
        return {}

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
    accepted events of ``batch`` generated ones; batches (at most ``max_batch``) are sized from the
    acceptance of the last one, to give the missing m events unless their count falls 3√m short."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    chunks, have, efficiency = [], 0, initial_efficiency
    while have < n:
        missing = n - have
        batch = int(min(max_batch, max(1000, (missing + 3.0 * np.sqrt(missing)) / efficiency)))
        events = draw(batch, rng)
        efficiency = max(0.05, len(events) / batch)
        chunks.append(events)
        have += len(events)
    out = np.concatenate(chunks, axis=0)[:n] if chunks else np.empty((0, n_columns))
    return np.ascontiguousarray(out, dtype=np.float64)


def _names(value) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, str) and v for v in value) \
        and len(set(value)) == len(value)


def _shaped(array, shape: tuple[int, ...]) -> bool:
    return isinstance(array, np.ndarray) and array.shape == shape


def check_process(process: Process, label: str, events: np.ndarray | None = None) -> None:
    """Raise :class:`ContractError` naming ``label`` and the rule when ``process`` breaks the
    contract of the module docstring: its declarations (names, binnings, shapes, the point mask,
    the signature of :meth:`~Process.from_features`) and, given its own ``events (n,
    len(quantities))``, what every method returns for them."""
    def rule(text: str) -> ContractError:
        return ContractError(f"{label} breaks the process contract: {text}")

    if not isinstance(process, Process):
        raise rule(f"the factory must return a bayesgen.core.process.Process, got {type(process).__name__}")
    for attribute in ("quantities", "feature_names"):
        if not _names(getattr(process, attribute, None)) or not getattr(process, attribute):
            raise rule(f"{attribute} must be a non-empty tuple of distinct names")
    if not _names(process.condition_names):
        raise rule("condition_names must be a tuple of distinct names")
    if not isinstance(getattr(process, "binnings", None), dict) or not all(
            isinstance(k, str) and isinstance(b, Binning) for k, b in process.binnings.items()):
        raise rule("binnings must map observable names to Binning")
    shape = process.feature_shape
    if shape is not None and (not all(isinstance(s, int) and s > 0 for s in shape)
                              or int(np.prod(shape)) != process.n_features):
        raise rule(f"feature_shape {shape} must hold the {process.n_features} features (product of positive sizes)")
    if shape is not None and not -len(shape) <= process.channel_axis < len(shape):
        raise rule(f"channel_axis {process.channel_axis} is no axis of feature_shape {shape}")
    mask = process.mask_conditions
    if not isinstance(mask, int) or not 0 <= mask <= process.n_conditions:
        raise rule(f"mask_conditions must be an integer in [0, {process.n_conditions}] (the condition columns), "
                   f"got {mask!r}")
    if mask and (shape is None or len(shape) != 2 or shape[0] != mask):
        raise rule(f"a point mask of {mask} conditions needs feature_shape (N={mask}, C), got {shape}")
    if not isinstance(process.training_defaults, dict):
        raise rule("training_defaults must be a dict")
    try:
        inspect.signature(process.from_features).bind(None, None, None)
    except TypeError:
        raise rule("from_features must take (features, rng, conditions=None)") from None
    if events is not None:
        _check_events(process, events, rule)


def _check_events(process: Process, events: np.ndarray, rule: Callable[[str], ContractError]) -> None:
    """The rules on what the methods return for the process's own events."""
    n = len(events)
    if not _shaped(events, (n, len(process.quantities))) or not np.isfinite(events).all():
        raise rule(f"events must be finite arrays (n, {len(process.quantities)}), got {np.shape(events)}")
    support = process.support(events)
    if not _shaped(support, (n,)) or support.dtype != bool:
        raise rule(f"support must return bool ({n},)")
    if not support.all():
        raise rule(f"its own events must lie in its support; {int((~support).sum())} of {n} do not")
    features, conditions = process.to_features(events), process.conditions(events)
    if not _shaped(features, (n, process.n_features)):
        raise rule(f"to_features must return ({n}, {process.n_features}), got {np.shape(features)}")
    if not _shaped(conditions, (n, process.n_conditions)):
        raise rule(f"conditions must return ({n}, {process.n_conditions}), got {np.shape(conditions)}")
    present = process.feature_mask(conditions)
    if present is not None and (not _shaped(present, features.shape) or present.dtype != bool):
        raise rule(f"feature_mask must return None or bool {features.shape}")
    if not np.isfinite(features if present is None else np.where(present, features, 0.0)).all():
        raise rule("to_features must give finite values for every present feature")
    if process.mask_conditions and not np.isin(conditions[:, :process.mask_conditions], (0.0, 1.0)).all():
        raise rule("the point-mask conditions must be 0 or 1")
    back = process.from_features(features, np.random.default_rng(0), conditions if process.n_conditions else None)
    if not _shaped(back, events.shape):
        raise rule(f"from_features must return {events.shape}, got {np.shape(back)}")
    observables = process.observables(events)
    if set(observables) != set(process.binnings):
        raise rule(f"observables must have the keys of binnings: {sorted(set(observables) ^ set(process.binnings))} "
                   "differ")
    for name, values in observables.items():
        if not _shaped(np.asarray(values), (n,)):
            raise rule(f"observable {name!r} must have shape ({n},), got {np.shape(values)}")
    view = process.detector_view(events)
    if view is not None:
        _check_view(view, n, rule)


def _check_view(view: DetectorView, n: int, rule: Callable[[str], ContractError]) -> None:
    if not isinstance(view, DetectorView):
        raise rule(f"detector_view must return a DetectorView or None, got {type(view).__name__}")
    dims = {"cloud": 3, "image": 4}[view.kind]
    if not isinstance(view.arrays, np.ndarray) or view.arrays.ndim != dims or len(view.arrays) != n:
        raise rule(f"a {view.kind} view holds ({n}, …) arrays of {dims} dimensions, got {np.shape(view.arrays)}")
    if view.kind == "cloud" and view.arrays.shape[2] != 3:
        raise rule(f"cloud hits are (η, φ, E): the last axis must be 3, got {view.arrays.shape[2]}")
    if view.kind == "image" and len(view.channels) != view.arrays.shape[1]:
        raise rule(f"an image view names its {view.arrays.shape[1]} channels, got {view.channels}")
