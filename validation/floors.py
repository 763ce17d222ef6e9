"""Statistical floors: every metric beside its value between two independent truth samples.

A W1 of 0.05 GeV means something on 10⁶ events and nothing on 10⁴. The *floor* of a metric is
the value it takes when the "generated" sample is truth itself, at the validated sizes:

    floor = mean_r metric(A_r, B_r),   floor_std = std_r (ddof = 1),   r = 1 … repeats,

with ``A_r`` (``n_truth`` events) and ``B_r`` (``n_generated`` events) independent draws from the
process's held-out truth (:meth:`~bayesgen.core.process.Process.holdout`). The ratio
``metric / floor`` is ≈ 1 for a generator that truth cannot tell apart at these sizes.

When the held-out data is too small for ``repeats`` fresh pairs (a file), the pairs split what
there is (the validation truth itself if need be) into two parts of sizes ``a : b = n_truth :
n_generated``, neither below ``MIN_VALUES`` where there are twice as many events (300 held-out
events validated against 3,000 generated split 100 + 200, not 27 + 273, which would give no
floor), and the floors are scaled to the validated sizes by their statistical scaling
(:func:`size_scale`); :attr:`Floors.source` says so, and the repeats of such a split share
events, so their spread understates the floor's.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesgen.core.errors import DataError
from bayesgen.core.process import Binning, Process
from bayesgen.core.seeding import derive_seed
from bayesgen.validation.histogram import Histogram
from bayesgen.validation.metrics import observable_metrics

__all__ = ["FLOOR_REPEATS", "FLOORED_METRICS", "Floors", "measure_floors", "size_scale", "with_floors",
           "ratio_floor"]

FLOOR_REPEATS = 3                  #: independent truth-vs-truth pairs behind each floor
FLOORED_METRICS = ("w1", "max_rel_dev_bulk", "chi2_ndf")
MIN_VALUES = 100                   #: fewer defined values than this in a part: no floor for the observable

Observe = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def size_scale(metric: str, measured: tuple[int, int], target: tuple[int, int]) -> float:
    """Factor taking a truth-vs-truth ``metric`` measured on samples of sizes ``measured`` to
    samples of sizes ``target``, from how its statistical fluctuations scale:

    * ``w1``: :func:`~bayesgen.validation.metrics.wasserstein_1d` compares batches of
      ``min(n_a, n_b)/5`` events, and the empirical W1 of two equal samples of m falls as
      1/√m (∫|F_a − F_b| with F_a − F_b a Brownian bridge of size √(2/m)): √(min_meas/min_target);
    * ``max_rel_dev_bulk``: each bin's relative deviation has σ² = (1/n_a + 1/n_b)/p:
      √((1/n_t + 1/n_g)/(1/n_a + 1/n_b));
    * ``chi2_ndf``: 1 (normalised by the errors, it does not depend on the sizes).
    """
    if metric == "w1":
        return math.sqrt(min(measured) / min(target))
    if metric == "max_rel_dev_bulk":
        return math.sqrt((1 / target[0] + 1 / target[1]) / (1 / measured[0] + 1 / measured[1]))
    if metric == "chi2_ndf":
        return 1.0
    raise ValueError(f"no size scaling for metric {metric!r}")


@dataclass
class Floors:
    """The floors of every observable at the validated sizes.

    Attributes:
        n_truth, n_generated: the validated sizes the floors stand for (events).
        repeats: truth-vs-truth pairs measured.
        source: where the pairs came from, in words (fresh held-out draws, or a split).
        observables: name → ``{"w1_floor", "w1_floor_std", "max_rel_dev_bulk_floor", …}``.
    """

    n_truth: int
    n_generated: int
    repeats: int
    source: str
    observables: dict[str, dict[str, float]]

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the floors themselves."""
        return {"n_truth": self.n_truth, "n_generated": self.n_generated, "repeats": self.repeats,
                "source": self.source}


