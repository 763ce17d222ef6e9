"""Invertible preprocessing: a process's raw features, then per-feature standardisation.

Features a conditional process marks absent (see :meth:`Process.feature_mask`) are left out of
the standardisation's moments and handed to the network as narrow Gaussian noise, N(0, σ²) with
σ = ABSENT_NOISE_STD in standardised units: nearly constant, so denoising and velocity targets
there are almost fully predictable (with a standard-normal fill they are pure noise, an
irreducible loss of one per slot), yet a proper density, so likelihood-based samplers stay
finite.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.core.errors import DataError, RunError
from bayesgen.core.process import Process

ABSENT_NOISE_STD = 0.1  #: width of the noise in absent feature slots, in standardised units


def check_finite(array: np.ndarray, names: tuple[str, ...], what: str) -> None:
    """Raise :class:`DataError` naming the first non-finite column and row of ``array``."""
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataError(
            f"non-finite value in {what}: {names[column]!r} is {array[row, column]} at row {row} "
            f"({int(bad.any(axis=1).sum())} bad rows in all)"
        )


@dataclass
class Standardizer:
    """``z = (x − mean) / std`` per feature; arrays ``(n_features,)``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, weights: np.ndarray | None = None,
            mask: np.ndarray | None = None, channels: np.ndarray | None = None) -> "Standardizer":
        """Per-feature (weighted) mean and standard deviation of ``features``, over the entries
        where ``mask (n, n_features)`` is true when given; with ``channels (n_features,)`` (a
        channel index per feature) the moments are pooled over the features of each channel."""
        w = np.ones(len(features)) if weights is None else np.asarray(weights, dtype=np.float64)
        w = np.broadcast_to(w[:, None], features.shape)
        if mask is not None:
            w = np.where(mask, w, 0.0)
        if channels is None:
            channels = np.arange(features.shape[1])
        n_channels = int(channels.max()) + 1 if channels.size else 0

        def per_channel(values: np.ndarray) -> np.ndarray:
            return np.bincount(channels, weights=values.sum(axis=0), minlength=n_channels)

        total = per_channel(w)
        present = total != 0
        safe = np.where(present, total, 1.0)
        mean = np.where(present, per_channel(w * features) / safe, 0.0)
        variance = np.where(present, per_channel(w * (features - mean[channels]) ** 2) / safe, 1.0)
        std = np.sqrt(np.maximum(variance, 0.0))
        return cls(mean[channels], np.where(std > 0, std, 1.0)[channels])

    def forward(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std

    def inverse(self, standardized: np.ndarray) -> np.ndarray:
        return standardized * self.std + self.mean


def feature_channels(process: Process) -> np.ndarray | None:
    """The channel of each flat feature ``(n_features,)`` of a process with a ``feature_shape``."""
    if process.feature_shape is None:
        return None
    shape = tuple(process.feature_shape)
    if int(np.prod(shape)) != process.n_features:
        raise ValueError(f"{process.name}: feature_shape {shape} does not hold its {process.n_features} features")
    return np.indices(shape)[process.channel_axis].ravel()


def feature_range(features: np.ndarray, channels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(low, high)`` ``(n_features,)`` of ``features (n, n_features)``; with
    ``channels`` (a channel index per feature) pooled over each channel's features, like the
    standardisation, so every pixel or point of a channel gets the same range."""
    low, high = features.min(axis=0), features.max(axis=0)
    if channels is None:
        return low, high
    pooled_low = np.full(int(channels.max()) + 1, np.inf)
    pooled_high = np.full_like(pooled_low, -np.inf)
    np.minimum.at(pooled_low, channels, low)
    np.maximum.at(pooled_high, channels, high)
    return pooled_low[channels], pooled_high[channels]


class Preprocessor:
    """Event array ``(n, n_quantities)`` ↔ standardised float32 features ``(n, n_features)``."""

    def __init__(self, process: Process, standardizer: Standardizer):
        self.process = process
        self.standardizer = standardizer

    @classmethod
    def fit(cls, process: Process, events: np.ndarray, weights: np.ndarray | None = None) -> "Preprocessor":
        check_finite(np.asarray(events, dtype=np.float64), process.quantities, "training events")
        raw = process.to_features(events)
        mask = process.feature_mask(process.conditions(events))
        check_finite(raw if mask is None else np.where(mask, raw, 0.0), process.feature_names,
                     "preprocessed training features")
        return cls(process, Standardizer.fit(raw, weights, mask, feature_channels(process)))

    def forward(self, events: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Standardised float32 features ``(n, n_features)``; absent features are drawn from
        N(0, ABSENT_NOISE_STD²) with ``rng`` (required for a process with a feature mask)."""
        standardized = self.standardizer.forward(self.process.to_features(events))
        mask = self.process.feature_mask(self.process.conditions(events))
        if mask is not None:
            if rng is None:
                raise ValueError(f"{self.process.name} has absent features: pass rng to fill them")
            standardized = np.where(mask, standardized, ABSENT_NOISE_STD * rng.standard_normal(standardized.shape))
        return standardized.astype(np.float32)

    def inverse(self, features: np.ndarray, rng: np.random.Generator,
                conditions: np.ndarray | None = None) -> np.ndarray:
        """Event array of standardised ``features``; a conditional process needs their
        ``conditions (n, n_conditions)``."""
        raw = self.standardizer.inverse(np.asarray(features, dtype=np.float64))
        if self.process.n_conditions and conditions is None:
            raise ValueError(f"{self.process.name} is conditional: pass the events' conditions")
        return self.process.from_features(raw, rng, conditions)

    def state_dict(self) -> dict[str, list]:
        return {"mean": self.standardizer.mean.tolist(), "std": self.standardizer.std.tolist(),
                "feature_names": list(self.process.feature_names)}

    @classmethod
    def from_state_dict(cls, process: Process, state: dict) -> "Preprocessor":
        """The stored preprocessing of ``process``; :class:`RunError` when the process now maps
        events to other features than it was trained on (older states name none)."""
        stored = tuple(state.get("feature_names", process.feature_names))
        if stored != tuple(process.feature_names):
            raise RunError(f"the run was trained on the {process.name} features {', '.join(stored)}, but the "
                           f"process now gives {', '.join(process.feature_names)}: its feature map changed "
                           "(set the process option it was trained with, e.g. features)")
        return cls(process, Standardizer(np.asarray(state["mean"]), np.asarray(state["std"])))
