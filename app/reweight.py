"""``bayesgen reweight``: fit the classifier weights of a trained run (see
:mod:`bayesgen.validation.reweighting`) to its training events against events it generates."""
from __future__ import annotations

from pathlib import Path

from bayesgen.core.seeding import derive_seed
from bayesgen.engine.acceleration import resolved_precision
from bayesgen.engine.config import GenerateConfig, ReweightConfig
from bayesgen.engine.generation import Weigh, generate_events
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import training_events
from bayesgen.validation.classifier import classifier_inputs
from bayesgen.validation.reweighting import Reweighter, fit_weights, reweighter_path


def fit_reweighter(run_dir: str | Path, config: ReweightConfig) -> Reweighter:
    """Fit the classifier weights of a trained run: its training events (drawn again from its
    seed) against ``config.events`` events it generates; the summary records the settings."""
    model = TrainedModel.load(run_dir, config.device)
    process = model.process
    truth, truth_weights = training_events(process, model.config)
    precision = resolved_precision(model.sampler.device, config.precision)
    generated, stats = generate_events(model, config.events or len(truth), config.batch_size,
                                       derive_seed(config.seed, "reweight-generate"), config.sample_steps,
                                       config.solver, precision=precision)
    reweighter = fit_weights(classifier_inputs(process, truth), classifier_inputs(process, generated.events),
                             config.seed, config.epochs, truth_weights)
    reweighter.summary.update(sample_steps=config.sample_steps, solver=config.solver,
                              generation_events_per_s=stats.events_per_second,
                              out_of_support_fraction=stats.out_of_support_fraction)
    return reweighter


def reweight(run_dir: str | Path, config: ReweightConfig) -> tuple[Reweighter, Path]:
    """Fit the classifier weights of ``run_dir`` and write them to ``config.out`` (by default
    ``RUN/reweighter.pt``); return them and the path."""
    reweighter = fit_reweighter(run_dir, config)
    return reweighter, reweighter.save(config.out or reweighter_path(run_dir))


def classifier_weights(run: str | Path, config: GenerateConfig) -> Weigh | None:
    """With ``config.reweight``, the classifier weights that ``reweight`` fitted for ``run``."""
    if not config.reweight:
        return None
    reweighter = Reweighter.load(reweighter_path(run))
    reweighter.check_sampling(config.sample_steps, config.solver)
    return reweighter.event_weights
