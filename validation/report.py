"""Generated events measured against fresh truth: metrics per observable, a classifier test,
plots and the report folder.

Validation works on arrays: the truth events of a process (:class:`Truth`) and generated events
with the ensemble member of each (:func:`measure`); it trains nothing and generates nothing (the
app does, :mod:`bayesgen.app.validate`). :func:`write_report` writes ``metrics.json``, one
``NAME.png`` per observable, ``histograms.root`` (see :mod:`bayesgen.validation.histfile`) and,
for a process with a detector view, ``examples.png``; :mod:`bayesgen.app.compare` uses the same
pieces for several models side by side.

Sample sizes: the truth has ``--truth-events`` events, else ``--events``, else
:data:`TRUTH_EVENTS`; from a file's held-out part (finite) all it holds up to that number,
unless ``--truth-events`` asks for more, an error. The generated sample has ``--events`` per
ensemble member, else :data:`GENERATED_PER_TRUTH` per truth event, at most
:data:`MAX_GENERATED`: the metrics' floors hardly fall once the generated sample is ten times the
truth, so more only costs time (475 held-out events are compared with 4,750 generated, not 100,000).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hist
import numpy as np

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed
from bayesgen.engine.config import ValidateConfig
from bayesgen.engine.io import write_json
from bayesgen.engine.progress import progress_bar
from bayesgen.validation.classifier import classifier_inputs, classifier_two_sample_test
from bayesgen.validation.detector import plot_view_examples, view_metrics
from bayesgen.validation.floors import Floors, measure_floors, with_floors
from bayesgen.validation.histfile import root_entries, sample_histograms, write_root
from bayesgen.validation.histogram import BandHistogram, Histogram
from bayesgen.validation.metrics import band_metrics, coverage_over_truths, observable_metrics
from bayesgen.validation.plots import plot_observable
from bayesgen.validation.reweighting import Reweighter, weight_summary


MIN_DEFINED = 100          #: fewer defined values than this in either sample: the observable is not compared
TRUTH_EVENTS = 100_000     #: truth events when neither --truth-events nor --events says
GENERATED_PER_TRUTH = 10   #: generated events per truth event when --events does not say, ...
MAX_GENERATED = 100_000    #: ... at most this many per ensemble member


def generated_events(config: ValidateConfig, n_truth: int) -> int:
    """Generated events per ensemble member: ``config.events``, else
    :data:`GENERATED_PER_TRUTH` × ``n_truth``, at most :data:`MAX_GENERATED`."""
    if config.events is not None:
        return config.events
    return max(1, min(MAX_GENERATED, GENERATED_PER_TRUTH * n_truth))


def not_compared(truth_values: np.ndarray, generated_values: np.ndarray) -> str:
    """Why an observable (values ``(n,)``, NaN where undefined) defined for too few events of
    either sample is not compared, in words."""
    return (f"not compared: defined for {len(defined(truth_values)):,} of {len(truth_values):,} truth and "
            f"{len(defined(generated_values)):,} of {len(generated_values):,} generated events; the metrics need "
            f"at least {MIN_DEFINED} in each")


def finite_observables(process: Process, events: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Observables of the events whose quantities are all finite and no observable is ±inf, and
    that mask ``(n,)``. NaN marks an observable the process leaves undefined for an event (the
    third jet's pT in a two-jet event); it stays and is left out of that observable's metrics."""
    events = np.asarray(events, dtype=np.float64)
    with np.errstate(all="ignore"):
        observables = process.observables(events)
    finite = np.isfinite(events).all(axis=1)
    finite &= np.logical_and.reduce([~np.isinf(v) for v in observables.values()])
    return {name: values[finite] for name, values in observables.items()}, finite


def defined(values: np.ndarray) -> np.ndarray:
    """The values of an observable where it is defined (not NaN)."""
    return values[~np.isnan(values)]


@dataclass
class Truth:
    """Fresh truth events of a process (in random order) and their observables, with the
    statistical floors of the metrics against it, measured once per generated-sample size."""

    process: Process
    seed: int
    events: np.ndarray
    observables: dict[str, np.ndarray]
    _floors: dict[int, Floors] = field(default_factory=dict, repr=False)

    @classmethod
    def draw(cls, process: Process, n_events: int, seed: int, available: bool = False) -> "Truth":
        """``n_events`` held-out events; with ``available``, fewer when that is all there are."""
        holdout = process.holdout()
        events = (holdout.sample_available if available else holdout.sample)(n_events, seed=derive_seed(seed, "truth"))
        events = events[np.random.default_rng(derive_seed(seed, "truth-order")).permutation(len(events))]
        return cls(process, seed, events, finite_observables(process, events)[0])

    def histogram(self, name: str, edges: np.ndarray) -> Histogram:
        return Histogram.fill(defined(self.observables[name]), edges)

    def floors(self, n_generated: int) -> Floors:
        """The metrics' truth-vs-truth floors for this truth against ``n_generated`` events."""
        if n_generated not in self._floors:
            self._floors[n_generated] = measure_floors(
                self.process, lambda events: finite_observables(self.process, events)[0], self.process.binnings,
                len(self.events), n_generated, self.seed, self.events)
        return self._floors[n_generated]


