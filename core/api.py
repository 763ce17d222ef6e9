"""The Python API: the CLI's subcommands as functions taking the same options as keywords."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bayesgen.core.config import CompareConfig, GenerateConfig, TrainConfig, ValidateConfig, build
from bayesgen.core.generation import GenerationStats
from bayesgen.core.generation import generate as _generate
from bayesgen.core.training import train as _train


def train(progress: bool = True, **options: Any) -> Path:
    """Train a model (options as :class:`TrainConfig`); return the run directory."""
    return _train(build(TrainConfig, options), progress=progress)


def generate(run: str | Path, progress: bool = True, **options: Any) -> GenerationStats:
    """Write generated events of ``run`` to ``out`` (options as :class:`GenerateConfig`)."""
    return _generate(run, build(GenerateConfig, options), progress=progress)


def compare(progress: bool = True, **options: Any) -> dict[str, Any]:
    """Compare samplers side by side (options as :class:`CompareConfig`); return compare.json's content."""
    from bayesgen.validation.compare import compare as _compare

    return _compare(build(CompareConfig, options), progress=progress)


def validate(run: str | Path, **options: Any) -> dict[str, Any]:
    """Validate ``run`` (options as :class:`ValidateConfig`); return the metrics dictionary."""
    from bayesgen.validation.report import validate as _validate

    return _validate(run, build(ValidateConfig, options))
