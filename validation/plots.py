"""Validation plots: one observable, truth vs generated, with a ratio panel.

Drawn in the HEP conventions of :mod:`mplhep` (its CMS style without an experiment label:
ticks inside on all sides, axis labels at the ends, data as points with error bars, predictions
as steps): truth as points, generators as steps with their bands, √s and the numbers of events
in the title and legend, a logarithmic y axis when the truth spans decades. The style applies
to these figures only (:func:`matplotlib.rc_context`), and they use the Agg canvas directly (no
pyplot), so importing or calling this module never changes a user's session.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import mplhep
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayesgen.core.process import Binning
from bayesgen.engine.io import AtomicFile
from bayesgen.validation.floors import ratio_floor
from bayesgen.validation.histogram import BandHistogram, Histogram

__all__ = ["plot_observable", "observable_figure", "spans_decades", "energy_label", "LOG_RANGE"]

STYLE = {**mplhep.style.CMS, "figure.figsize": (10.0, 10.0), "font.size": 20}
LOG_RANGE = 1e2  #: truth densities spanning more than this factor (largest / smallest non-zero bin): log y
_COLORS = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C8", "C9"]  # no grey/black: truth is black
#: legends with more entries than this go below the panels (inside, they would cover the data)
INSIDE_LEGEND_ENTRIES = 4
_LEGEND_LINE_INCHES = 0.3  # the figure grows by this per entry of a legend below the panels
_RATIO_DEFAULT = (0.8, 1.2)
_RATIO_LIMIT = (0.0, 2.0)  # the ratio panel never zooms out further than this


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where ``den`` is zero or not finite (no RuntimeWarning)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=np.isfinite(den) & (den != 0))
    return out


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the consecutive True entries of ``ok``."""
    padded = np.concatenate([[False], ok, [False]])
    starts = np.flatnonzero(~padded[:-1] & padded[1:])
    stops = np.flatnonzero(padded[:-1] & ~padded[1:])
    return list(zip(starts, stops))


def _stairs_line(ax, edges, values, **kwargs) -> None:
    """Step line without side edges; bins with NaN values are left blank."""
    for a, b in _runs(np.isfinite(values)):
        ax.stairs(values[a:b], edges[a:b + 1], baseline=None, **kwargs)


def _stairs_band(ax, edges, low, high, **kwargs) -> None:
    """Shaded step band between ``low`` and ``high``; bins where either is NaN are left blank."""
    for a, b in _runs(np.isfinite(low) & np.isfinite(high)):
        ax.stairs(high[a:b], edges[a:b + 1], baseline=low[a:b], fill=True, **kwargs)


def spans_decades(truth: Histogram) -> bool:
    """Whether the truth's non-zero bin densities span more than :data:`LOG_RANGE` (largest over
    smallest), so that only a logarithmic y axis shows the whole distribution (a steeply
    falling pT spectrum, Δφ of back-to-back leptons)."""
    density = truth.density[truth.counts > 0]
    return density.size > 1 and float(density.max() / density.min()) > LOG_RANGE


def energy_label(sqrt_s: float | None) -> str:
    """``"√s = 13 TeV"`` for ``sqrt_s`` in GeV (TeV from 1 TeV on); empty for ``None``."""
    if sqrt_s is None:
        return ""
    return f"√s = {sqrt_s / 1000:g} TeV" if sqrt_s >= 1000 else f"√s = {sqrt_s:g} GeV"


def _labels(truth: Histogram, generated: Mapping[str, Histogram | BandHistogram], n_generated: int | None) -> list[str]:
    """Legend text: each sample with its number of events (the band's members together)."""
    labels = [f"truth, {truth.total:,.0f} events" + (
        ", stat. error" if n_generated is None else f"; grey: truth vs truth ±1σ for {n_generated:,} generated")]
    for name, h in generated.items():
        if isinstance(h, BandHistogram):
            labels.append(f"{name}, mean ± σ$_{{pred}}$ of {h.n_draws} draws, {h.total:,.0f} events")
        else:
            labels.append(f"{name}, {h.total:,.0f} events")
    return labels


