"""Options of every subcommand: the one place their defaults and ``--help`` texts live.

Each option is a field (:func:`option`) of one group, and a subcommand's options are the groups
it takes: :class:`TrainingOptions` (``train``, ``compare``), :class:`SamplingOptions`
(``generate``, ``validate``, ``compare``), :class:`GenerationOptions` (``generate``,
``validate``), :class:`MeasureOptions` (``validate``, ``compare``) and :class:`DeviceOptions`
(all), plus its own. The command line, the TOML checks and ``--help`` read these fields.

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
    bayes_options: dict = option({}, "prior_std, init_log_sigma, deterministic_layers, center_inputs (posterior: "
                                          "kronecker is made by bayesgen laplace)")
    width_lr_scale: float = option(10.0, "learning rate of a Bayesian network's posterior widths (log σ) as a "
                                         "multiple of lr: Adam moves each log σ by about lr per step whatever its "
                                         "gradient, so the widths must travel fast enough to settle where the data "
                                         "put them, not where the step count leaves them", positive=True)


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
    reweight: bool = option(False, "weigh the events with the run's classifier weights (bayesgen reweight): "
                                   "generate writes a branch weight, validate measures with and without them")

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


#: how validate draws an ensemble band (ValidateConfig.band)
BANDS = ("sampled", "linearised")


@dataclass
class ValidateConfig(DeviceOptions, GenerationOptions, MeasureOptions):
    """How to validate a trained run against fresh truth events."""

    seed: int = option(2, "random seed")
    out: str | None = option(None, "report folder (default: RUN/report)")
    coverage_truths: int = option(0, "with --draws > 1, also average each band's coverage over this many further "
                                     "truth samples of the validated size (coverage from toys, to about "
                                     "±0.1/√K instead of ±0.1 from one sample; 0: off, else at least 2; a "
                                     "Monte-Carlo process only)")
    band: str = option("sampled", "with --draws > 1, how the members are drawn: sampled (each a network with its "
                                  "own weights and events) or linearised (the posterior-mean network's events, "
                                  "weighted per member by its density ratio to first order in the weights; as many "
                                  "events as the sampled members together; needs an exact log-likelihood: inn, ar)")

    def __post_init__(self):
        super().__post_init__()
        if self.band not in BANDS:
            raise ConfigError(f"unknown band {self.band!r}; known: {', '.join(BANDS)}")
        if self.coverage_truths == 1 or self.coverage_truths < 0:
            raise ConfigError(f"coverage_truths must be 0 (off) or at least 2, got {self.coverage_truths}")
        if self.coverage_truths and self.draws < 2:
            raise ConfigError("coverage_truths measures a band's coverage; it needs --draws of at least 2")


@dataclass
class ReweightConfig(DeviceOptions):
    """How to fit a run's classifier weights: its training events against generated events."""

    events: int | None = option(None, "generated events to fit on (default: as many as the run's training events)",
                                positive=True)
    sample_steps: int | None = option(None, "sampler steps per event (sampler's default if unset; generate and "
                                            "validate --reweight should use the same)", positive=True)
    solver: str | None = option(None, "sampling procedure, e.g. ancestral or ddim for ddpm")
    batch_size: int | None = option(None, "rows per generation chunk", positive=True)
    precision: str = option("auto", "auto (bf16 autocast on CUDA, fp32 elsewhere), fp32 or bf16")
    seed: int = option(3, "random seed")
    epochs: int = option(20, "passes of the classifier over its training events", positive=True)
    out: str | None = option(None, "weights file (default: RUN/reweighter.pt)")

    def __post_init__(self):
        super().__post_init__()
        check_speed_options(self.precision, "none")


LAPLACE_POSTERIORS = ("kronecker", "diagonal")


