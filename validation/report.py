"""Validate trained runs against fresh truth: metrics per observable, a classifier test, plots.

``validate`` writes ``metrics.json`` and one ``NAME.png`` per observable for one run;
:mod:`bayesgen.validation.compare` uses the same pieces for several runs side by side.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayesgen.core.acceleration import compile_networks, resolved_precision
from bayesgen.core.config import ValidateConfig
from bayesgen.core.errors import DataError
from bayesgen.core.generation import generate_events
from bayesgen.core.io import check_output_path, write_json
from bayesgen.core.model import TrainedModel, count_parameters
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed
from bayesgen.validation.classifier import classifier_inputs, classifier_two_sample_test
from bayesgen.validation.floors import Floors, measure_floors, with_floors
from bayesgen.validation.histogram import BandHistogram, Histogram
from bayesgen.validation.metrics import band_metrics, observable_metrics
from bayesgen.validation.plots import plot_observable
from bayesgen.validation.reweighting import Reweighter, reweighter_path, weight_summary


MIN_DEFINED = 100  #: fewer defined values than this in either sample: the observable is not compared


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
    def draw(cls, process: Process, n_events: int, seed: int) -> "Truth":
        events = process.holdout().sample(n_events, seed=derive_seed(seed, "truth"))
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
    (for whole-event metrics and example pictures) and, when reweighted, the events' classifier
    weights (aligned with the observables)."""

    observables: dict[str, np.ndarray]
    draw: np.ndarray
    summary: dict[str, Any]
    events: np.ndarray
    weights: np.ndarray | None = None

    def histogram(self, name: str, edges: np.ndarray) -> Histogram | BandHistogram:
        """All events in one histogram, or the ensemble band when there are several draws."""
        draws = int(self.draw.max()) + 1
        values = self.observables[name]
        if draws == 1:
            return Histogram.fill(defined(values), edges)
        return BandHistogram.from_histograms(
            [Histogram.fill(defined(values[self.draw == m]), edges) for m in range(draws)])


