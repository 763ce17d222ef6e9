"""Options of every subcommand: the one place their defaults and ``--help`` texts live.

Each option is a field (:func:`option`) of one group, and a subcommand's options are the groups
it takes: :class:`TrainingOptions` (``train``, ``compare``), :class:`SamplingOptions`
(``generate``, ``validate``, ``compare``), :class:`GenerationOptions` (``generate``,
``validate``), :class:`MeasureOptions` (``validate``, ``compare``) and :class:`DeviceOptions`
(all), plus its own. The command line, the TOML checks and ``--help`` read these fields.

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


def option(default: Any, help: str, positive: bool = False) -> Any:
    """A dataclass field holding one option: its default, the ``--help`` text of its flag
    (every option but a table of plugin options is a flag) and, with ``positive``, the rule that
    a value given must be > 0."""
    metadata = {"help": help, "positive": positive}
    if isinstance(default, (dict, list)):
        return field(default_factory=type(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def is_flag(f: dataclasses.Field) -> bool:
    """Whether an option is a command-line flag: all but the tables of plugin options."""
    return not f.name.endswith("_options")


@dataclass
class Options:
    """Base of every subcommand's options: every value checked against its annotation, the
    positive ones against zero."""

    def __post_init__(self):
        check_fields(self)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("positive") and value is not None and value <= 0:
                raise ConfigError(f"--{f.name.replace('_', '-')} must be positive, got {value}")


@dataclass
class TrainingOptions(Options):
    """What ``train`` and ``compare`` share: the data, the backbone and the optimiser."""

    process: str = option("z_mumu", "process plugin name")
    backbone: str = option("mlp", "backbone plugin name")
    steps: int = option(5000, "optimiser steps", positive=True)
    batch_size: int = option(1024, "events per training step", positive=True)
    lr: float = option(1e-3, "peak learning rate (AdamW, cosine decay)", positive=True)
    bayesian: bool = option(False, "variational weights: loss + KL/N_train; generate ensembles with --draws")
    seed: int = option(0, "random seed")
    backbone_options: dict = option({}, "the backbone's options")
    bayes_options: dict = option({}, "prior_std, init_log_sigma, deterministic_layers")


@dataclass
class SamplingOptions(Options):
    """What ``generate``, ``validate`` and ``compare`` share: how events are drawn from a model."""

    draws: int = option(1, "ensemble members (weight draws) of a Bayesian run; 1 uses the posterior means",
                        positive=True)
    sample_steps: int | None = option(None, "sampler steps per event (sampler's default if unset)", positive=True)
    keep_unphysical: bool = option(False, "keep events outside the process's support (physical limits, acceptance) "
                                          "instead of drawing them again (generate: flagged in a branch unphysical)")


@dataclass
class GenerationOptions(SamplingOptions):
    """What ``generate`` and ``validate`` add: the procedure, the chunks and their speed."""

    solver: str | None = option(None, "sampling procedure, e.g. ancestral or ddim for ddpm")
    batch_size: int | None = option(None, "rows per generation chunk (default: from free GPU memory, 50,000 on a "
                                          "CPU)", positive=True)
    precision: str = option("auto", "auto (bf16 autocast on CUDA, fp32 elsewhere), fp32 or bf16")
    compile: str = option("none", "torch.compile the networks: none, default, reduce-overhead (CUDA graphs) or "
                                  "max-autotune")

    def __post_init__(self):
        super().__post_init__()
        check_speed_options(self.precision, self.compile)


@dataclass
class MeasureOptions(Options):
    """What ``validate`` and ``compare`` share: the sizes of the samples measured (see
    :mod:`bayesgen.validation.report`)."""

    events: int | None = option(None, "generated events per ensemble member (default: ten per truth event, at most "
                                      "100,000)", positive=True)
    truth_events: int | None = option(None, "truth events to validate against (default: --events if given, else "
                                            "100,000; a file's held-out part gives all it holds up to that)",
                                      positive=True)


@dataclass
class DeviceOptions(Options):
    """Where every subcommand runs."""

    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    threads: int | None = option(None, "CPU threads of torch (default: torch's, one per core; on a shared machine "
                                       "give your share, e.g. 1)", positive=True)


DISTRIBUTED = ("share the work over the processes that torchrun started (train: DistributedDataParallel; "
               "generate: a shard of chunks per rank)")


@dataclass
class TrainConfig(DeviceOptions, TrainingOptions):
    """How to train one model into a run directory."""

    sampler: str = option("ddpm", "sampler plugin name")
    events: int = option(200_000, "training events", positive=True)
    distributed: bool = option(False, DISTRIBUTED)
    out: str = option("runs/latest", "run directory")
    resume: bool = option(False, "continue training from the run's last checkpoint")
    checkpoint_every: int = option(500, "steps between checkpoints", positive=True)
    ema_decay: float = option(0.999, "decay d of the weights' exponential moving average, used for generation")
    warmup_steps: int = option(100, "linear learning-rate warm-up steps (at most a tenth of --steps)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    process_options: dict = option({}, "the process's options")
    sampler_options: dict = option({}, "the sampler's options")

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class GenerateConfig(DeviceOptions, GenerationOptions):
    """How to generate events from a trained run."""

    events: int = option(100_000, "generated events per ensemble member", positive=True)
    seed: int = option(1, "random seed")
    distributed: bool = option(False, DISTRIBUTED)
    out: str = option("events.root", "event file, .root or .npz")


@dataclass
class ValidateConfig(DeviceOptions, GenerationOptions, MeasureOptions):
    """How to validate a trained run against fresh truth events."""

    seed: int = option(2, "random seed")
    out: str | None = option(None, "report folder (default: RUN/report)")


@dataclass
class CompareConfig(DeviceOptions, SamplingOptions, MeasureOptions, TrainingOptions):
    """How to compare several samplers on one process on identical footing: the same data,
    backbone, optimiser budget and number of generated events (or existing ``runs``)."""

    samplers: str = option("ddpm,cfm,inn", "comma-separated sampler names (labels, see sampler_options)")
    train_events: int = option(TrainConfig.events, "training events per model", positive=True)
    out: str = option("compare", "comparison folder")
    runs: list = option([], "existing run directories to compare instead of training")
    # label in --samplers → its options; a label that is not a sampler's name names one with
    # sampler = "NAME" (e.g. [compare.sampler_options.ddpm_learned_sigma] sampler = "ddpm")
    sampler_options: dict = option({}, "per label in --samplers, that sampler's options")

    def __post_init__(self):
        super().__post_init__()
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

    def training(self, **values: Any) -> TrainConfig:
        """How the comparison trains a model: its shared training options and ``train_events``
        events, with ``values`` (the sampler, its options, the run directory)."""
        return TrainConfig(**values_of(self, TrainingOptions, DeviceOptions), events=self.train_events, **values)

    def validation(self) -> ValidateConfig:
        """How the comparison measures each model: the shared sampling and size options."""
        return ValidateConfig(**values_of(self, SamplingOptions, MeasureOptions, DeviceOptions), seed=self.seed)


@dataclass
class DemoConfig(DeviceOptions):
    """The sizes of the CPU tour (``bayesgen demo``): its defaults take about three minutes on two
    cores; a few steps and events check an installation in seconds."""

    steps: int = option(10_000, "training steps", positive=True)
    events: int = option(20_000, "events generated into events.root", positive=True)
    truth_events: int = option(50_000, "truth events to validate against (and as many generated)", positive=True)
    sample_steps: int = option(200, "DDIM steps per generated event", positive=True)
    out: str = option("bayesgen-demo", "demo folder")


def values_of(config: Any, *groups: type) -> dict[str, Any]:
    """The values in ``config`` of the options the option groups ``groups`` define."""
    names = {f.name for group in groups for f in dataclasses.fields(group)}
    return {name: getattr(config, name) for name in names}


C = TypeVar("C")
SECTIONS = {"train": TrainConfig, "generate": GenerateConfig, "validate": ValidateConfig, "compare": CompareConfig,
            "demo": DemoConfig}


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
