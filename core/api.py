"""The Python API: the CLI's subcommands as functions taking the same options as keywords."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bayesgen.core.config import CompareConfig, GenerateConfig, ReweightConfig, TrainConfig, ValidateConfig, build
from bayesgen.core.device import set_threads
from bayesgen.core.generation import GenerationStats, Weigh
from bayesgen.core.generation import generate as _generate
from bayesgen.core.training import train as _train


def configure(config_class: type, *layers: dict[str, Any]):
    """The options of one subcommand (see :func:`build`), with torch's CPU threads set from them."""
    config = build(config_class, *layers)
    set_threads(config.threads)
    return config


def train(progress: bool = True, **options: Any) -> Path:
    """Train a model (options as :class:`TrainConfig`); return the run directory."""
    return _train(configure(TrainConfig, options), progress=progress)


def generate(run: str | Path, progress: bool = True, **options: Any) -> GenerationStats:
    """Write generated events of ``run`` to ``out`` (options as :class:`GenerateConfig`)."""
    config = configure(GenerateConfig, options)
    return _generate(run, config, progress=progress, weigh=classifier_weights(run, config))


def classifier_weights(run: str | Path, config: GenerateConfig) -> Weigh | None:
    """With ``config.reweight``, the classifier weights that ``reweight`` fitted for ``run``."""
    if not config.reweight:
        return None
    from bayesgen.validation.reweighting import Reweighter, reweighter_path

    reweighter = Reweighter.load(reweighter_path(run))
    reweighter.check_sampling(config.sample_steps, config.solver)
    return reweighter.event_weights


def reweight(run: str | Path, **options: Any) -> Path:
    """Fit the classifier weights of ``run`` (options as :class:`ReweightConfig`) and write them
    to ``out`` (by default ``RUN/reweighter.pt``); return that path."""
    from bayesgen.validation.reweighting import reweight as _reweight

    return _reweight(run, configure(ReweightConfig, options))[1]


def compare(progress: bool = True, **options: Any) -> dict[str, Any]:
    """Compare samplers side by side (options as :class:`CompareConfig`); return compare.json's content."""
    from bayesgen.validation.compare import compare as _compare

    return _compare(configure(CompareConfig, options), progress=progress)


def validate(run: str | Path, **options: Any) -> dict[str, Any]:
    """Validate ``run`` (options as :class:`ValidateConfig`); return the metrics dictionary."""
    from bayesgen.validation.report import validate as _validate

    return _validate(run, configure(ValidateConfig, options))
