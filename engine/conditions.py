"""The distribution of a conditional process's network conditions, learnt from training data.

Generation draws each event's condition from the (weighted) frequencies of the distinct
condition rows seen in training, e.g. the fractions of 1-, 2- and 3-jet events, so generated
fractions match the training sample up to its statistical precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.core.errors import DataError

MAX_CATEGORIES = 1000  #: more distinct condition rows than this means the condition is not discrete


@dataclass
class ConditionDistribution:
    """Distinct condition rows ``values (k, n_conditions)`` and their probabilities ``(k,)``."""

    values: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def fit(cls, conditions: np.ndarray, weights: np.ndarray | None = None,
            names: tuple[str, ...] = ()) -> "ConditionDistribution":
        """Frequencies of the distinct rows of ``conditions (n, n_conditions)``, weighted."""
        values, inverse = np.unique(np.asarray(conditions, dtype=np.float64), axis=0, return_inverse=True)
        if len(values) > MAX_CATEGORIES:
            raise DataError(f"the condition ({', '.join(names)}) takes {len(values):,} distinct values in the "
                            f"training events; conditions must be discrete (at most {MAX_CATEGORIES})")
        totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(values))
        if np.any(totals <= 0):
            bad = values[np.flatnonzero(totals <= 0)[0]]
            raise DataError(f"the condition value {bad.tolist()} has a non-positive summed event weight")
        return cls(values, totals / totals.sum())

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` condition rows ``(n, n_conditions)`` drawn from the stored frequencies."""
        return self.values[rng.choice(len(self.values), size=n, p=self.probabilities)]

    def state_dict(self) -> dict[str, list]:
        return {"values": self.values.tolist(), "probabilities": self.probabilities.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "ConditionDistribution":
        return cls(np.asarray(state["values"], dtype=np.float64), np.asarray(state["probabilities"]))
