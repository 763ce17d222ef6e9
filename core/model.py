"""Assemble a sampler from its plugins, and load a trained one from a run directory."""
from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bayesgen.bayes import bayesianize
from bayesgen.core import registry
from bayesgen.core.checkpoint import load_checkpoint
from bayesgen.core.conditions import ConditionDistribution
from bayesgen.core.config import TrainConfig
from bayesgen.core.device import resolve_device
from bayesgen.core.errors import BayesgenError, PluginError, RunError
from bayesgen.core.options import check_plugin_options
from bayesgen.core.preprocessing import Preprocessor
from bayesgen.core.process import Process
from bayesgen.core.sampler import Sampler


def _instantiate(kind: str, name: str, factory: Callable, args: tuple = (), supplied: dict | None = None,
                 options: dict | None = None, reserved: tuple[str, ...] = ()):
    """``factory(*args, **supplied, **options)``: core's ``args`` and ``supplied`` keywords, and the
    user's ``options``, which are checked against the factory's signature first (unknown names
    with their closest spelling, ill-typed values with the type expected; the ``reserved`` names
    are core's to pass, as are those of ``supplied``). An error the plugin
    raises on purpose (a :class:`BayesgenError`) reaches the user as it is; anything else it
    raises is reported as a fault of the plugin, with the traceback under ``BAYESGEN_DEBUG=1``."""
    supplied, options = supplied or {}, options or {}
    label = f"the {kind} {name!r}"
    check_plugin_options(label, factory, options, supplied={*supplied, *reserved}, positional=len(args),
                         table=f"[train.{kind}_options]")
    try:
        return factory(*args, **supplied, **options)
    except BayesgenError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever a plugin raises, say whose fault it is
        raise PluginError(f"{label} failed while being built with options {options}: "
                          f"{type(error).__name__}: {error} (a fault in {label}, not in your options; "
                          "BAYESGEN_DEBUG=1 shows the traceback)") from error


def build_process(config: TrainConfig, options: dict | None = None) -> Process:
    """The configured process, built from ``options`` (a run's stored, self-contained ones)
    when given, else from ``config.process_options``."""
    return _instantiate("process", config.process, registry.registry().get("processes", config.process),
                        options=config.process_options if options is None else options)


def build_sampler(config: TrainConfig, n_features: int, n_conditions: int = 0,
                  feature_shape: tuple[int, ...] | None = None) -> Sampler:
    """The sampler named in ``config``, building its backbones with the configured options;
    with ``n_conditions`` they take a condition ``(batch, n_conditions)``, with ``feature_shape``
    they learn the shape of the flat features (points × channels, channels × pixels)."""
    backbone = registry.get_backbone(config.backbone)
    condition = {"cond_features": n_conditions} if n_conditions else {}
    if feature_shape is not None:
        condition["feature_shape"] = tuple(feature_shape)

    def make_network(in_features: int, out_features: int | None = None) -> torch.nn.Module:
        return _instantiate("backbone", config.backbone, backbone, (in_features, out_features),
                            supplied=condition, options=config.backbone_options,
                            reserved=("cond_features", "feature_shape"))

    sampler = _instantiate("sampler", config.sampler, registry.get_sampler(config.sampler),
                           (make_network, n_features), options=config.sampler_options)
    if config.bayesian:
        options = dict(config.bayes_options)
        patterns = options.pop("deterministic_layers", [])
        _instantiate("bayes", "bayesianize", bayesianize, (sampler.network,), options=options, supplied={
            "keep": lambda name, _: any(fnmatch.fnmatch(name, p) for p in patterns)})
    return sampler


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class TrainedModel:
    """Everything needed to generate events from a finished (or interrupted) training run."""

    config: TrainConfig
    process: Process
    preprocessor: Preprocessor
    sampler: Sampler
    step: int
    train_seconds: float
    conditions: ConditionDistribution | None = None
    train_cpu_seconds: float | None = None  #: CPU time of this process while training (None: not recorded)

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "auto") -> "TrainedModel":
        """Rebuild the run's sampler with its EMA weights on ``device``, in eval mode."""
        torch_device = resolve_device(device)
        state = load_checkpoint(run_dir)
        config = TrainConfig(**state["config"])
        if state["step"] < config.steps:
            warnings.warn(f"run {run_dir} is unfinished: trained {state['step']:,} of {config.steps:,} steps "
                          f"(continue it with `bayesgen train --out {run_dir} --resume`)", UserWarning, stacklevel=2)
        process = build_process(config, state.get("process_options"))
        preprocessor = Preprocessor.from_state_dict(process, state["preprocessing"])
        sampler = build_sampler(config, process.n_features, process.n_conditions, process.feature_shape)
        conditions = (ConditionDistribution.from_state_dict(state["conditions"])
                      if process.n_conditions else None)
        try:
            sampler.load_state_dict(state["ema"])
        except RuntimeError as error:
            raise RunError(f"checkpoint in {run_dir} does not match the {config.sampler}/"
                           f"{config.backbone} model it names: {str(error).splitlines()[0]}") from None
        if "feature_range" in state:  # runs trained before ranges were recorded sample unguarded
            sampler.set_feature_range(*state["feature_range"])
        sampler.to(torch_device).eval()
        return cls(config, process, preprocessor, sampler, state["step"], state["train_seconds"], conditions,
                   state.get("train_cpu_seconds"))
