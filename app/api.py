"""The Python API: the CLI's subcommands as functions taking the same options as keywords."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayesgen.engine.config import (CompareConfig, GenerateConfig, LaplaceConfig, ReweightConfig, TrainConfig,
                                   ValidateConfig, build)
from bayesgen.engine.device import set_threads
from bayesgen.engine.generation import GenerationStats
from bayesgen.engine.generation import generate as _generate
from bayesgen.engine.training import train as _train

if TYPE_CHECKING:
    from bayesgen.validation.report import Report


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
    from bayesgen.app.reweight import classifier_weights

    return _generate(run, config, progress=progress, weigh=classifier_weights(run, config))


def reweight(run: str | Path, **options: Any) -> Path:
    """Fit the classifier weights of ``run`` (options as :class:`ReweightConfig`) and write them
    to ``out`` (by default ``RUN/reweighter.pt``); return that path."""
    from bayesgen.app.reweight import reweight as _reweight

    return _reweight(run, configure(ReweightConfig, options))[1]


def laplace(run: str | Path, **options: Any) -> Path:
    """Make a Bayesian run from the trained deterministic ``run`` by the Laplace posterior of its
    output layers (options as :class:`LaplaceConfig`); return the new run directory."""
    from bayesgen.engine.laplace import laplace as _laplace

    return _laplace(run, configure(LaplaceConfig, options))[0]


def compare(progress: bool = True, **options: Any) -> dict[str, Any]:
    """Compare samplers side by side (options as :class:`CompareConfig`); return compare.json's content."""
    from bayesgen.app.compare import compare as _compare

    return _compare(configure(CompareConfig, options), progress=progress)


def validate(run: str | Path, progress: bool = True, **options: Any) -> Report:
    """Validate ``run`` (options as :class:`ValidateConfig`); return the
    :class:`~bayesgen.validation.report.Report`: the metrics dictionary, with the histograms as
    ``hist`` objects in ``report.histograms[observable][sample]``."""
    from bayesgen.app.validate import validate as _validate

    return _validate(run, configure(ValidateConfig, options), progress=progress)