def _pairs_from_pool(pool: np.ndarray, sizes: tuple[int, int], repeats: int, rng: np.random.Generator,
                     disjoint: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` pairs ``(A, B)`` of parts of ``pool`` of ``sizes``, in random order: with
    ``disjoint``, consecutive slices of one permutation (no event used twice); otherwise each
    pair a fresh random split."""
    a, b = sizes
    order = rng.permutation(len(pool))
    pairs = []
    for r in range(repeats):
        if not disjoint and r:
            order = rng.permutation(len(pool))
        start = r * (a + b) if disjoint else 0
        pairs.append((pool[order[start:start + a]], pool[order[start + a:start + a + b]]))
    return pairs


def measure_floors(process: Process, observe: Observe, binnings: Mapping[str, Binning], n_truth: int,
                   n_generated: int, seed: int, truth_events: np.ndarray,
                   repeats: int = FLOOR_REPEATS) -> Floors:
    """The floors of ``binnings``' observables for ``n_truth`` truth and ``n_generated``
    generated events. ``observe`` maps events to their finite observables (NaN where undefined);
    ``truth_events`` (the validation truth) is split when the held-out data holds no fresh pairs."""
    target = (n_truth, n_generated)
    needed = repeats * (n_truth + n_generated)
    rng = np.random.default_rng(derive_seed(seed, "floor-split"))
    try:
        pool = process.holdout().sample_available(needed, seed=derive_seed(seed, "floor"))
        shortfall = "" if len(pool) >= needed else f"the held-out data gave {len(pool):,} of {needed:,} events"
    except DataError as error:  # a file with too few held-out events
        pool, shortfall = truth_events, str(error)
    if not shortfall:
        pairs, measured = _pairs_from_pool(pool, target, repeats, rng, disjoint=True), target
        source = f"{repeats} independent pairs of held-out truth samples of the validated sizes"
    else:
        smallest = max(1, min(MIN_VALUES, len(pool) // 2))  # a part below MIN_VALUES gives no floor
        a = max(smallest, min(len(pool) - smallest, round(len(pool) * n_truth / (n_truth + n_generated))))
        measured = (a, len(pool) - a)
        pairs = _pairs_from_pool(pool, measured, repeats, rng, disjoint=False)
        source = (f"not enough held-out truth for {repeats} fresh pairs ({shortfall}); {repeats} random "
                  f"splits of {len(pool):,} truth events into {measured[0]:,} + {measured[1]:,}, scaled to "
                  "the validated sizes (the splits share events: their spread understates the floor's)")
    observed = [(observe(a), observe(b)) for a, b in pairs]
    per_observable = {}
    for name, binning in binnings.items():
        values = [(a[name][~np.isnan(a[name])], b[name][~np.isnan(b[name])]) for a, b in observed]
        if min(min(len(a), len(b)) for a, b in values) < MIN_VALUES:
            continue
        measured_metrics = [observable_metrics(a, b, binning.edges) for a, b in values]
        floors = {}
        for metric in FLOORED_METRICS:
            samples = np.array([m[metric] for m in measured_metrics]) * size_scale(metric, measured, target)
            floors[f"{metric}_floor"] = float(samples.mean())
            floors[f"{metric}_floor_std"] = float(samples.std(ddof=1)) if repeats > 1 else float("nan")
        per_observable[name] = floors
    return Floors(n_truth, n_generated, repeats, source, per_observable)


def with_floors(metrics: dict[str, float], floors: Mapping[str, float] | None) -> dict[str, float]:
    """``metrics`` with each floored metric's floor, its spread and ``{metric}_over_floor``."""
    if not floors:
        return metrics
    out = {**metrics, **floors}
    for metric in FLOORED_METRICS:
        floor = floors[f"{metric}_floor"]
        out[f"{metric}_over_floor"] = float(metrics[metric] / floor) if floor > 0 else float("nan")
    return out


def ratio_floor(truth: Histogram, n_generated: int) -> np.ndarray:
    """Per bin, the relative 1σ spread of ``generated / truth`` when the generated sample is
    ``n_generated`` more truth events: ``√(sumw2/counts² + 1/(f·n_generated))``, ``f`` the
    truth's fraction of events in the bin; NaN in empty truth bins."""
    counts = truth.counts
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.sqrt(truth.sumw2 / counts**2 + 1.0 / (truth.fraction * n_generated))
    return np.where(counts > 0, relative, np.nan)
