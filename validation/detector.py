"""Metrics and example plots for detector-level events: ECAL point clouds and calorimeter images.

Conventions:

* a *cloud* is an array ``(N, 3)`` of hits ``(η, φ, E)``: η and φ relative to the jet axis in
  radians, E in GeV; hits with ``E == 0`` are padding and are ignored. A batch of clouds is
  ``(n, N, 3)``.
* an *image* batch is ``(n, C, H, W)`` of non-negative pixel energies in GeV, one channel per
  sub-detector (e.g. track, ECAL, HCAL).

A process shows its events as clouds or images through
:meth:`~bayesgen.core.process.Process.detector_view`; :func:`view_metrics` and
:func:`plot_view_examples` measure and draw whichever it gives. Plots use
:class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot), as
:mod:`bayesgen.validation.plots`, and are written atomically as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ot
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from bayesgen.core.errors import DataError
from bayesgen.core.process import DetectorView
from bayesgen.engine.io import AtomicFile
from bayesgen.validation.metrics import wasserstein_1d

__all__ = ["cloud_emd", "mean_emd", "cloud_summaries", "image_metrics",
           "plot_cloud_examples", "plot_image_examples", "view_metrics", "plot_view_examples"]

_LOG_FLOOR = 1e-4  # log colour scales span at most four decades below the maximum


def _finite(name: str, x, ndim: int, last: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != ndim or (last is not None and x.shape[-1] != last):
        want = f"{ndim}D" + (f" with last axis {last}" if last is not None else "")
        raise DataError(f"{name} must be {want}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{name} contain non-finite values")
    return x


def _hits(name: str, cloud) -> np.ndarray:
    """The non-padding hits ``(m, 3)`` of one cloud; negative energies are an error."""
    cloud = _finite(name, cloud, 2, 3)
    if (cloud[:, 2] < 0).any():
        raise DataError(f"{name} has negative hit energies")
    return cloud[cloud[:, 2] > 0]


def _delta_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise ΔR between the hits of ``a`` (rows) and ``b`` (columns), Δφ wrapped to [−π, π]."""
    deta = a[:, None, 0] - b[None, :, 0]
    dphi = np.abs(a[:, None, 1] - b[None, :, 1]) % (2 * np.pi)
    dphi = np.minimum(dphi, 2 * np.pi - dphi)
    return np.hypot(deta, dphi)


def cloud_emd(a: np.ndarray, b: np.ndarray, radius: float = 0.4) -> float:
    """Energy mover's distance (Komiske, Metodiev, Thaler) between two clouds, in GeV:

        EMD = min_f Σ_ij f_ij ΔR_ij / radius + |ΣE_a − ΣE_b|,

    over flows with Σ_j f_ij ≤ E_a,i, Σ_i f_ij ≤ E_b,j and Σ_ij f_ij = min(ΣE_a, ΣE_b).

    Solved as a balanced transport (``ot.emd2``) after appending to the lighter cloud one
    virtual hit carrying the energy difference, at ground distance ``radius`` from every hit:
    all of its energy moves at cost 1 per GeV, which is exactly the difference term, and the
    rest is the flow above, so the result equals the formula for any ``radius``. (EMD is a
    metric on clouds when ``radius`` ≥ half the largest ΔR, as in the KMT paper.) A cloud with
    no hits is at a distance of the other's total energy.
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    a, b = _hits("cloud a", a), _hits("cloud b", b)
    if len(a) == 0 or len(b) == 0:
        return float(abs(a[:, 2].sum() - b[:, 2].sum()))
    if a[:, 2].sum() > b[:, 2].sum():
        a, b = b, a
    wa = np.append(a[:, 2], b[:, 2].sum() - a[:, 2].sum())
    cost = np.vstack([_delta_r(a, b) / radius, np.ones(len(b))])
    return float(ot.emd2(wa, np.ascontiguousarray(b[:, 2]), cost))  # POT needs contiguous weights


def mean_emd(truth: np.ndarray, generated: np.ndarray, n_pairs: int = 200, seed: int = 0,
             radius: float = 0.4) -> tuple[float, float]:
    """Mean and standard error of :func:`cloud_emd` over ``n_pairs`` random (truth, generated)
    pairs, each event drawn uniformly with replacement (``np.random.default_rng(seed)``).

    The baseline for a perfect generator is ``mean_emd(truth_a, truth_b)`` on two disjoint
    truth samples (not a sample with itself: identical pairs would count as distance 0).
    """
    truth = _finite("truth clouds", truth, 3, 3)
    generated = _finite("generated clouds", generated, 3, 3)
    if n_pairs < 2:
        raise ValueError(f"n_pairs must be at least 2, got {n_pairs!r}")
    if len(truth) == 0 or len(generated) == 0:
        raise DataError("mean_emd needs at least one truth and one generated cloud")
    rng = np.random.default_rng(seed)
    i = rng.integers(len(truth), size=n_pairs)
    j = rng.integers(len(generated), size=n_pairs)
    emd = np.array([cloud_emd(truth[p], generated[q], radius) for p, q in zip(i, j)])
    return float(emd.mean()), float(emd.std(ddof=1) / np.sqrt(n_pairs))


def cloud_summaries(clouds: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event ``et_sum`` (Σ E / cosh η, GeV) and ``n_hits`` (count of hits with E > 0)."""
    clouds = _finite("clouds", clouds, 3, 3)
    eta, energy = clouds[..., 0], clouds[..., 2]
    return {"et_sum": (energy / np.cosh(eta)).sum(axis=1), "n_hits": (energy > 0).sum(axis=1)}


