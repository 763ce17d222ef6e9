"""Assemble a sampler from its plugins, and load a trained one from a run directory."""
from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bayesgen.bayes import bayesianize
from bayesgen.core import registry
from bayesgen.core.backbone import CORE_KEYWORDS, BackboneInputs, check_signature
from bayesgen.core.errors import BayesgenError, PluginError, RunError
from bayesgen.core.options import check_plugin_options
from bayesgen.core.process import Process, check_process
from bayesgen.core.sampler import FeatureMask, Sampler, check_sampler
from bayesgen.engine.checkpoint import load_checkpoint
from bayesgen.engine.conditions import ConditionDistribution
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.device import resolve_device
from bayesgen.engine.preprocessing import ABSENT_NOISE_STD, Preprocessor


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
    when given, else from ``config.process_options``, and checked against its contract's
    declarations (:func:`~bayesgen.core.process.check_process`)."""
    process = _instantiate("process", config.process, registry.registry().get("processes", config.process),
                           options=config.process_options if options is None else options)
    check_process(process, f"the process {config.process!r}")
    return process


def sampler_feature_mask(process: Process, conditions: np.ndarray) -> FeatureMask | None:
    """``process.feature_mask`` as samplers take it (torch in, torch out), or ``None`` when the
    process marks no feature absent for these condition rows ``(n, n_conditions)``."""
    if not process.n_conditions or process.feature_mask(conditions) is None:
        return None

    def present(cond: torch.Tensor) -> torch.Tensor:
        mask = process.feature_mask(cond.detach().to("cpu", torch.float64).numpy())
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)).to(cond.device)

    return FeatureMask(present, ABSENT_NOISE_STD)


def build_sampler(config: TrainConfig, n_features: int, inputs: BackboneInputs = BackboneInputs(),
                  feature_mask: FeatureMask | None = None) -> Sampler:
    """The sampler named in ``config``, building its backbones with the configured options and
    what ``inputs`` tells them about the data (conditions, the features' shape, a point mask;
    see :mod:`bayesgen.core.backbone`); ``feature_mask`` tells it which features are absent. Both
    plugins are checked against their contracts' declarations."""
    backbone = registry.get_backbone(config.backbone)
    label = f"the backbone {config.backbone!r}"
    check_signature(backbone, label, inputs)
    keywords = inputs.keywords(backbone)

    def make_network(in_features: int, out_features: int | None = None) -> torch.nn.Module:
        return _instantiate("backbone", config.backbone, backbone, (in_features, out_features),
                            supplied=keywords, options=config.backbone_options, reserved=tuple(CORE_KEYWORDS))

    sampler = _instantiate("sampler", config.sampler, registry.get_sampler(config.sampler),
                           (make_network, n_features), options=config.sampler_options)
    check_sampler(sampler, f"the sampler {config.sampler!r}", n=0)
    sampler.feature_mask = feature_mask
    if config.bayesian:
        options = dict(config.bayes_options)
        patterns = options.pop("deterministic_layers", [])
        _instantiate("bayes", "bayesianize", bayesianize, (sampler.network,), options=options, supplied={
            "keep": lambda name, _: any(fnmatch.fnmatch(name, p) for p in patterns)})
    return sampler


def build_model(config: TrainConfig, process: Process, conditions: np.ndarray | None) -> Sampler:
    """The configured sampler for ``process``, whose condition rows ``(n, n_conditions)``
    (the training data's, or the stored ones' distinct values) say which features are absent."""
    mask = None if conditions is None else sampler_feature_mask(process, conditions)
    return build_sampler(config, process.n_features, BackboneInputs.of(process), mask)


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
        conditions = (ConditionDistribution.from_state_dict(state["conditions"])
                      if process.n_conditions else None)
        sampler = build_model(config, process, None if conditions is None else conditions.values)
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
