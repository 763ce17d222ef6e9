"""Options of every subcommand: the one place their defaults live.

Values come from the dataclass defaults, then the process's own training defaults
(:attr:`Process.training_defaults`, for ``train`` and ``compare``), then a TOML file
(``--config``; top-level keys and a table named after the subcommand, e.g. ``[train]``), then
command-line flags. Every key and value is checked: an unknown key is an error naming the
closest valid one, a value of the wrong type names its key and the type expected.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bayesgen.core import registry
from bayesgen.core.errors import ConfigError, PluginError
from bayesgen.core.options import check_fields, check_names, did_you_mean
from bayesgen.engine.acceleration import check_speed_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _positive(config: Any, *names: str) -> None:
    check_fields(config)
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
    threads: int | None = None  # CPU threads of torch; None: torch's default
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
        _positive(self, "steps", "batch_size", "lr", "events", "checkpoint_every", "threads")
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
    threads: int | None = None
    distributed: bool = False
    keep_unphysical: bool = False  # write events outside the process's support, flagged, instead of drawing again
    out: str = "events.root"

    def __post_init__(self):
        _positive(self, "events", "draws", "sample_steps", "batch_size", "threads")
        check_speed_options(self.precision, self.compile)


@dataclass
class ValidateConfig:
    """How to validate a trained run against fresh truth events.

    ``events`` generated events per ensemble member; ``None``: ten per truth event, at most
    100,000. ``truth_events`` truth events; ``None``: ``events`` if given, else 100,000, and
    from a file's held-out part (which holds only so many) all it has up to that number (see
    :mod:`bayesgen.validation.report`)."""

    events: int | None = None
    truth_events: int | None = None
    draws: int = 1
    sample_steps: int | None = None
    solver: str | None = None
    batch_size: int | None = None
    precision: str = "auto"
    compile: str = "none"
    seed: int = 2
    device: str = "auto"
    threads: int | None = None
    keep_unphysical: bool = False  # measure every generated event, those outside the support too
    out: str | None = None

    def __post_init__(self):
        _positive(self, "events", "truth_events", "draws", "sample_steps", "batch_size", "threads")
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
    events: int | None = ValidateConfig.events
    truth_events: int | None = ValidateConfig.truth_events
    bayesian: bool = TrainConfig.bayesian
    draws: int = ValidateConfig.draws
    sample_steps: int | None = None
    seed: int = TrainConfig.seed
    device: str = "auto"
    threads: int | None = None
    keep_unphysical: bool = ValidateConfig.keep_unphysical
    out: str = "compare"
    runs: list = field(default_factory=list)
    backbone_options: dict = field(default_factory=dict)
    # label in --samplers → its options; a label that is not a sampler's name names one with
    # sampler = "NAME" (e.g. [compare.sampler_options.ddpm_learned_sigma] sampler = "ddpm")
    sampler_options: dict = field(default_factory=dict)
    bayes_options: dict = field(default_factory=dict)

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "lr", "train_events", "events", "truth_events", "draws", "sample_steps",
                  "threads")
        for name, options in self.sampler_options.items():
            if name not in self.sampler_names or not isinstance(options, dict):
                raise ConfigError(f"sampler_options of compare must hold one table per compared sampler "
                                  f"({self.samplers}), e.g. [compare.sampler_options.ddpm]; got {name!r}")

    @property
    def sampler_names(self) -> list[str]:
        names = [name.strip() for name in self.samplers.split(",") if name.strip()]
        if not names and not self.runs:
            raise ConfigError("--samplers names no sampler")
        return names


C = TypeVar("C")
SECTIONS = {"train": TrainConfig, "generate": GenerateConfig, "validate": ValidateConfig, "compare": CompareConfig}


def option_names(config_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def read_toml(path: str | Path, config_class: type, section: str) -> dict[str, Any]:
    """Options for ``config_class`` from a TOML file: the top-level keys it knows (shared by all
    subcommands, so keys of other subcommands are skipped), updated by its ``[section]`` table.
    Every key of the file must be an option of some subcommand (top level) or of its table's
    subcommand; ``-`` and ``_`` are the same in a key."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    every_option = set().union(*map(option_names, SECTIONS.values()))
    top = {k.replace("-", "_"): v for k, v in document.items() if k not in SECTIONS}
    for name, value in top.items():
        if isinstance(value, dict) and name not in every_option:
            raise ConfigError(f"unknown table [{name}] in {path}{did_you_mean(name, SECTIONS)}; tables: "
                              f"{', '.join(SECTIONS)}, or an option's such as [train.process_options]")
    check_names(top, every_option, f"in {path}")
    for name, table in ((k, v) for k, v in document.items() if k in SECTIONS):
        if not isinstance(table, dict):
            raise ConfigError(f"{name} in {path} must be a table ([{name}]), got {table!r}")
        check_names([k.replace("-", "_") for k in table], option_names(SECTIONS[name]), f"in [{name}] of {path}")
    known = option_names(config_class)
    values = {k: v for k, v in top.items() if k in known}
    values.update({k.replace("-", "_"): v for k, v in document.get(section, {}).items()})
    return values