def _images(name: str, images) -> np.ndarray:
    images = _finite(name, images, 4)
    if (images < 0).any():
        raise DataError(f"{name} have negative pixel energies")
    return images


def image_metrics(truth: np.ndarray, generated: np.ndarray, channel_names: tuple[str, ...],
                  empty_below: float = 1e-3) -> dict:
    """Per channel, ``{name: {...}}`` with plain Python floats:

    * ``mean_image_rel_l1`` — Σ_pixels |mean_gen − mean_truth| / Σ_pixels mean_truth (NaN if
      the truth channel is empty);
    * ``pixel_spectrum_w1`` — W1 between the log10 energies of the non-empty pixels
      (≥ ``empty_below``) of all images of each sample, one exact ``ot.wasserstein_1d`` over
      all of them (the samples' pixel counts differ; NaN if either has none);
    * ``total_energy_w1``, ``total_energy_w1_std`` — W1 of the per-image channel sums,
      mean ± std over batches (:func:`~bayesgen.validation.metrics.wasserstein_1d`: at least
      5 images per sample, in random order);
    * ``empty_fraction`` — ``{"truth", "generated"}`` fractions of pixels below ``empty_below``.
    """
    truth, generated = _images("truth images", truth), _images("generated images", generated)
    if truth.shape[1:] != generated.shape[1:]:
        raise DataError(f"image shapes differ: truth {truth.shape[1:]}, generated {generated.shape[1:]}")
    if len(channel_names) != truth.shape[1]:
        raise ValueError(f"{len(channel_names)} channel names for {truth.shape[1]} channels")
    result = {}
    for c, name in enumerate(channel_names):
        t, g = truth[:, c], generated[:, c]
        mean_t, mean_g = t.mean(axis=0), g.mean(axis=0)
        norm = mean_t.sum()
        t_on, g_on = t[t >= empty_below], g[g >= empty_below]
        spectrum = (ot.wasserstein_1d(np.log10(t_on), np.log10(g_on), p=1)
                    if t_on.size and g_on.size else np.nan)
        w1, w1_std = wasserstein_1d(t.sum(axis=(1, 2)), g.sum(axis=(1, 2)))
        result[name] = {
            "mean_image_rel_l1": float(np.abs(mean_g - mean_t).sum() / norm) if norm > 0 else float("nan"),
            "pixel_spectrum_w1": float(spectrum),
            "total_energy_w1": w1,
            "total_energy_w1_std": w1_std,
            "empty_fraction": {"truth": float(np.mean(t < empty_below)),
                               "generated": float(np.mean(g < empty_below))},
        }
    return result


def _log_norm(values: np.ndarray) -> LogNorm:
    """Log colour scale from the smallest positive value (at least ``_LOG_FLOOR`` × the largest) to the largest."""
    positive = values[values > 0]
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else 0.0, _LOG_FLOOR * vmax)
    return LogNorm(vmin=min(vmin, 0.5 * vmax), vmax=vmax)