def observable_table(process: Process, truth: Truth, observables: dict[str, np.ndarray], floors: Floors,
                     weights: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Per observable: the metrics of the generated ``observables`` (name → values ``(n,)``, NaN
    where undefined; with ``weights (n,)`` weighted) against the truth, beside their floors, with
    the numbers of events behind them."""
    per_observable = {}
    for name, binning in process.binnings.items():
        truth_values, generated_values = truth.observables[name], observables[name]
        present = ~np.isnan(generated_values)
        n_defined = min(len(defined(truth_values)), int(present.sum()))
        if n_defined < MIN_DEFINED:  # e.g. a third jet in a file with at most two
            per_observable[name] = {"skipped": f"defined for {len(defined(truth_values))} truth and "
                                               f"{int(present.sum())} generated events"}
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


def evaluate(model: TrainedModel, truth: Truth, config: ValidateConfig,
             reweighter: Reweighter | None = None) -> Evaluation:
    """Generate ``config.events`` events per ensemble member and measure them: metrics per
    observable (on all members' events pooled; with draws, the band's width and coverage too),
    each beside its truth-vs-truth floor for ``len(truth)`` and ``events × draws`` events and
    with the numbers of events behind it, the classifier AUC, generation speed and the model's
    size. With a ``reweighter`` the summary's ``reweighted`` holds the same metrics and AUC of
    the events weighted by it (beside the same floors), and the weights' spread."""
    precision = resolved_precision(model.sampler.device, config.precision)
    generated, stats = generate_events(model, config.events, config.batch_size, derive_seed(config.seed, "generate"),
                                       config.sample_steps, config.solver, config.draws, precision,
                                       config.keep_unphysical)
    process = model.process
    if stats.n_out_of_support:
        warnings.warn(f"{model.config.process}: {stats.describe_out_of_support(config.keep_unphysical)}; the "
                      "metrics describe the events written", UserWarning, stacklevel=2)
    observables, finite = finite_observables(process, generated.events)
    n_dropped = int((~finite).sum())
    if n_dropped > len(finite) // 2:
        raise DataError(f"the {model.config.sampler} model generated {n_dropped:,} of {len(finite):,} events "
                        "with non-finite observables; it needs more training before it can be validated")
    order = np.random.default_rng(derive_seed(config.seed, "pool")).permutation(int(finite.sum()))
    first_member = generated.events[finite & (generated.draw == 0)]
    evaluation = Evaluation({name: values[order] for name, values in observables.items()},
                            generated.draw[finite][order], {}, first_member)
    floors = truth.floors(config.events * config.draws)
    per_observable = observable_table(process, truth, evaluation.observables, floors)
    if config.draws > 1:
        for name, metrics in per_observable.items():
            if "skipped" not in metrics:
                edges = process.binnings[name].edges
                metrics.update(band_metrics(truth.histogram(name, edges), evaluation.histogram(name, edges)))
    truth_inputs = classifier_inputs(process, truth.events)
    evaluation.summary.update({
        "process": model.config.process, "sampler": model.config.sampler,
        "backbone": model.config.backbone, "bayesian": model.config.bayesian, "draws": config.draws,
        "n_events": config.events, "n_truth": len(truth.events), "n_generated": int(finite.sum()),
        "floor": floors.summary(), "training_steps": model.step, "training_seconds": model.train_seconds,
        "training_cpu_seconds": model.train_cpu_seconds,
        "parameters": count_parameters(model.sampler),
        "sample_steps": config.sample_steps, "solver": config.solver, "precision": precision,
        "evaluations_per_event": stats.evaluations_per_event,
        "generation_events_per_s": stats.events_per_second, "n_nonfinite_dropped": n_dropped,
        "out_of_support_fraction": stats.out_of_support_fraction,
        "classifier": classifier_two_sample_test(truth_inputs, classifier_inputs(process, generated.events),
                                                 seed=config.seed),
        "observables": per_observable,
    })
    if reweighter is not None:
        reweighter.check_sampling(config.sample_steps, config.solver)
        inputs = classifier_inputs(process, generated.events[finite])
        calibrated = reweighter.calibrated(inputs)
        weights = reweighter.clip(calibrated)
        evaluation.weights = weights[order]
        evaluation.summary["reweighted"] = {
            "weights": weight_summary(weights, calibrated), "fit": reweighter.summary,
            "classifier": classifier_two_sample_test(truth_inputs, inputs, seed=config.seed, generated_weights=weights),
            "observables": observable_table(process, truth, evaluation.observables, floors, evaluation.weights)}
    event_metrics = process.event_metrics(truth.events, first_member, config.seed)
    if event_metrics:
        evaluation.summary["event_metrics"] = event_metrics
    return evaluation


def plot_overlays(process: Process, truth: Truth, evaluations: dict[str, Evaluation], out: Path,
                  n_generated: int) -> None:
    """One PNG per observable: truth and every labelled generator (with its band), ratio panel
    with the truth-vs-truth floor for ``n_generated`` generated events."""
    for name, binning in process.binnings.items():
        if len(defined(truth.observables[name])) < MIN_DEFINED:
            continue
        edges = binning.edges
        plot_observable(out / f"{name}.png", binning, truth.histogram(name, edges),
                        {label: e.histogram(name, edges) for label, e in evaluations.items()},
                        title=process.name, n_generated=n_generated)


def report_dir(run_dir: str | Path, config: ValidateConfig) -> Path:
    """Where the report goes: ``--out``, else ``RUN/report``."""
    return Path(config.out) if config.out else Path(run_dir) / "report"


def validate(run_dir: str | Path, config: ValidateConfig) -> dict[str, Any]:
    """Write ``metrics.json`` and the plots for ``run_dir``; return the metrics."""
    model = TrainedModel.load(run_dir, config.device)
    reweighter = Reweighter.load(reweighter_path(run_dir)) if config.reweight else None
    compile_networks(model.sampler, config.compile)
    out = check_output_path(report_dir(run_dir, config))
    truth = Truth.draw(model.process, config.events, config.seed)
    evaluation = evaluate(model, truth, config, reweighter)
    out.mkdir(exist_ok=True)
    plot_overlays(model.process, truth, {f"{model.config.sampler} ({model.config.backbone})": evaluation}, out,
                  config.events * config.draws)
    model.process.plot_examples(truth.events, evaluation.events, out)
    write_json(out / "metrics.json", evaluation.summary)
    return evaluation.summary