def build(config_class: type[C], *layers: dict[str, Any]) -> C:
    """Instantiate ``config_class`` from its defaults, then (``train``, ``compare``) the
    process's :attr:`~bayesgen.core.process.Process.training_defaults`, then each layer in turn."""
    known = option_names(config_class)
    values: dict[str, Any] = {}
    for layer in layers:
        check_names(layer, known, f"for {config_class.__name__}")
        values.update(layer)
    if config_class in (TrainConfig, CompareConfig):
        values = with_process_defaults(config_class, values)
    return config_class(**values)


def process_training_defaults(process: str) -> dict[str, Any]:
    """The training defaults that the process ``process`` declares, checked against
    :class:`TrainConfig`'s options."""
    defaults = dict(getattr(registry.registry().get("processes", process), "training_defaults", {}))
    unknown = sorted(set(defaults) - option_names(TrainConfig))
    if unknown:
        raise PluginError(f"the process plugin {process!r} declares training defaults for unknown "
                          f"option(s) {', '.join(unknown)}{did_you_mean(unknown[0], option_names(TrainConfig))}")
    return defaults


def with_process_defaults(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over the process's training defaults: plain options where ``values`` lacks
    them, the defaults' ``backbone_options`` / ``sampler_options`` (keyed by plugin name) for
    the backbone and sampler in use, under the options ``values`` gives for them."""
    process = values.get("process", TrainConfig.process)
    if not isinstance(process, str):
        return values  # the config's own type check names the problem
    defaults = process_training_defaults(process)
    backbone_options = defaults.pop("backbone_options", {})
    sampler_options = defaults.pop("sampler_options", {})
    if config_class is CompareConfig:
        defaults = {("train_events" if k == "events" else k): v for k, v in defaults.items()
                    if k in option_names(CompareConfig) or k == "events"}
    merged = {**defaults, **values}
    backbone = merged.get("backbone", TrainConfig.backbone)
    if isinstance(backbone, str) and isinstance(merged.get("backbone_options", {}), dict):
        merged["backbone_options"] = {**backbone_options.get(backbone, {}), **merged.get("backbone_options", {})}
    given = merged.get("sampler_options", {})
    if not isinstance(given, dict):
        return merged
    if config_class is CompareConfig:  # label → its options, under the defaults of the sampler it names
        compared = [name.strip() for name in str(merged.get("samplers", CompareConfig.samplers)).split(",")]
        merged["sampler_options"] = dict(given)
        for label in compared:
            options = given.get(label, {})
            sampler = options.get("sampler", label) if isinstance(options, dict) else None
            if sampler in sampler_options:
                merged["sampler_options"][label] = {**sampler_options[sampler], **options}
    elif isinstance(sampler := merged.get("sampler", TrainConfig.sampler), str):
        merged["sampler_options"] = {**sampler_options.get(sampler, {}), **given}
    return merged