def _save_png(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (see :class:`~bayesgen.engine.io.AtomicFile`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)


def _n_shown(k: int, *samples: np.ndarray) -> int:
    n = min(k, *(len(s) for s in samples))
    if n < 1:
        raise ValueError("need k ≥ 1 and at least one event in each sample")
    return n


def plot_cloud_examples(truth: np.ndarray, generated: np.ndarray, path: Path, k: int = 4) -> None:
    """The first ``min(k, n)`` clouds of each sample as (η, φ) scatters, truth on the top row and
    generated below, marker area and colour by E (shared log colour scale and axis limits)."""
    truth = _finite("truth clouds", truth, 3, 3)
    generated = _finite("generated clouds", generated, 3, 3)
    n = _n_shown(k, truth, generated)
    rows = {"truth": truth[:n], "generated": generated[:n]}
    hits = np.concatenate([c[c[..., 2] > 0] for c in rows.values()])
    norm = _log_norm(hits[:, 2])
    lim = 1.05 * float(np.abs(hits[:, :2]).max()) if len(hits) else 1.0

    fig = Figure(figsize=(2.6 * n + 1.0, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False, sharex=True, sharey=True)
    for r, (label, clouds) in enumerate(rows.items()):
        for i, cloud in enumerate(clouds):
            ax = axes[r, i]
            cloud = cloud[cloud[:, 2] > 0]
            scatter = ax.scatter(cloud[:, 0], cloud[:, 1], c=cloud[:, 2], norm=norm, cmap="viridis",
                                 s=4 + 80 * np.sqrt(cloud[:, 2] / norm.vmax), edgecolors="none")
            ax.set_title(f"{label} #{i}", fontsize="small")
            ax.set_aspect("equal")
        axes[r, 0].set_ylabel("φ (rad)")
    for ax in axes[1]:
        ax.set_xlabel("η (rad)")
    axes[0, 0].set_xlim(-lim, lim)
    axes[0, 0].set_ylim(-lim, lim)
    fig.colorbar(scatter, ax=axes, label="E (GeV)", shrink=0.8)
    _save_png(fig, Path(path))


def plot_image_examples(truth: np.ndarray, generated: np.ndarray, path: Path,
                        channel_names: tuple[str, ...], k: int = 3) -> None:
    """One column per channel; rows: the first ``min(k, n)`` truth images, as many generated
    ones, then the mean truth and mean generated image. Each channel has one log colour scale
    (floor four decades below its maximum; lower pixels drawn at the floor)."""
    truth, generated = _images("truth images", truth), _images("generated images", generated)
    if truth.shape[1:] != generated.shape[1:] or len(channel_names) != truth.shape[1]:
        raise ValueError("truth, generated and channel_names disagree on the image shape")
    n = _n_shown(k, truth, generated)
    rows = ([(f"truth #{i}", truth[i]) for i in range(n)] + [(f"generated #{i}", generated[i]) for i in range(n)]
            + [("truth mean", truth.mean(axis=0)), ("generated mean", generated.mean(axis=0))])
    stack = np.stack([image for _, image in rows])  # (rows, C, H, W)

    n_channels = len(channel_names)
    fig = Figure(figsize=(2.2 * n_channels, 2.0 * len(rows) + 1.0), layout="compressed")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), n_channels, squeeze=False)
    for c, channel in enumerate(channel_names):
        norm = _log_norm(stack[:, c])
        for r, (label, image) in enumerate(rows):
            ax = axes[r, c]
            shown = ax.imshow(np.clip(image[c], norm.vmin, None), norm=norm, cmap="viridis", origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize="small")
        axes[0, c].set_title(channel)
        fig.colorbar(shown, ax=axes[:, c], location="bottom", label=f"{channel} E (GeV)", shrink=0.9)
    _save_png(fig, Path(path))


def view_metrics(truth: DetectorView, generated: DetectorView, seed: int = 0) -> dict:
    """Whole-event metrics of two detector views of one kind. Clouds: the mean EMD truth vs
    generated (``emd_mean``, ``emd_stderr``) beside its baseline between the two halves of the
    truth (``emd_truth_vs_truth``, ``emd_truth_vs_truth_stderr``); images: :func:`image_metrics`
    per channel."""
    if truth.kind != generated.kind:
        raise DataError(f"cannot compare {truth.kind} views with {generated.kind} views")
    if truth.kind == "image":
        return image_metrics(truth.arrays, generated.arrays, truth.channels, truth.empty_below)
    half = len(truth.arrays) // 2
    emd, emd_stderr = mean_emd(truth.arrays, generated.arrays, seed=seed)
    floor, floor_stderr = mean_emd(truth.arrays[:half], truth.arrays[half:], seed=seed)
    return {"emd_mean": emd, "emd_stderr": emd_stderr, "emd_truth_vs_truth": floor,
            "emd_truth_vs_truth_stderr": floor_stderr}


def plot_view_examples(truth: DetectorView, generated: DetectorView, path: Path) -> None:
    """A few truth events above generated ones (and, for images, the mean images) into ``path``."""
    if truth.kind == "image":
        plot_image_examples(truth.arrays, generated.arrays, path, truth.channels)
    else:
        plot_cloud_examples(truth.arrays, generated.arrays, path)