@dataclass
class Evaluation:
    """One trained model measured against truth: its finite generated observables, the ensemble
    member of each event, the summary written to ``metrics.json``, the first member's events
    (for whole-event metrics and example pictures), when reweighted, the events' classifier
    weights (aligned with the observables), and for a linearised band the weights of the shared
    events per ensemble member ``(draws, n)`` (aligned alike)."""

    observables: dict[str, np.ndarray]
    draw: np.ndarray
    summary: dict[str, Any]
    events: np.ndarray
    weights: np.ndarray | None = None
    member_weights: np.ndarray | None = None

    def histogram(self, name: str, edges: np.ndarray) -> Histogram | BandHistogram:
        """All events in one histogram, or the ensemble band when there are several draws (members
        drawing their own events, or sharing them under ``member_weights``)."""
        values = self.observables[name]
        if self.member_weights is not None:
            where = ~np.isnan(values)
            return BandHistogram.from_shared_events(values[where], edges, self.member_weights[:, where])
        draws = int(self.draw.max()) + 1
        if draws == 1:
            return Histogram.fill(defined(values), edges)
        return BandHistogram.from_histograms(
            [Histogram.fill(defined(values[self.draw == m]), edges) for m in range(draws)])


def draw_truth(process: Process, config: ValidateConfig) -> Truth:
    """The validation truth: ``config.truth_events`` events (an error when the held-out data
    holds fewer), else ``config.events`` or :data:`TRUTH_EVENTS`, fewer when that is all a
    file's held-out part holds."""
    if config.truth_events is not None:
        return Truth.draw(process, config.truth_events, config.seed)
    return Truth.draw(process, config.events or TRUTH_EVENTS, config.seed, available=True)


def observable_table(process: Process, truth: Truth, observables: dict[str, np.ndarray], floors: Floors,
                     weights: np.ndarray | None = None, bar: Any = None) -> dict[str, dict[str, Any]]:
    """Per observable: the metrics of the generated ``observables`` (name → values ``(n,)``, NaN
    where undefined; with ``weights (n,)`` weighted) against the truth, beside their floors, with
    the numbers of events behind them (an observable defined for too few is listed with the
    reason); ``bar``, a progress bar, advances by one per observable."""
    per_observable = {}
    for name, binning in process.binnings.items():
        if bar is not None:
            bar.set_postfix_str(name)
            bar.update()
        truth_values, generated_values = truth.observables[name], observables[name]
        present = ~np.isnan(generated_values)
        if min(len(defined(truth_values)), int(present.sum())) < MIN_DEFINED:  # e.g. a third jet in a file with two
            per_observable[name] = {"skipped": not_compared(truth_values, generated_values)}
            continue
        metrics = with_floors(observable_metrics(defined(truth_values), generated_values[present], binning.edges,
                                                 None if weights is None else weights[present]),
                              floors.observables.get(name))
        metrics.update(n_truth=len(defined(truth_values)), n_generated=int(present.sum()))
        if np.isnan(truth_values).any() or not present.all():
            metrics["fraction_undefined"] = {"truth": float(np.isnan(truth_values).mean()),
                                             "generated": float(1.0 - present.mean())}
        per_observable[name] = metrics
    return per_observable


