"""A fidelity criterion that can fail: an observable's metrics within stated multiples of their
truth-vs-truth floors (:mod:`bayesgen.validation.floors`), and the distortions of the truth it
must reject.

A threshold is only meaningful beside what it lets through: calibrate ``w1_limit`` and
``dev_limit`` so that a model of the intended quality passes while the truth itself distorted by
:func:`scaled` (e.g. a 1 % mass-scale shift) or :func:`widened` (a 20 % wider distribution)
fails, at the same numbers of events.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Criterion", "scaled", "widened"]


@dataclass(frozen=True)
class Criterion:
    """``W1 ≤ w1_limit × W1_floor`` and ``max bulk deviation ≤ dev_limit × its floor``."""

    w1_limit: float
    dev_limit: float

    def failures(self, metrics: Mapping[str, float]) -> list[str]:
        """What breaks the criterion for one observable's metrics (with floors, see
        :func:`~bayesgen.validation.floors.with_floors`); empty when it holds."""
        limits = {"w1": self.w1_limit, "max_rel_dev_bulk": self.dev_limit}
        return [f"{metric} = {metrics[metric]:.4g} is {metrics[f'{metric}_over_floor']:.2f} × its floor "
                f"{metrics[f'{metric}_floor']:.4g} (limit {limit:g} ×)"
                for metric, limit in limits.items() if not metrics[f"{metric}_over_floor"] <= limit]

    def holds(self, metrics: Mapping[str, float]) -> bool:
        return not self.failures(metrics)


def scaled(values: np.ndarray, factor: float) -> np.ndarray:
    """``factor × values``: for a mass, a shift of the scale by ``factor − 1`` (1.01: +1 %)."""
    return factor * np.asarray(values, dtype=float)


def widened(values: np.ndarray, factor: float) -> np.ndarray:
    """``median + factor (values − median)``: the distribution ``factor`` times wider about its
    median (1.2: 20 % wider; for a resonance, its natural width and resolution alike)."""
    values = np.asarray(values, dtype=float)
    median = np.median(values)
    return median + factor * (values - median)