@dataclass
class LaplaceConfig(DeviceOptions):
    """How to make a Bayesian run from a trained deterministic one by the Laplace posterior of
    its output layers (see :mod:`bayesgen.bayes.laplace`)."""

    out: str | None = option(None, "the Bayesian run directory to write (default: RUN_laplace)")
    prior_std: float | None = option(None, "width of the weights' prior N(0, prior_std²) (default: the width of "
                                           "largest Laplace evidence)", positive=True)
    prior_per_layer: bool = option(False, "give each layer the prior width of largest evidence for it, rather "
                                          "than one width for all")
    deterministic_layers: str = option("*.input,*.blocks.*,*.time_embedding.*",
                                       "comma-separated name patterns of the layers left deterministic (these "
                                       "leave the backbones' output layers to the posterior)")
    posterior: str = option("kronecker", "kronecker (K-FAC: each layer's weights correlated, matrix normal) or "
                                         "diagonal (mean field, as bayesgen train --bayesian)")
    batch_size: int = option(4096, "training events per gradient pass", positive=True)

    def __post_init__(self):
        super().__post_init__()
        if self.posterior not in LAPLACE_POSTERIORS:
            raise ConfigError(f"unknown --posterior {self.posterior!r}; known: {', '.join(LAPLACE_POSTERIORS)}")
        if self.prior_std is not None and self.prior_per_layer:
            raise ConfigError("--prior-std gives every layer one width; --prior-per-layer has the evidence choose "
                              "one for each: give one of them")


@dataclass
class CompareConfig(DeviceOptions, SamplingOptions, MeasureOptions, TrainingOptions):
    """How to compare several samplers on one process on identical footing: the same data,
    backbone and number of generated events (or existing ``runs``); each sampler trains with its
    own recipe unless ``steps``, ``batch_size`` or ``lr`` are set for all alike."""

    steps: int | None = option(None, "optimiser steps of every model (default: each sampler's recipe)", positive=True)
    batch_size: int | None = option(None, "events per training step of every model (default: each sampler's recipe)",
                                    positive=True)
    lr: float | None = option(None, "peak learning rate of every model (default: each sampler's recipe)", positive=True)
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
        """How the comparison trains a model: as ``bayesgen train`` would (the sampler's recipe,
        then the process's defaults) under the comparison's shared training options (those set)
        and ``train_events`` events, with ``values`` (the sampler, its options, the run directory)."""
        shared = {k: v for k, v in values_of(self, TrainingOptions, DeviceOptions).items() if v is not None}
        return build(TrainConfig, {**shared, "events": self.train_events, **values})

    def validation(self) -> ValidateConfig:
        """How the comparison measures each model: the shared sampling and size options."""
        return ValidateConfig(**values_of(self, SamplingOptions, MeasureOptions, DeviceOptions), seed=self.seed)


@dataclass
class DemoConfig(DeviceOptions):
    """The sizes of the CPU tour (``bayesgen demo``): its defaults take about five minutes on one
    CPU thread; a few steps and events check an installation in seconds."""

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
            "reweight": ReweightConfig, "laplace": LaplaceConfig, "demo": DemoConfig}


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


def _over(layers: list[dict[str, Any]], given: dict[str, Any], key: str, plugin: str) -> dict[str, Any]:
    """The options of ``plugin`` under ``key`` (``backbone_options`` …) from each layer in turn,
    then ``given`` on top."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer.get(key, {}).get(plugin, {}))
    return {**merged, **given}


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
        merged["backbone_options"] = _over(layers, merged.get("backbone_options", {}), "backbone_options", backbone)
    given = merged.get("sampler_options", {})
    if not isinstance(given, dict):
        return merged
    if config_class is CompareConfig:  # label → its options, under the process's defaults for the sampler it names
        merged["sampler_options"] = dict(given)
        for label in (name.strip() for name in str(merged.get("samplers", CompareConfig.samplers)).split(",")):
            options = given.get(label, {})
            if isinstance(options, dict) and (combined := _over(layers, options, "sampler_options",
                                                                options.get("sampler", label))):
                merged["sampler_options"][label] = combined
    else:
        merged["sampler_options"] = _over(layers, given, "sampler_options", sampler)
    return merged