def observable_figure(
    binning: Binning,
    truth: Histogram,
    generated: Mapping[str, Histogram | BandHistogram],
    title: str = "",
    *,
    n_generated: int | None = None,
    logy: bool | None = None,
    sqrt_s: float | None = None,
) -> Figure:
    """The density of one observable, truth vs each generated entry, with a ratio panel.

    Main panel: truth as black points with Poisson error bars; each :class:`Histogram` entry a
    coloured step line; each :class:`BandHistogram` entry the step of its mean with a shaded
    ±σ_pred band (the model's own uncertainty, sampling noise removed); the y axis logarithmic
    when ``logy``, or, with ``logy=None``, when the truth spans decades (:func:`spans_decades`).
    Ratio panel: generated / truth over a grey band, the floor: the ±1σ spread of that ratio
    were the generated sample ``n_generated`` more truth events
    (:func:`~bayesgen.validation.floors.ratio_floor`; without ``n_generated``, the truth's
    relative statistical error alone), each band's ±σ_pred / truth shaded, y-range [0.8, 1.2]
    widened as the ratios need, at most to [0, 2]; bins with an empty truth are left blank.
    Title: ``title`` on the left, √s (``sqrt_s`` in GeV) on the right; the legend gives every
    sample's number of events: in the main panel's upper right for up to
    :data:`INSIDE_LEGEND_ENTRIES` entries, below the ratio panel (the figure taller) for more.
    """
    edges = np.asarray(truth.edges, dtype=float)
    for name, h in generated.items():
        if h.edges.shape != edges.shape or not np.allclose(h.edges, edges):
            raise ValueError(f"generated histogram {name!r} has different edges from the truth")
    logy = spans_decades(truth) if logy is None else logy

    with matplotlib.rc_context(STYLE):
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})

        t_dens, t_err = truth.density, truth.density_error
        filled = truth.counts > 0
        # Truth: the floor as a grey band in the ratio panel, points in the main panel.
        t_rel = _ratio(t_err, t_dens) if n_generated is None else ratio_floor(truth, n_generated)
        _stairs_band(rax, edges, 1.0 - t_rel, 1.0 + t_rel, color="0.8", lw=0, zorder=1)
        mplhep.histplot(np.where(filled, t_dens, np.nan), edges, yerr=np.where(filled, t_err, np.nan),
                        histtype="errorbar", color="black", markersize=5, ax=ax, zorder=5, flow="none")
        handles: list = [(Patch(facecolor="0.8", edgecolor="none"),
                          Line2D([], [], marker="o", ms=5, color="black", lw=1.0))]

        ratio_values, positive = [], [t_dens[filled]]
        for i, (name, h) in enumerate(generated.items()):
            color = _COLORS[i % len(_COLORS)]
            mean = np.asarray(h.density, dtype=float)
            mplhep.histplot(mean, edges, histtype="step", color=color, lw=2, ax=ax, zorder=4, flow="none")
            r = _ratio(mean, t_dens)
            ratio_values.append(r)
            positive.append(mean[mean > 0])
            _stairs_line(rax, edges, r, color=color, lw=2, zorder=4)
            line = Line2D([], [], color=color, lw=2)
            if isinstance(h, BandHistogram):
                sigma = h.sigma_pred
                _stairs_band(ax, edges, mean - sigma, mean + sigma, color=color, alpha=0.3, lw=0, zorder=3)
                _stairs_band(rax, edges, _ratio(mean - sigma, t_dens), _ratio(mean + sigma, t_dens),
                             color=color, alpha=0.3, lw=0, zorder=3)
                handles.append((Patch(facecolor=color, alpha=0.3, edgecolor="none"), line))
            else:
                handles.append(line)

        # Ratio panel range: [0.8, 1.2] unless the central ratios need more, capped at [0, 2].
        lo, hi = _RATIO_DEFAULT
        finite = np.concatenate([r[np.isfinite(r)] for r in ratio_values]) if ratio_values else np.array([])
        if finite.size:
            lo = max(_RATIO_LIMIT[0], min(lo, finite.min() - 0.05))
            hi = min(_RATIO_LIMIT[1], max(hi, finite.max() + 0.05))
        rax.set_ylim(lo, hi)
        rax.axhline(1.0, color="black", ls="--", lw=0.8, zorder=2)

        ax.set_xlim(edges[0], edges[-1])
        positive = np.concatenate(positive)
        top = float(positive.max()) if positive.size else 1.0
        legend_inside = len(handles) <= INSIDE_LEGEND_ENTRIES
        if logy:  # the lowest bins, and room above for a legend inside: 60 % of the axis for the data
            bottom = float(positive.min()) / 2 if positive.size else top / 10
            ax.set_yscale("log")
            ax.set_ylim(bottom, bottom * (top / bottom) ** (1 / (0.6 if legend_inside else 0.9)))
        else:
            ax.set_ylim(0.0, (1.45 if legend_inside else 1.1) * top)
        ax.set_ylabel("normalised density")
        ax.set_title(title, loc="left", fontsize="medium")
        ax.set_title(energy_label(sqrt_s), loc="right", fontsize="medium")
        legend = {"handles": handles, "labels": _labels(truth, generated, n_generated), "frameon": False,
                  "fontsize": "x-small", "handler_map": {tuple: HandlerTuple(ndivide=1)}}
        if legend_inside:
            ax.legend(loc="upper right", **legend)
        else:
            width, height = fig.get_size_inches()
            fig.set_size_inches(width, height + _LEGEND_LINE_INCHES * len(handles))
            fig.legend(loc="outside lower center", **legend)
        rax.set_ylabel("gen. / truth")
        rax.set_xlabel(binning.label or title)
        ax.tick_params(labelbottom=False)
    return fig


def plot_observable(path, binning: Binning, truth: Histogram, generated: Mapping[str, Histogram | BandHistogram],
                    title: str = "", **options) -> Path:
    """Write :func:`observable_figure` (same arguments and ``options``) to ``path``, atomically
    (:class:`~bayesgen.engine.io.AtomicFile`), in the format of its suffix (PNG without one);
    return ``path`` as a :class:`~pathlib.Path`."""
    path = Path(path)
    fig = observable_figure(binning, truth, generated, title, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(STYLE), AtomicFile(path) as temporary:
        fig.savefig(temporary, format=(path.suffix or ".png")[1:], dpi=72)
    return path
