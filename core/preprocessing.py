"""Invertible preprocessing: a process's raw features, then per-feature standardisation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.core.errors import DataError
from bayesgen.core.process import Process


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
    def fit(cls, features: np.ndarray, weights: np.ndarray | None = None) -> "Standardizer":
        """Per-feature (weighted) mean and standard deviation of ``features``."""
        mean = np.average(features, axis=0, weights=weights)
        std = np.sqrt(np.average((features - mean) ** 2, axis=0, weights=weights))
        return cls(mean, np.where(std > 0, std, 1.0))

    def forward(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std

    def inverse(self, standardized: np.ndarray) -> np.ndarray:
        return standardized * self.std + self.mean


class Preprocessor:
    """Event array ``(n, n_quantities)`` ↔ standardised float32 features ``(n, n_features)``."""

    def __init__(self, process: Process, standardizer: Standardizer):
        self.process = process
        self.standardizer = standardizer

    @classmethod
    def fit(cls, process: Process, events: np.ndarray, weights: np.ndarray | None = None) -> "Preprocessor":
        check_finite(np.asarray(events, dtype=np.float64), process.quantities, "training events")
        raw = process.to_features(events)
        check_finite(raw, process.feature_names, "preprocessed training features")
        return cls(process, Standardizer.fit(raw, weights))

    def forward(self, events: np.ndarray) -> np.ndarray:
        return self.standardizer.forward(self.process.to_features(events)).astype(np.float32)

    def inverse(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raw = self.standardizer.inverse(np.asarray(features, dtype=np.float64))
        return self.process.from_features(raw, rng)

    def state_dict(self) -> dict[str, list[float]]:
        return {"mean": self.standardizer.mean.tolist(), "std": self.standardizer.std.tolist()}

    @classmethod
    def from_state_dict(cls, process: Process, state: dict) -> "Preprocessor":
        return cls(process, Standardizer(np.asarray(state["mean"]), np.asarray(state["std"])))
