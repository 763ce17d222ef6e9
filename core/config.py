"""Options of every subcommand: the one place their defaults live.

Values come from the dataclass defaults, then a TOML file (``--config``; top-level keys and a
table named after the subcommand, e.g. ``[train]``), then command-line flags.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bayesgen.core.acceleration import check_speed_options
from bayesgen.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")


@dataclass
class TrainConfig:
    """How to train one model into a run directory."""

    process: str = "z_mumu"
    sampler: str = "ddpm"
    backbone: str = "mlp"
    steps: int = 5000
    batch_size: int = 1024
    lr: float = 1e-3
    events: int = 200_000
    bayesian: bool = False
    seed: int = 0
    device: str = "auto"
    distributed: bool = False
    out: str = "runs/latest"
    resume: bool = False
    checkpoint_every: int = 500
    ema_decay: float = 0.999
    warmup_steps: int = 100
    weight_decay: float = 0.0
    process_options: dict = field(default_factory=dict)
    backbone_options: dict = field(default_factory=dict)
    sampler_options: dict = field(default_factory=dict)
    bayes_options: dict = field(default_factory=dict)  # prior_std, init_log_sigma, deterministic_layers

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "lr", "events", "checkpoint_every")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class GenerateConfig:
    """How to generate events from a trained run."""

    events: int = 100_000
    draws: int = 1
    sample_steps: int | None = None
    solver: str | None = None
    batch_size: int | None = None  # rows per chunk; None: from free GPU memory (50,000 on a CPU)
    precision: str = "auto"        # auto (bf16 on CUDA), fp32 or bf16
    compile: str = "none"          # none, default, reduce-overhead (CUDA graphs) or max-autotune
    seed: int = 1
    device: str = "auto"
    distributed: bool = False
    out: str = "events.root"

    def __post_init__(self):
        _positive(self, "events", "draws", "sample_steps", "batch_size")
        check_speed_options(self.precision, self.compile)


@dataclass
class ValidateConfig:
    """How to validate a trained run against fresh truth events."""

    events: int = 100_000
    draws: int = 1
    sample_steps: int | None = None
    solver: str | None = None
    batch_size: int | None = None
    precision: str = "auto"
    compile: str = "none"
    seed: int = 2
    device: str = "auto"
    out: str | None = None

    def __post_init__(self):
        _positive(self, "events", "draws", "sample_steps", "batch_size")
        check_speed_options(self.precision, self.compile)


@dataclass
class CompareConfig:
    """How to compare several samplers on one process on identical footing: the same data,
    backbone, optimiser budget and number of generated events (or existing ``runs``)."""

    process: str = TrainConfig.process
    samplers: str = "ddpm,cfm,inn"
    backbone: str = TrainConfig.backbone
    steps: int = TrainConfig.steps
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    train_events: int = TrainConfig.events
    events: int = ValidateConfig.events
    bayesian: bool = TrainConfig.bayesian
    draws: int = ValidateConfig.draws
    sample_steps: int | None = None
    seed: int = TrainConfig.seed
    device: str = "auto"
    out: str = "compare"
    runs: list = field(default_factory=list)
    backbone_options: dict = field(default_factory=dict)
    # label in --samplers → its options; a label that is not a sampler's name names one with
    # sampler = "NAME" (e.g. [compare.sampler_options.ddpm_learned_sigma] sampler = "ddpm")
    sampler_options: dict = field(default_factory=dict)
    bayes_options: dict = field(default_factory=dict)

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "lr", "train_events", "events", "draws", "sample_steps")

    @property
    def sampler_names(self) -> list[str]:
        names = [name.strip() for name in self.samplers.split(",") if name.strip()]
        if not names and not self.runs:
            raise ConfigError("--samplers names no sampler")
        return names


C = TypeVar("C")


def read_toml(path: str | Path, config_class: type, section: str) -> dict[str, Any]:
    """Options for ``config_class`` from a TOML file: the top-level keys it knows (shared by all
    subcommands, so keys of other subcommands are skipped), updated by its ``[section]`` table
    (where every key must be one of its options)."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    sections = {"train", "generate", "validate", "compare"}
    known = {f.name for f in dataclasses.fields(config_class)}
    values = {k.replace("-", "_"): v for k, v in document.items() if k not in sections}
    values = {k: v for k, v in values.items() if k in known}
    values.update({k.replace("-", "_"): v for k, v in document.get(section, {}).items()})
    return values


def build(config_class: type[C], *layers: dict[str, Any]) -> C:
    """Instantiate ``config_class`` from defaults overridden by each layer in turn."""
    known = {f.name for f in dataclasses.fields(config_class)}
    values: dict[str, Any] = {}
    for layer in layers:
        unknown = sorted(set(layer) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {config_class.__name__}; "
                              f"known: {', '.join(sorted(known))}")
        values.update(layer)
    return config_class(**values)
