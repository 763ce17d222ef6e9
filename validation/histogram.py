"""Weighted 1D histograms for validation, NumPy first; ``to_hist()`` gives :mod:`hist` objects.

:class:`Histogram` is one filled sample (truth or a single generator draw) with its Poisson
error; :class:`BandHistogram` is the per-bin mean of the densities of several generator draws
(the ensemble of a Bayesian model) with their spread, the sampling noise removed. Both expose ``edges``, ``centers``,
``widths``, ``density`` and ``density_error`` so plotting code can treat them alike, and
``to_hist()``: a :class:`hist.Hist` with weighted storage (values and variances), the form the
Scikit-HEP tools (mplhep, uproot's TH1D writer, fitting and statistics packages) take.

Normalisation: ``fraction = counts / total`` where ``total`` is the sum of *all* weights,
under- and overflow included, so fractions of a histogram whose range cuts away part of the
sample sum to less than one, and ``density = fraction / width`` integrates to the in-range
fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import hist
import numpy as np

from bayesgen.core.errors import DataError

__all__ = ["Histogram", "BandHistogram", "check_edges"]


def check_edges(edges) -> np.ndarray:
    """Return ``edges`` as a float array, or raise :class:`ValueError` if they are not a 1D,
    finite, strictly increasing array of at least two values."""
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"histogram edges must be a 1D array of at least 2 values, got shape {edges.shape}")
    if not np.all(np.isfinite(edges)):
        raise ValueError("histogram edges must be finite")
    if not np.all(np.diff(edges) > 0):
        raise ValueError("histogram edges must be strictly increasing")
    return edges


def _safe_divide(num: np.ndarray, den) -> np.ndarray:
    """``num / den`` elementwise, NaN where ``den`` is zero, without a RuntimeWarning."""
    num = np.asarray(num, dtype=float)
    den = np.broadcast_to(np.asarray(den, dtype=float), num.shape)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _first_bad(name: str, array: np.ndarray, bad: np.ndarray, what: str) -> DataError:
    first = int(np.flatnonzero(bad)[0])
    return DataError(
        f"{name} contain {int(bad.sum())} {what} value(s) out of {array.size}; first at index {first}"
    )


class _Binned:
    """Bin geometry shared by the histogram types (they hold ``edges``)."""

    edges: np.ndarray

    def _hist(self, values: np.ndarray, variances: np.ndarray | None, observable: str, label: str, title: str,
              flow: tuple[tuple[float, float], tuple[float, float]] | None = None) -> hist.Hist:
        """A :class:`hist.Hist` titled ``title`` whose axis (regular when the edges are equally
        spaced) is named ``observable`` and labelled ``label``, holding ``values`` and
        ``variances`` (weighted storage; double storage without variances); ``flow``: (sum of
        weights, of squared weights) below and above the range."""
        regular = np.allclose(self.widths, self.widths[0], rtol=1e-9, atol=0.0)
        axis = (hist.axis.Regular(self.bins, self.edges[0], self.edges[-1], name=observable, label=label)
                if regular else hist.axis.Variable(self.edges, name=observable, label=label))
        out = hist.Hist(axis, storage=hist.storage.Double() if variances is None else hist.storage.Weight(),
                        name=title)
        if variances is None:
            out.view()[...] = values
            return out
        (under, under_w2), (over, over_w2) = flow or ((0.0, 0.0), (0.0, 0.0))
        view = out.view(flow=True)
        view.value = np.concatenate([[under], values, [over]])
        view.variance = np.concatenate([[under_w2], variances, [over_w2]])
        return out

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])


@dataclass(frozen=True)
class Histogram(_Binned):
    """A filled, weighted 1D histogram.

    Attributes:
        edges: bin edges ``(bins + 1,)``.
        counts: sum of weights per bin ``(bins,)``, values inside ``[edges[0], edges[-1]]`` only
            (the last bin includes its right edge, as in :func:`numpy.histogram`).
        sumw2: sum of squared weights per bin ``(bins,)``, the Poisson variance of ``counts``.
        total: sum of all weights, under- and overflow included; the normalisation.
        underflow, overflow: (sum of weights, sum of squared weights) below ``edges[0]`` and
            above ``edges[-1]``.
    """

    edges: np.ndarray
    counts: np.ndarray
    sumw2: np.ndarray
    total: float
    underflow: tuple[float, float] = (0.0, 0.0)
    overflow: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def fill(cls, values, edges, weights=None) -> "Histogram":
        """Histogram the 1D array ``values`` (optionally weighted) into ``edges``.

        Raises :class:`~bayesgen.core.errors.DataError` (a :class:`ValueError`) for NaN values
        or non-finite weights, naming how many and the first index. ±inf values are legal and
        count as under-/overflow.
        """
        edges = check_edges(edges)
        values = np.asarray(values, dtype=float)
        if values.ndim != 1:
            raise ValueError(f"histogram values must be a 1D array, got shape {values.shape}")
        nan = np.isnan(values)
        if nan.any():
            raise _first_bad("histogram values", values, nan, "NaN")
        if weights is None:
            w = np.ones_like(values)
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != values.shape:
                raise ValueError(f"weights shape {w.shape} does not match values shape {values.shape}")
            bad = ~np.isfinite(w)
            if bad.any():
                raise _first_bad("histogram weights", w, bad, "non-finite")
        counts, _ = np.histogram(values, bins=edges, weights=w)
        sumw2, _ = np.histogram(values, bins=edges, weights=w * w)
        below, above = values < edges[0], values > edges[-1]
        return cls(edges=edges, counts=counts.astype(float), sumw2=sumw2.astype(float), total=float(w.sum()),
                   underflow=(float(w[below].sum()), float((w[below] ** 2).sum())),
                   overflow=(float(w[above].sum()), float((w[above] ** 2).sum())))

    def to_hist(self, observable: str = "x", label: str = "", title: str = "") -> hist.Hist:
        """The counts as a :class:`hist.Hist` (weighted storage: ``values()`` the counts,
        ``variances()`` the sums of squared weights, under- and overflow in the flow bins) with
        one axis named ``observable`` and labelled ``label`` (with its unit), e.g.
        ``Histogram.fill(m, edges).to_hist("m_mumu", "M [GeV]")``."""
        return self._hist(self.counts, self.sumw2, observable, label, title, (self.underflow, self.overflow))

    @property
    def fraction(self) -> np.ndarray:
        """``counts / total`` (NaN everywhere if ``total`` is zero)."""
        return _safe_divide(self.counts, self.total)

    @property
    def fraction_error(self) -> np.ndarray:
        """Poisson error of :attr:`fraction`: ``sqrt(sumw2) / total``."""
        return _safe_divide(np.sqrt(self.sumw2), self.total)

    @property
    def density(self) -> np.ndarray:
        """``fraction / width``; integrates to the in-range fraction of the sample."""
        return self.fraction / self.widths

    @property
    def density_error(self) -> np.ndarray:
        """Poisson error of :attr:`density`: ``sqrt(sumw2) / (total * width)``."""
        return self.fraction_error / self.widths


@dataclass(frozen=True)
class BandHistogram(_Binned):
    """Per-bin mean of the densities of several histograms (one per generator draw of an
    ensemble), on common edges, and their spread split into its two sources.

    With ``M`` draws of densities ``ρ_m`` in a bin, each with the Poisson variance
    ``v_m = sumw2_m / (total_m · width)²`` of its finite sample:

        s²_between = Σ_m (ρ_m − ρ̄)² / (M − 1)       the spread of the members' histograms,
        s²_sampling = Σ_m v_m / M                    what finite samples alone would give it,
        σ²_pred = max(0, s²_between − s²_sampling)   the spread of the members' densities,

    since ``E[s²_between] = Var_m(true density_m) + mean_m v_m``. σ_pred is the model's own
    (epistemic) uncertainty; ``σ_stat = s_sampling / √M`` is the statistical error of the
    ensemble mean ρ̄.

    Attributes:
        edges: bin edges ``(bins + 1,)``.
        mean: per-bin mean ρ̄ of the draws' :attr:`Histogram.density` ``(bins,)``.
        spread: ``s_between`` ``(bins,)``; zeros for a single draw.
        sampling: ``s_sampling`` ``(bins,)``.
        n_draws: number of histograms combined, ``M``.
        total: the draws' weights together (their events, for unit weights).
    """

    edges: np.ndarray
    mean: np.ndarray
    spread: np.ndarray
    sampling: np.ndarray
    n_draws: int
    total: float = float("nan")

    @classmethod
    def from_histograms(cls, histograms: Sequence[Histogram]) -> "BandHistogram":
        histograms = list(histograms)
        if not histograms:
            raise ValueError("BandHistogram.from_histograms needs at least one histogram")
        edges = histograms[0].edges
        for i, h in enumerate(histograms[1:], start=1):
            if h.edges.shape != edges.shape or not np.allclose(h.edges, edges):
                raise ValueError(f"histogram {i} has different edges from histogram 0")
        densities = np.stack([h.density for h in histograms])
        variances = np.stack([h.density_error**2 for h in histograms])
        n = len(histograms)
        spread = densities.std(axis=0, ddof=1) if n > 1 else np.zeros(densities.shape[1])
        return cls(edges=np.asarray(edges, dtype=float), mean=densities.mean(axis=0), spread=spread,
                   sampling=np.sqrt(variances.mean(axis=0)), n_draws=n, total=float(sum(h.total for h in histograms)))

    @classmethod
    def from_shared_events(cls, values, edges, member_weights: np.ndarray) -> "BandHistogram":
        """The band of ``M`` members that share the events ``values`` (n,), member ``m`` weighing
        them by ``member_weights[m]`` ``(M, n)`` (e.g. the linearised members of
        :mod:`bayesgen.bayes.linearised`): σ_pred is the spread of the members' densities itself
        and σ_stat the shared events' Poisson error, so ``s_sampling`` is set to σ_stat·√M and
        ``s²_between`` to the members' variance plus ``s²_sampling``."""
        shared = Histogram.fill(values, edges)
        members = np.stack([Histogram.fill(values, edges, weights).density for weights in member_weights])
        sampling = shared.density_error * np.sqrt(len(members))
        spread = np.sqrt(members.std(axis=0, ddof=1) ** 2 + sampling**2)
        return cls(edges=shared.edges, mean=members.mean(axis=0), spread=spread, sampling=sampling,
                   n_draws=len(members), total=shared.total)

    @property
    def sigma_pred(self) -> np.ndarray:
        """``√max(0, s²_between − s²_sampling)``: the members' density spread, sampling noise removed."""
        return np.sqrt(np.clip(self.spread**2 - self.sampling**2, 0.0, None))

    def to_hist(self, observable: str = "x", label: str = "", title: str = "") -> hist.Hist:
        """The ensemble mean density :attr:`mean` as a :class:`hist.Hist` whose variances are
        :attr:`density_error` ² (σ²_pred + σ²_stat); axis as :meth:`Histogram.to_hist`."""
        return self._hist(self.mean, self.density_error**2, observable, label, title)

    def sigma_pred_hist(self, observable: str = "x", label: str = "", title: str = "") -> hist.Hist:
        """:attr:`sigma_pred` per bin as a :class:`hist.Hist` (no variances)."""
        return self._hist(self.sigma_pred, None, observable, label, title)

    @property
    def stat_error(self) -> np.ndarray:
        """``s_sampling / √M``: the statistical error of :attr:`mean`."""
        return self.sampling / np.sqrt(self.n_draws)

    @property
    def density(self) -> np.ndarray:
        """Alias of :attr:`mean`, so a band can stand where a :class:`Histogram` is plotted."""
        return self.mean

    @property
    def density_error(self) -> np.ndarray:
        """``√(σ²_pred + σ²_stat)``: the whole uncertainty of :attr:`mean` as the density."""
        return np.hypot(self.sigma_pred, self.stat_error)
