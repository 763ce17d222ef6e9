"""Validate a trained run: generate, compare every observable with fresh truth, write a report.

The report directory gets ``metrics.json`` and one ``NAME.png`` per observable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bayesgen.core.config import ValidateConfig
from bayesgen.core.generation import generate_events
from bayesgen.core.io import check_output_path, write_json
from bayesgen.core.model import TrainedModel
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed
from bayesgen.validation.histogram import Histogram
from bayesgen.validation.metrics import observable_metrics
from bayesgen.validation.plots import plot_observable


def finite_observables(process: Process, events: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Observables of the events whose every observable is finite, and how many were dropped."""
    observables = process.observables(events)
    finite = np.logical_and.reduce([np.isfinite(v) for v in observables.values()])
    return {name: values[finite] for name, values in observables.items()}, int((~finite).sum())


def compare_observables(process: Process, truth: dict[str, np.ndarray],
                        generated: dict[str, dict[str, np.ndarray]], out: Path, title: str = ""
                        ) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per generator label and observable; one overlay PNG per observable in ``out``."""
    metrics: dict[str, dict[str, dict[str, float]]] = {label: {} for label in generated}
    for name, binning in process.binnings.items():
        edges = binning.edges
        for label, observables in generated.items():
            metrics[label][name] = observable_metrics(truth[name], observables[name], edges)
        plot_observable(out / f"{name}.png", binning, Histogram.fill(truth[name], edges),
                        {label: Histogram.fill(obs[name], edges) for label, obs in generated.items()},
                        title=title)
    return metrics


def report_dir(run_dir: str | Path, config: ValidateConfig) -> Path:
    """Where the report goes: ``--out``, else ``RUN/report``."""
    return Path(config.out) if config.out else Path(run_dir) / "report"


def validate(run_dir: str | Path, config: ValidateConfig) -> dict[str, Any]:
    """Write ``metrics.json`` and the plots for ``run_dir``; return the metrics."""
    model = TrainedModel.load(run_dir, config.device)
    out = check_output_path(report_dir(run_dir, config))
    events, stats = generate_events(model, config.events, config.batch_size,
                                    derive_seed(config.seed, "generate"), config.sample_steps, config.solver)
    truth_events = model.process.sample(config.events, seed=derive_seed(config.seed, "truth"))
    truth, _ = finite_observables(model.process, truth_events)
    generated, n_dropped = finite_observables(model.process, events)
    out.mkdir(exist_ok=True)
    label = f"{model.config.sampler} ({model.config.backbone})"
    per_observable = compare_observables(model.process, truth, {label: generated}, out,
                                         title=f"{model.process.name}")[label]
    report = {
        "process": model.config.process, "sampler": model.config.sampler,
        "backbone": model.config.backbone, "n_events": config.events,
        "training_steps": model.step, "sample_steps": config.sample_steps, "solver": config.solver,
        "evaluations_per_event": stats.evaluations_per_event,
        "generation_events_per_s": stats.events_per_second, "n_nonfinite_dropped": n_dropped,
        "observables": per_observable,
    }
    write_json(out / "metrics.json", report)
    return report
