"""Options of every subcommand: the one place their defaults live.

Values come from, each layer over the one before:

1. the dataclass defaults;
2. the sampler's recipe (:attr:`Sampler.training_defaults`, for ``train``; ``compare`` applies
   each compared sampler's to its own run);
3. the process's training defaults (:attr:`Process.training_defaults`, for ``train`` and
   ``compare``): what the data needs (a backbone for point clouds, a batch size that fits);
4. a TOML file (``--config``; top-level keys and a table named after the subcommand, e.g.
   ``[train]``);
5. command-line flags.

Plugin options (``backbone_options``, ``sampler_options``) merge key by key across the layers.
Every key and value is checked: an unknown key is an error naming the closest valid one, a value
of the wrong type names its key and the type expected.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bayesgen.core import registry
from bayesgen.core.acceleration import check_speed_options
from bayesgen.core.errors import ConfigError, PluginError
from bayesgen.core.options import check_fields, check_names, did_you_mean

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
    reweight: bool = False         # add a branch weight from the run's classifier (bayesgen reweight)
    out: str = "events.root"

    def __post_init__(self):
        _positive(self, "events", "draws", "sample_steps", "batch_size", "threads")
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
    threads: int | None = None
    keep_unphysical: bool = False  # measure every generated event, those outside the support too
    reweight: bool = False         # also measure the events weighted by the run's classifier
    out: str | None = None

    def __post_init__(self):
        _positive(self, "events", "draws", "sample_steps", "batch_size", "threads")
        check_speed_options(self.precision, self.compile)


@dataclass
class ReweightConfig:
    """How to fit a run's classifier weights: its training events against generated events."""

    events: int | None = None      # generated events to fit on; None: as many as the run's training events
    sample_steps: int | None = None
    solver: str | None = None
    batch_size: int | None = None
    precision: str = "auto"
    seed: int = 3
    device: str = "auto"
    threads: int | None = None
    epochs: int = 20               # passes of the classifier over its training events
    out: str | None = None         # None: RUN/reweighter.pt

    def __post_init__(self):
        _positive(self, "events", "sample_steps", "batch_size", "threads", "epochs")
        check_speed_options(self.precision, "none")


@dataclass
class CompareConfig:
    """How to compare several samplers on one process on identical footing: the same data,
    backbone, optimiser budget and number of generated events (or existing ``runs``)."""

    process: str = TrainConfig.process
    samplers: str = "ddpm,cfm,inn"
    backbone: str = TrainConfig.backbone
    steps: int | None = None       # None: each sampler's recipe (Sampler.training_defaults)
    batch_size: int | None = None
    lr: float | None = None
    train_events: int = TrainConfig.events
    events: int = ValidateConfig.events
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
    sampler_options: dict = field(default_factory=dict)  # sampler name → its options
    bayes_options: dict = field(default_factory=dict)

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "lr", "train_events", "events", "draws", "sample_steps", "threads")
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
SECTIONS = {"train": TrainConfig, "generate": GenerateConfig, "validate": ValidateConfig, "compare": CompareConfig,
            "reweight": ReweightConfig}


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
    """Instantiate ``config_class`` from its defaults, then (``train``) the sampler's recipe, then
    (``train``, ``compare``) the process's training defaults, then each layer in turn (see the
    module docstring)."""
    known = option_names(config_class)
    values: dict[str, Any] = {}
    for layer in layers:
        check_names(layer, known, f"for {config_class.__name__}")
        values.update(layer)
    if config_class in (TrainConfig, CompareConfig):
        values = with_plugin_defaults(config_class, values)
    return config_class(**values)


def training_defaults(kind: str, name: str) -> dict[str, Any]:
    """The training defaults that the plugin ``name`` of ``kind`` (``processes`` or ``samplers``)
    declares, checked against :class:`TrainConfig`'s options, in one shape for both: plain
    options, ``backbone_options`` and ``sampler_options`` keyed by plugin name (a sampler's own
    ``sampler_options`` are keyed by its name here)."""
    defaults = dict(getattr(registry.registry().get(kind, name), "training_defaults", {}))
    unknown = sorted(set(defaults) - option_names(TrainConfig))
    if unknown:
        raise PluginError(f"the {'process' if kind == 'processes' else 'sampler'} plugin {name!r} declares training "
                          f"defaults for unknown option(s) {', '.join(unknown)}"
                          f"{did_you_mean(unknown[0], option_names(TrainConfig))}")
    if kind == "samplers" and "sampler_options" in defaults:
        defaults["sampler_options"] = {name: defaults["sampler_options"]}
    return defaults


def _over(layers: list[dict[str, Any]], values: dict[str, Any], key: str, plugin: str) -> dict[str, Any]:
    """The options of ``plugin`` under ``key`` (``backbone_options`` …) from each layer in turn,
    then ``values``' own ``key`` on top."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer.get(key, {}).get(plugin, {}))
    return {**merged, **values.get(key, {})}


def with_plugin_defaults(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over the training defaults of the sampler in use (``train`` only) and of the
    process: plain options where ``values`` lacks them (the process's over the sampler's), the
    layers' ``backbone_options`` / ``sampler_options`` for the backbone and sampler in use merged
    key by key under the options ``values`` gives for them."""
    process = values.get("process", TrainConfig.process)
    sampler = values.get("sampler", TrainConfig.sampler)
    if not isinstance(process, str) or not isinstance(sampler, str):
        return values  # the config's own type check names the problem
    layers = [training_defaults("processes", process)]
    if config_class is TrainConfig:
        layers.insert(0, training_defaults("samplers", sampler))
    plain = {k: v for layer in layers for k, v in layer.items() if k not in ("backbone_options", "sampler_options")}
    if config_class is CompareConfig:
        plain = {("train_events" if k == "events" else k): v for k, v in plain.items()
                 if k in option_names(CompareConfig) or k == "events"}
    merged = {**plain, **values}
    backbone = merged.get("backbone", TrainConfig.backbone)
    if isinstance(backbone, str) and isinstance(merged.get("backbone_options", {}), dict):
        merged["backbone_options"] = _over(layers, merged, "backbone_options", backbone)
    if not isinstance(merged.get("sampler_options", {}), dict):
        return merged
    if config_class is CompareConfig:  # sampler name → its options
        given = merged.get("sampler_options", {})
        merged["sampler_options"] = dict(given)
        for name in (name.strip() for name in str(merged.get("samplers", CompareConfig.samplers)).split(",")):
            options = given.get(name, {})
            if isinstance(options, dict) and (combined := _over(layers, {"sampler_options": options},
                                                                 "sampler_options", name)):
                merged["sampler_options"][name] = combined
    else:
        merged["sampler_options"] = _over(layers, merged, "sampler_options", sampler)
    return merged