def measure(process: Process, truth: Truth, events: np.ndarray, draw: np.ndarray, draws: int, seed: int,
            label: str = "the model", progress: bool = False, reweighter: Reweighter | None = None,
            coverage_truths: int = 0, member_weights: np.ndarray | None = None) -> Evaluation:
    """Measure generated ``events (n, n_quantities)``, ``draws`` ensemble members marked by
    ``draw (n,)``, against ``truth``: metrics per observable (on all members' events pooled;
    with draws, the band's width and coverage too), each beside its truth-vs-truth floor for
    ``len(truth)`` and ``n`` events and with the numbers of events behind it (an observable
    defined for too few is listed with the reason), the classifier AUC and whole-event metrics
    (the process's :meth:`~bayesgen.core.process.Process.detector_view` and its own
    :meth:`~bayesgen.core.process.Process.event_metrics`); with ``progress``, a bar on a
    terminal. More than half the events with non-finite observables is a :class:`DataError`
    naming ``label``. With a ``reweighter`` the summary's ``reweighted`` holds the same metrics
    and AUC of the events weighted by it (beside the same floors), and the weights' spread. With
    ``coverage_truths`` K ≥ 2 and draws, each band's coverage is also averaged over K further
    truth samples of the same size (:func:`coverage_truths_metrics`). With ``member_weights``
    ``(draws, n)`` the ``draws`` members share the events (all marked member 0), member ``m``
    weighing them by its row (a linearised band, :mod:`bayesgen.bayes.linearised`); the summary
    then adds the weights' spread and the fraction below 0."""
    observables, finite = finite_observables(process, events)
    n_dropped = int((~finite).sum())
    if n_dropped > len(finite) // 2:
        raise DataError(f"{label} generated {n_dropped:,} of {len(finite):,} events "
                        "with non-finite observables; it needs more training before it can be validated")
    order = np.random.default_rng(derive_seed(seed, "pool")).permutation(int(finite.sum()))
    first_member = events[finite & (draw == 0)]
    evaluation = Evaluation({name: values[order] for name, values in observables.items()}, draw[finite][order], {},
                            first_member)
    if member_weights is not None:
        evaluation.member_weights = member_weights[:, np.flatnonzero(finite)[order]]   # one copy, not two
    bar = progress_bar(progress, total=len(process.binnings) + 2, desc="measuring", unit="step")
    bar.set_postfix_str("truth-vs-truth floors")
    floors = truth.floors(len(events))
    bar.update()
    per_observable = observable_table(process, truth, evaluation.observables, floors, bar=bar)
    if draws > 1:
        bands = {name: evaluation.histogram(name, process.binnings[name].edges)
                 for name, metrics in per_observable.items() if "skipped" not in metrics}
        for name, band in bands.items():
            per_observable[name].update(band_metrics(truth.histogram(name, band.edges), band))
        if coverage_truths:
            bar.set_postfix_str(f"coverage over {coverage_truths} truth samples")
            for name, metrics in coverage_truths_metrics(process, len(truth.events), bands, coverage_truths,
                                                         seed).items():
                per_observable[name].update(metrics)
    bar.set_postfix_str("classifier")
    truth_inputs = classifier_inputs(process, truth.events)
    classifier = classifier_two_sample_test(truth_inputs, classifier_inputs(process, events), seed=seed)
    bar.update()
    bar.close()
    evaluation.summary.update({
        "draws": draws, "n_truth": len(truth.events), "n_generated": int(finite.sum()), "floor": floors.summary(),
        "n_nonfinite_dropped": n_dropped, "classifier": classifier, "observables": per_observable})
    if member_weights is not None:
        evaluation.summary["linearised_weights"] = {"std": float(evaluation.member_weights.std()),
                                                    "negative_fraction": float((evaluation.member_weights < 0).mean())}
    if reweighter is not None:
        inputs = classifier_inputs(process, events[finite])
        calibrated = reweighter.calibrated(inputs)
        weights = reweighter.clip(calibrated)
        evaluation.weights = weights[order]
        evaluation.summary["reweighted"] = {
            "weights": weight_summary(weights, calibrated), "fit": reweighter.summary,
            "classifier": classifier_two_sample_test(truth_inputs, inputs, seed=seed, generated_weights=weights),
            "observables": observable_table(process, truth, evaluation.observables, floors, evaluation.weights)}
    event_metrics = whole_event_metrics(process, truth.events, first_member, seed)
    if event_metrics:
        evaluation.summary["event_metrics"] = event_metrics
    return evaluation


def coverage_truths_metrics(process: Process, n_events: int, bands: dict[str, BandHistogram], n_truths: int,
                            seed: int) -> dict[str, dict[str, float]]:
    """Per observable of ``bands`` (name → its ensemble band), the band's coverage over
    ``n_truths`` truth samples of ``n_events`` events, drawn afresh
    (:func:`~bayesgen.validation.metrics.coverage_over_truths`). Only a Monte-Carlo process
    draws independent ones: a file's held-out part would give overlapping subsets, and is
    refused (:func:`check_independent_truths`)."""
    check_independent_truths(process)
    histograms: dict[str, list[Histogram]] = {name: [] for name in bands}
    for k in range(n_truths):   # one truth sample in memory at a time
        sample = Truth.draw(process, n_events, derive_seed(seed, "coverage-truth", k))
        for name, band in bands.items():
            histograms[name].append(sample.histogram(name, band.edges))
    return {name: coverage_over_truths(histograms[name], band) for name, band in bands.items()}


