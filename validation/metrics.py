"""Per-observable agreement metrics between a truth sample and a generated sample.

Conventions follow JetNet (DESIGN.md, "Metric conventions"): the 1D Wasserstein distance is
computed on several disjoint batches and reported as mean ± std.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import ot

from bayesgen.core.errors import DataError
from bayesgen.validation.histogram import BandHistogram, Histogram

__all__ = ["wasserstein_1d", "max_rel_dev_bulk", "chi2_ndf", "observable_metrics", "band_metrics",
           "coverage_over_truths", "ONE_SIGMA", "calibrated_coverage_probability"]

#: the probability that a Gaussian ±1σ interval holds the true value, erf(1/√2)
ONE_SIGMA = math.erf(1 / math.sqrt(2))


def _finite_1d(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1D array, got shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name} contain {int(bad.sum())} non-finite value(s) out of {values.size}; first at index {first}"
        )
    return values


def _check_same_edges(truth: Histogram, generated: Histogram) -> None:
    if truth.edges.shape != generated.edges.shape or not np.allclose(truth.edges, generated.edges):
        raise ValueError("truth and generated histograms have different edges")


def wasserstein_1d(truth, generated, n_batches: int = 5, batch_size: int | None = None,
                   weights=None) -> tuple[float, float]:
    """1D Wasserstein-1 distance between two samples, as (mean, std) over disjoint batches.

    For each batch b the samples' empirical quantile functions are compared,

        W1_b = ∫₀¹ |F_truth⁻¹(q) − F_gen⁻¹(q)| dq      (``ot.wasserstein_1d``, p = 1),

    and the result is ``(mean_b W1_b, std_b W1_b)`` (population std, ``ddof=0``, as JetNet).
    With ``weights`` (one per generated value, non-negative) F_gen is the weighted empirical
    distribution of each batch.

    Batch b uses events ``[b * batch_size, (b + 1) * batch_size)`` of each sample, so the
    batches are contiguous slices: pass samples in random (i.i.d.) order. ``batch_size``
    defaults to ``min(len(truth), len(generated)) // n_batches`` (all events, split evenly);
    JetNet's convention is 5 batches of 10,000 events.

    Raises :class:`ValueError` if a sample has fewer than ``n_batches * batch_size`` events
    (in particular fewer than ``n_batches``), and
    :class:`~bayesgen.core.errors.DataError` for non-finite values.
    """
    truth = _finite_1d("truth values", truth)
    generated = _finite_1d("generated values", generated)
    if int(n_batches) != n_batches or n_batches < 1:
        raise ValueError(f"n_batches must be a positive integer, got {n_batches!r}")
    n_batches = int(n_batches)
    available = min(truth.size, generated.size)
    if available < n_batches:
        raise ValueError(
            f"wasserstein_1d needs at least n_batches={n_batches} events per sample, "
            f"got {truth.size} truth and {generated.size} generated"
        )
    if batch_size is None:
        batch_size = available // n_batches
    elif int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    if n_batches * batch_size > available:
        raise ValueError(
            f"wasserstein_1d with {n_batches} batches of {batch_size} events needs "
            f"{n_batches * batch_size} events per sample, got {truth.size} truth and {generated.size} generated"
        )
    u = truth[: n_batches * batch_size].reshape(n_batches, batch_size).T  # (batch_size, n_batches)
    v = generated[: n_batches * batch_size].reshape(n_batches, batch_size).T
    v_weights = None
    if weights is not None:
        weights = _finite_1d("generated weights", weights)
        if weights.shape != generated.shape or (weights < 0).any():
            raise ValueError("weights must be one non-negative number per generated value")
        v_weights = weights[: n_batches * batch_size].reshape(n_batches, batch_size).T
        v_weights = v_weights / v_weights.sum(axis=0)
    w1 = np.asarray(ot.wasserstein_1d(u, v, v_weights=v_weights, p=1), dtype=float)  # one distance per column
    return float(w1.mean()), float(w1.std())


def max_rel_dev_bulk(truth: Histogram, generated: Histogram, min_fraction: float = 0.01) -> float:
    """Largest relative deviation of the generated from the truth histogram in the bulk:

        max_i |f_gen,i / f_truth,i − 1|   over bins i with f_truth,i ≥ min_fraction,

    where ``f = counts / total`` for each histogram separately (its own total, overflow
    included). Returns NaN if no bin reaches ``min_fraction``.
    """
    _check_same_edges(truth, generated)
    if truth.total <= 0 or generated.total <= 0:
        raise ValueError("max_rel_dev_bulk needs histograms with a positive total weight")
    f_t, f_g = truth.fraction, generated.fraction
    bulk = f_t >= min_fraction
    if not bulk.any():
        return float("nan")
    return float(np.max(np.abs(f_g[bulk] / f_t[bulk] - 1.0)))


def chi2_ndf(truth: Histogram, generated: Histogram) -> float:
    """χ² homogeneity test of two normalised histograms, per bin used:

        χ²/ndf = (1/n) Σ_i (f_gen,i − f_truth,i)² / (σ²_gen,i + σ²_truth,i),

    with ``f = counts / total`` and ``σ² = sumw2 / total²`` (Poisson) for each histogram, the
    sum over the n bins where either histogram is non-empty (σ² > 0). Convention: ``ndf = n``,
    the normalisation constraint is not subtracted, so two samples of the same distribution
    give ≈ (n − 1)/n ≈ 1. Returns NaN if both histograms are empty in range.
    """
    _check_same_edges(truth, generated)
    if truth.total <= 0 or generated.total <= 0:
        raise ValueError("chi2_ndf needs histograms with a positive total weight")
    var = truth.sumw2 / truth.total**2 + generated.sumw2 / generated.total**2
    used = var > 0
    n = int(used.sum())
    if n == 0:
        return float("nan")
    diff = generated.fraction[used] - truth.fraction[used]
    return float(np.sum(diff**2 / var[used]) / n)


def observable_metrics(truth_values, generated_values, edges, weights=None) -> dict[str, float]:
    """All metrics of one observable: ``{"w1", "w1_std", "max_rel_dev_bulk", "chi2_ndf"}``.

    W1 uses the unbinned values (all of them, out-of-range included) with the defaults of
    :func:`wasserstein_1d`; the other two use histograms filled with ``edges``. With ``weights``
    (one per generated value) every metric uses the weighted generated sample (the χ² its
    Σw² errors). Values are plain Python floats (``max_rel_dev_bulk``/``chi2_ndf`` may be NaN,
    see their docs).
    """
    truth_values = _finite_1d("truth values", truth_values)
    generated_values = _finite_1d("generated values", generated_values)
    w1, w1_std = wasserstein_1d(truth_values, generated_values, weights=weights)
    h_t = Histogram.fill(truth_values, edges)
    h_g = Histogram.fill(generated_values, edges, weights)
    return {
        "w1": float(w1),
        "w1_std": float(w1_std),
        "max_rel_dev_bulk": float(max_rel_dev_bulk(h_t, h_g)),
        "chi2_ndf": float(chi2_ndf(h_t, h_g)),
    }


def band_metrics(truth: Histogram, band: BandHistogram, min_fraction: float = 0.01) -> dict[str, float]:
    """Width and calibration of an ensemble band over the n bulk bins (truth fraction ≥
    ``min_fraction``), with the quantities of :class:`BandHistogram`:

    * ``sigma_pred_rel_median`` — median of σ_pred / ρ̄, the model's own uncertainty;
    * ``sigma_sampling_rel_median`` — median of s_sampling / ρ̄, the spread each member's finite
      sample alone gives (removed from σ_pred, reported beside it);
    * ``coverage_1sigma`` — fraction of the bins with
      |ρ̄ − ρ_truth| ≤ √(σ²_pred + σ²_truth + σ²_stat), σ_truth the truth's Poisson error and
      σ_stat the statistical error of the ensemble mean (≈ 0.68 for a calibrated band);
    * ``coverage_1sigma_stat`` — the same fraction with σ_pred = 0, the statistical errors alone:
      the reference that says whether the truth sample resolves the model's errors at all (near
      0.68 as well, the coverage cannot tell a calibrated band from none);
    * ``coverage_bins`` — n, the number of bins those figures use.
    """
    _check_same_edges(truth, band)
    bulk = truth.fraction >= min_fraction
    n = int(bulk.sum())
    if n == 0:
        return {"sigma_pred_rel_median": float("nan"), "sigma_sampling_rel_median": float("nan"),
                "coverage_1sigma": float("nan"), "coverage_1sigma_stat": float("nan"), "coverage_bins": 0}
    mean, sigma_pred = band.mean[bulk], band.sigma_pred[bulk]
    sigma_stat = np.hypot(truth.density_error[bulk], band.stat_error[bulk])
    deviation = np.abs(mean - truth.density[bulk])

    def relative_median(sigma: np.ndarray) -> float:
        """Median of σ/ρ̄ over the bins where the ensemble puts any density (NaN if none)."""
        filled = mean > 0
        return float(np.median(sigma[filled] / mean[filled])) if filled.any() else float("nan")

    return {"sigma_pred_rel_median": relative_median(sigma_pred),
            "sigma_sampling_rel_median": relative_median(band.sampling[bulk]),
            "coverage_1sigma": float(np.mean(deviation <= np.hypot(sigma_pred, sigma_stat))),
            "coverage_1sigma_stat": float(np.mean(deviation <= sigma_stat)), "coverage_bins": n}


def coverage_over_truths(truths: Sequence[Histogram], band: BandHistogram,
                         min_fraction: float = 0.01) -> dict[str, float]:
    """The band's ``coverage_1sigma`` (:func:`band_metrics`) against each of K independent truth
    samples of one size, averaged: the coverage probability measured with toys, where one truth
    sample gives it only to within the binomial spread of its n bins (about ±0.1 for 20 bins).

    * ``coverage_1sigma_truths`` — the mean over the K truth samples;
    * ``coverage_1sigma_truths_error`` — its standard error, the spread over the samples / √K
      (the truths' noise only: the band's own members are the same in every term);
    * ``coverage_1sigma_stat_truths`` — the mean of ``coverage_1sigma_stat``, the reference
      without the band;
    * ``coverage_truths`` — K.
    """
    if len(truths) < 2:
        raise ValueError(f"a coverage over truth samples needs at least two of them, got {len(truths)}")
    metrics = [band_metrics(truth, band, min_fraction) for truth in truths]
    coverages = np.array([m["coverage_1sigma"] for m in metrics])
    return {"coverage_1sigma_truths": float(coverages.mean()),
            "coverage_1sigma_truths_error": float(coverages.std(ddof=1) / math.sqrt(len(coverages))),
            "coverage_1sigma_stat_truths": float(np.mean([m["coverage_1sigma_stat"] for m in metrics])),
            "coverage_truths": len(coverages)}


def calibrated_coverage_probability(bins: int, low: float, high: float, p: float = ONE_SIGMA) -> float:
    """The probability that a calibrated band's ``coverage_1sigma`` over ``bins`` independent bins,
    each covered with probability ``p``, lands within [``low``, ``high``]: how often a coverage
    range on that many bins is met by a band that deserves it (bins of a smooth mismodelling are
    correlated, which widens the spread further)."""
    if bins < 1:
        raise ValueError(f"a coverage needs at least one bin, got {bins}")
    return float(sum(math.comb(bins, k) * p**k * (1 - p) ** (bins - k)
                     for k in range(bins + 1) if low <= k / bins <= high))
