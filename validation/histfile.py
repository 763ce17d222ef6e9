"""The validation histograms as :mod:`hist` objects, and a ROOT file of them.

Per observable, the *samples* (every one a :class:`hist.Hist` on the observable's binning):

* ``truth``: the truth's counts, variances the sums of squared weights (Poisson errors),
  under- and overflow in the flow bins;
* ``generated``: the same for the generated events, every ensemble member's together;
* ``band_mean`` (Bayesian runs, ``draws > 1``): the ensemble's mean normalised density, variances
  its whole uncertainty σ²_pred + σ²_stat (see :class:`~bayesgen.validation.histogram.BandHistogram`);
* ``band_sigma_pred`` (idem): σ_pred per bin, the model's own uncertainty of that density.

``histograms.root`` holds each as a TH1D (with its sum of squared weights, so ROOT's errors are
the ones above) at ``SAMPLE/OBSERVABLE``, e.g. ``truth/m_mumu``; ``compare`` puts the generated
samples of each model under the model's name, e.g. ``ddpm/generated/m_mumu``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import hist
import uproot

from bayesgen.engine.io import AtomicFile
from bayesgen.validation.histogram import BandHistogram, Histogram

__all__ = ["SAMPLES", "sample_histograms", "root_entries", "write_root"]

SAMPLES = ("truth", "generated", "band_mean", "band_sigma_pred")


def root_title(label: str) -> str:
    """A matplotlib mathtext label (``$p_{T,\\mu_1}$ [GeV]``) in ROOT's TLatex (``p_{T,#mu_1} [GeV]``)."""
    return label.replace("$", "").replace("\\", "#")


def sample_histograms(name: str, label: str, truth: Histogram, generated: Histogram,
                      band: BandHistogram | None = None) -> dict[str, hist.Hist]:
    """The samples of observable ``name`` (the histograms' axis name; ``label`` its title, in
    ROOT's TLatex): ``truth`` and ``generated`` counts, and with a ``band`` its mean and σ_pred."""
    axis = root_title(label) or name
    samples = {"truth": truth.to_hist(name, axis, f"{name}: truth"),
               "generated": generated.to_hist(name, axis, f"{name}: generated")}
    if band is not None:
        samples["band_mean"] = band.to_hist(name, axis, f"{name}: ensemble mean density")
        samples["band_sigma_pred"] = band.sigma_pred_hist(name, axis, f"{name}: sigma_pred of the density")
    return samples


def root_entries(histograms: Mapping[str, Mapping[str, hist.Hist]], model: str = "") -> dict[str, hist.Hist]:
    """``{observable: {sample: h}}`` as paths in the ROOT file: ``SAMPLE/OBSERVABLE``, the
    generated samples under ``MODEL/`` when ``model`` is given (its runs of characters outside
    ``[A-Za-z0-9_]`` become one ``_``)."""
    prefix = re.sub(r"\W+", "_", model, flags=re.ASCII).strip("_") + "/" if model else ""
    return {(sample if sample == "truth" else prefix + sample) + "/" + name: h
            for name, samples in histograms.items() for sample, h in samples.items()}


def write_root(path: str | Path, entries: Mapping[str, hist.Hist]) -> Path:
    """Write ``entries`` (path in the file → histogram) as TH1Ds to the ROOT file ``path``,
    atomically (:class:`~bayesgen.engine.io.AtomicFile`)."""
    path = Path(path)
    with AtomicFile(path) as temporary, uproot.recreate(temporary) as file:
        for key, h in entries.items():
            file[key] = h
    return path