def check_independent_truths(process: Process) -> None:
    """Refuse a coverage over truth samples where the truth comes from a file's held-out part
    (a process whose :meth:`~bayesgen.core.process.Process.holdout` is not itself)."""
    if process.holdout() is not process:
        raise ConfigError(f"{process.name}: a coverage over truth samples needs independent ones, which only a "
                          "Monte-Carlo process draws; this one takes its truth from a file's held-out part")


def whole_event_metrics(process: Process, truth_events: np.ndarray, generated_events: np.ndarray,
                        seed: int) -> dict[str, Any]:
    """Metrics of the events' detector views (:func:`~bayesgen.validation.detector.view_metrics`)
    and the process's own :meth:`~bayesgen.core.process.Process.event_metrics`."""
    truth_view = process.detector_view(truth_events)
    metrics = {} if truth_view is None else view_metrics(truth_view, process.detector_view(generated_events), seed)
    return {**metrics, **process.event_metrics(truth_events, generated_events, seed)}


def plot_overlays(process: Process, truth: Truth, evaluations: dict[str, Evaluation], out: Path,
                  n_generated: int, progress: bool = False) -> list[Path]:
    """One PNG per observable defined for at least :data:`MIN_DEFINED` truth events: truth and
    every labelled generator (with its band), ratio panel with the truth-vs-truth floor for
    ``n_generated`` generated events, √s in the title; return the paths written."""
    names = [name for name in process.binnings if len(defined(truth.observables[name])) >= MIN_DEFINED]
    paths = []
    for name in progress_bar(progress, iterable=names, desc="plotting", unit="plot"):
        binning = process.binnings[name]
        edges = binning.edges
        paths.append(plot_observable(out / f"{name}.png", binning, truth.histogram(name, edges),
                                     {label: e.histogram(name, edges) for label, e in evaluations.items()},
                                     title=process.name, n_generated=n_generated, sqrt_s=process.sqrt_s))
    return paths


def validation_histograms(process: Process, truth: Truth, evaluation: Evaluation) -> dict[str, dict[str, hist.Hist]]:
    """Per observable, the truth's and the model's histograms as :class:`hist.Hist`
    (``{observable: {sample: h}}``, samples as in :mod:`bayesgen.validation.histfile`)."""
    histograms = {}
    for name, binning in process.binnings.items():
        edges = binning.edges
        generated = evaluation.histogram(name, edges)
        pooled = generated if isinstance(generated, Histogram) else Histogram.fill(
            defined(evaluation.observables[name]), edges)
        histograms[name] = sample_histograms(name, binning.label, truth.histogram(name, edges), pooled,
                                             generated if isinstance(generated, BandHistogram) else None)
    return histograms


class Report(dict):
    """What :func:`validate` returns: ``metrics.json``'s content (this dictionary), and

    * ``histograms[observable][sample]``: the validation histograms as :class:`hist.Hist`,
      samples ``truth``, ``generated`` and, with ``draws > 1``, ``band_mean`` and
      ``band_sigma_pred`` (see :mod:`bayesgen.validation.histfile`), e.g.
      ``report.histograms["m_mumu"]["truth"].plot()``;
    * ``out``: the report folder; ``plots``: the PNGs written in it.
    """

    def __init__(self, metrics: dict[str, Any], histograms: dict[str, dict[str, hist.Hist]], out: Path,
                 plots: list[Path]):
        super().__init__(metrics)
        self.histograms, self.out, self.plots = histograms, out, plots


def report_dir(run_dir: str | Path, config: ValidateConfig) -> Path:
    """Where the report goes: ``--out``, else ``RUN/report``."""
    return Path(config.out) if config.out else Path(run_dir) / "report"


def write_report(out: Path, process: Process, truth: Truth, evaluation: Evaluation, label: str,
                 progress: bool = False) -> Report:
    """Write ``metrics.json`` (the evaluation's summary), one PNG per observable, ``histograms.root``
    and, for a process with a detector view, ``examples.png`` into the folder ``out``; return them
    as a :class:`Report`."""
    out.mkdir(exist_ok=True)
    plots = plot_overlays(process, truth, {label: evaluation}, out, evaluation.summary["floor"]["n_generated"],
                          progress)
    truth_view = process.detector_view(truth.events)
    if truth_view is not None:
        plot_view_examples(truth_view, process.detector_view(evaluation.events), out / "examples.png")
    histograms = validation_histograms(process, truth, evaluation)
    write_root(out / "histograms.root", root_entries(histograms))
    write_json(out / "metrics.json", evaluation.summary)
    return Report(evaluation.summary, histograms, out, plots)
