"""Validate trained runs against fresh truth: metrics per observable, a classifier test, plots.

``validate`` writes ``metrics.json`` and one ``NAME.png`` per observable for one run;
:mod:`bayesgen.validation.compare` uses the same pieces for several runs side by side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayesgen.core.config import ValidateConfig
from bayesgen.core.errors import DataError
from bayesgen.core.generation import generate_events
from bayesgen.core.io import check_output_path, write_json
from bayesgen.core.model import TrainedModel, count_parameters
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed
from bayesgen.validation.classifier import classifier_two_sample_test
from bayesgen.validation.histogram import Histogram
from bayesgen.validation.metrics import observable_metrics
from bayesgen.validation.plots import plot_observable


def finite_observables(process: Process, events: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Observables of the events whose every observable is finite, and how many were dropped."""
    observables = process.observables(events)
    finite = np.logical_and.reduce([np.isfinite(v) for v in observables.values()])
    return {name: values[finite] for name, values in observables.items()}, int((~finite).sum())


def classifier_inputs(process: Process, events: np.ndarray) -> np.ndarray:
    """What the two-sample classifier sees: the network features and every observable."""
    with np.errstate(all="ignore"):
        observables = process.observables(events)
        return np.column_stack([process.to_features(events), *observables.values()])


@dataclass
class Truth:
    """Fresh truth events of a process and their observables."""

    events: np.ndarray
    observables: dict[str, np.ndarray]

    @classmethod
    def draw(cls, process: Process, n_events: int, seed: int) -> "Truth":
        events = process.sample(n_events, seed=derive_seed(seed, "truth"))
        return cls(events, finite_observables(process, events)[0])


@dataclass
class Evaluation:
    """One trained model measured against truth."""

    observables: dict[str, np.ndarray]
    summary: dict[str, Any]


def evaluate(model: TrainedModel, truth: Truth, config: ValidateConfig) -> Evaluation:
    """Generate ``config.events`` events and measure them: metrics per observable, the classifier
    AUC, generation speed and the model's size."""
    events, stats = generate_events(model, config.events, config.batch_size,
                                    derive_seed(config.seed, "generate"), config.sample_steps, config.solver)
    generated, n_dropped = finite_observables(model.process, events)
    if n_dropped > config.events // 2:
        raise DataError(f"the {model.config.sampler} model generated {n_dropped:,} of {config.events:,} events "
                        "with non-finite observables; it needs more training before it can be validated")
    process = model.process
    summary = {
        "process": model.config.process, "sampler": model.config.sampler,
        "backbone": model.config.backbone, "n_events": config.events,
        "training_steps": model.step, "training_seconds": model.train_seconds,
        "parameters": count_parameters(model.sampler),
        "sample_steps": config.sample_steps, "solver": config.solver,
        "evaluations_per_event": stats.evaluations_per_event,
        "generation_events_per_s": stats.events_per_second, "n_nonfinite_dropped": n_dropped,
        "classifier": classifier_two_sample_test(classifier_inputs(process, truth.events),
                                                 classifier_inputs(process, events), seed=config.seed),
        "observables": {name: observable_metrics(truth.observables[name], generated[name], binning.edges)
                        for name, binning in process.binnings.items()},
    }
    return Evaluation(generated, summary)


def plot_overlays(process: Process, truth: Truth, generated: dict[str, dict[str, np.ndarray]], out: Path) -> None:
    """One PNG per observable: truth and every labelled generator, with a ratio panel."""
    for name, binning in process.binnings.items():
        edges = binning.edges
        plot_observable(out / f"{name}.png", binning, Histogram.fill(truth.observables[name], edges),
                        {label: Histogram.fill(obs[name], edges) for label, obs in generated.items()},
                        title=process.name)


def report_dir(run_dir: str | Path, config: ValidateConfig) -> Path:
    """Where the report goes: ``--out``, else ``RUN/report``."""
    return Path(config.out) if config.out else Path(run_dir) / "report"


def validate(run_dir: str | Path, config: ValidateConfig) -> dict[str, Any]:
    """Write ``metrics.json`` and the plots for ``run_dir``; return the metrics."""
    model = TrainedModel.load(run_dir, config.device)
    out = check_output_path(report_dir(run_dir, config))
    truth = Truth.draw(model.process, config.events, config.seed)
    evaluation = evaluate(model, truth, config)
    out.mkdir(exist_ok=True)
    plot_overlays(model.process, truth, {f"{model.config.sampler} ({model.config.backbone})":
                                         evaluation.observables}, out)
    write_json(out / "metrics.json", evaluation.summary)
    return evaluation.summary
