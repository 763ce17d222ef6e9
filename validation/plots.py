"""Validation plots: one observable, truth vs generated, with a ratio panel.

Uses :class:`matplotlib.figure.Figure` with the Agg canvas directly (no pyplot), so importing
this module never changes the backend of a user's interactive session.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayesgen.core.io import AtomicFile
from bayesgen.core.process import Binning
from bayesgen.validation.floors import ratio_floor
from bayesgen.validation.histogram import BandHistogram, Histogram

__all__ = ["plot_observable"]

_COLORS = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C8", "C9"]  # no grey/black: truth is black
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


def plot_observable(
    path,
    binning: Binning,
    truth: Histogram,
    generated: Mapping[str, Histogram | BandHistogram],
    title: str = "",
    *,
    n_generated: int | None = None,
    logy: bool = False,
) -> Path:
    """Plot the density of one observable, truth vs each generated entry, with a ratio panel.

    Main panel: truth as black points with Poisson error bars; each :class:`Histogram` entry a
    coloured step line; each :class:`BandHistogram` entry the step of its mean with a shaded
    ±σ_pred band (the model's own uncertainty, sampling noise removed). Ratio panel: generated /
    truth over a grey band, the floor: the ±1σ spread of that ratio were the generated sample
    ``n_generated`` more truth events (:func:`~bayesgen.validation.floors.ratio_floor`; without
    ``n_generated``, the truth's relative statistical error alone), each band's ±σ_pred / truth
    shaded, y-range [0.8, 1.2] widened as the ratios need, at most to [0, 2]; bins with an empty
    truth are left blank. The legend gives the numbers of truth and generated events.

    The figure is written atomically (:class:`~bayesgen.core.io.AtomicFile`); the format follows the suffix of ``path`` (PNG without one).
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    edges = np.asarray(truth.edges, dtype=float)
    for name, h in generated.items():
        if h.edges.shape != edges.shape or not np.allclose(h.edges, edges):
            raise ValueError(f"generated histogram {name!r} has different edges from the truth")

    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})

    t_dens = truth.density
    t_err = truth.density_error
    centers = truth.centers
    handles, labels = [], []

    # Truth: the floor as a grey band in the ratio panel, points in the main panel.
    t_rel = _ratio(t_err, t_dens) if n_generated is None else ratio_floor(truth, n_generated)
    _stairs_band(rax, edges, 1.0 - t_rel, 1.0 + t_rel, color="0.8", lw=0, zorder=1)
    filled = t_dens > 0
    ax.errorbar(centers[filled], t_dens[filled], yerr=t_err[filled], fmt="o", color="black",
                ms=3.5, lw=1.0, capsize=0, zorder=5)
    handles.append((Patch(facecolor="0.8", edgecolor="none"),
                    Line2D([], [], marker="o", ms=3.5, color="black", lw=1.0)))
    labels.append(f"truth ({truth.total:,.0f} events, stat. error)" if n_generated is None else
                  f"truth ({truth.total:,.0f} events); grey: truth-vs-truth ±1σ for {n_generated:,} generated")

    ratio_values = []
    for i, (name, h) in enumerate(generated.items()):
        color = _COLORS[i % len(_COLORS)]
        mean = np.asarray(h.density, dtype=float)
        ax.stairs(mean, edges, color=color, lw=1.5, zorder=4)
        r = _ratio(mean, t_dens)
        ratio_values.append(r)
        _stairs_line(rax, edges, r, color=color, lw=1.5, zorder=4)
        line = Line2D([], [], color=color, lw=1.5)
        if isinstance(h, BandHistogram):
            sigma = h.sigma_pred
            _stairs_band(ax, edges, mean - sigma, mean + sigma, color=color, alpha=0.3, lw=0, zorder=3)
            _stairs_band(rax, edges, _ratio(mean - sigma, t_dens), _ratio(mean + sigma, t_dens),
                         color=color, alpha=0.3, lw=0, zorder=3)
            handles.append((Patch(facecolor=color, alpha=0.3, edgecolor="none"), line))
            labels.append(f"{name} (mean ± σ_pred, {h.n_draws} draws)")
        else:
            handles.append(line)
            labels.append(name)

    # Ratio panel range: [0.8, 1.2] unless the central ratios need more, capped at [0, 2].
    lo, hi = _RATIO_DEFAULT
    finite = np.concatenate([r[np.isfinite(r)] for r in ratio_values]) if ratio_values else np.array([])
    if finite.size:
        lo = max(_RATIO_LIMIT[0], min(lo, finite.min() - 0.05))
        hi = min(_RATIO_LIMIT[1], max(hi, finite.max() + 0.05))
    rax.set_ylim(lo, hi)
    rax.axhline(1.0, color="black", ls="--", lw=0.8, zorder=2)

    ax.set_xlim(edges[0], edges[-1])
    if logy:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0.0, 1.3 * ax.get_ylim()[1])  # headroom for the legend
    ax.set_ylabel("normalised density")
    if title:
        ax.set_title(title)
    ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=1)}, frameon=False, fontsize="small")
    rax.set_ylabel("gen. / truth")
    rax.set_xlabel(binning.label or title)
    ax.tick_params(labelbottom=False)

    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as temporary:
        fig.savefig(temporary, format=(path.suffix or ".png")[1:], dpi=120)
    return path
