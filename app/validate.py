"""``validate``: generate events with a trained run, and hand them to validation to measure.

The engine generates (:func:`~bayesgen.engine.generation.generate_events`) and evaluates the
model's likelihood on held-out truth (:mod:`bayesgen.engine.likelihood`); validation measures
the arrays (:func:`~bayesgen.validation.report.measure`) and writes the report folder. The
summary in ``metrics.json`` is both: the run and its generation (sampler, steps, speed, size,
likelihood), then the measurement.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from bayesgen.core.seeding import derive_seed
from bayesgen.engine.acceleration import compile_networks, resolved_precision
from bayesgen.engine.config import ValidateConfig
from bayesgen.engine.generation import generate_events
from bayesgen.engine.io import check_output_path
from bayesgen.engine.likelihood import likelihood_summary
from bayesgen.engine.linearised import check_linearisable, linearised_member_weights
from bayesgen.engine.model import TrainedModel, count_parameters
from bayesgen.validation.report import (Evaluation, Report, Truth, check_independent_truths, draw_truth,
                                        generated_events, measure, report_dir, write_report)
from bayesgen.validation.reweighting import Reweighter, reweighter_path


def evaluate(model: TrainedModel, truth: Truth, config: ValidateConfig, progress: bool = False,
             reweighter: Reweighter | None = None) -> Evaluation:
    """Generate :func:`~bayesgen.validation.report.generated_events` events per ensemble member
    (with ``config.band`` linearised, as many in all from the posterior-mean network, shared by the
    members under their linearised weights) and measure them against ``truth`` (with
    ``reweighter``, weighted too); the summary adds the run's facts, generation speed, the model's
    size and its likelihood on the truth. With ``progress``, bars on a terminal."""
    if reweighter is not None:
        reweighter.check_sampling(config.sample_steps, config.solver)
    if config.coverage_truths:
        check_independent_truths(model.process)   # before the generation, not after
    linearised = config.band == "linearised" and config.draws > 1
    if linearised:
        check_linearisable(model)   # before the generation, not after
    precision = resolved_precision(model.sampler.device, config.precision)
    n_events = generated_events(config, len(truth.events))
    seed = derive_seed(config.seed, "generate")
    generated, stats = generate_events(model, n_events * config.draws if linearised else n_events,
                                       config.batch_size, seed, config.sample_steps, config.solver,
                                       1 if linearised else config.draws, precision, config.keep_unphysical,
                                       progress=progress)
    member_weights = (linearised_member_weights(model, generated.events, config.draws, derive_seed(seed, "ensemble"),
                                                progress) if linearised else None)
    if stats.n_out_of_support:
        warnings.warn(f"{model.config.process}: {stats.describe_out_of_support(config.keep_unphysical)}; the "
                      "metrics describe the events written", UserWarning, stacklevel=2)
    evaluation = measure(model.process, truth, generated.events, generated.draw, config.draws, config.seed,
                         f"the {model.config.sampler} model", progress, reweighter, config.coverage_truths,
                         member_weights)
    evaluation.summary = {
        "process": model.config.process, "sampler": model.config.sampler,
        "backbone": model.config.backbone, "bayesian": model.config.bayesian, "n_events": n_events,
        **({"band": config.band} if config.draws > 1 else {}),
        "training_steps": model.step, "training_seconds": model.train_seconds,
        "training_cpu_seconds": model.train_cpu_seconds,
        "parameters": count_parameters(model.sampler),
        "sample_steps": config.sample_steps, "solver": config.solver, "precision": precision,
        "evaluations_per_event": stats.evaluations_per_event,
        "generation_events_per_s": stats.events_per_second,
        "out_of_support_fraction": stats.out_of_support_fraction,
        "likelihood": likelihood_summary(model, truth.events, config.seed),
        **evaluation.summary,
    }
    return evaluation


def validate(run_dir: str | Path, config: ValidateConfig, progress: bool = True) -> Report:
    """Write ``metrics.json``, the plots and ``histograms.root`` for ``run_dir`` into
    ``config.out`` (``RUN/report`` by default; progress bars on a terminal with ``progress``);
    return them as a :class:`~bayesgen.validation.report.Report`."""
    model = TrainedModel.load(run_dir, config.device)
    compile_networks(model.sampler, config.compile)
    out = check_output_path(report_dir(run_dir, config))
    truth = draw_truth(model.process, config)
    reweighter = Reweighter.load(reweighter_path(run_dir)) if config.reweight else None
    evaluation = evaluate(model, truth, config, progress, reweighter)
    return write_report(out, model.process, truth, evaluation, f"{model.config.sampler} ({model.config.backbone})",
                        progress)
