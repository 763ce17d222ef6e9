"""Assemble a sampler from its plugins, and load a trained one from a run directory."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bayesgen.bayes import bayesianize
from bayesgen.core import registry
from bayesgen.core.checkpoint import load_checkpoint
from bayesgen.core.conditions import ConditionDistribution
from bayesgen.core.config import TrainConfig
from bayesgen.core.device import resolve_device
from bayesgen.core.errors import ConfigError, RunError
from bayesgen.core.preprocessing import ABSENT_NOISE_STD, Preprocessor
from bayesgen.core.process import Process
from bayesgen.core.sampler import FeatureMask, Sampler


def _instantiate(kind: str, factory, *args, **options):
    try:
        return factory(*args, **options)
    except TypeError as error:
        raise ConfigError(f"bad {kind} options {options}: {error}") from None
    except ValueError as error:  # a plugin refusing this combination, e.g. a shape it cannot take
        raise ConfigError(f"{kind}: {error}") from None


def build_process(config: TrainConfig) -> Process:
    return _instantiate("process", registry.registry().get("processes", config.process),
                        **config.process_options)


def sampler_feature_mask(process: Process, conditions: np.ndarray) -> FeatureMask | None:
    """``process.feature_mask`` as samplers take it (torch in, torch out), or ``None`` when the
    process marks no feature absent for these condition rows ``(n, n_conditions)``."""
    if not process.n_conditions or process.feature_mask(conditions) is None:
        return None

    def present(cond: torch.Tensor) -> torch.Tensor:
        mask = process.feature_mask(cond.detach().to("cpu", torch.float64).numpy())
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)).to(cond.device)

    return FeatureMask(present, ABSENT_NOISE_STD)


def build_sampler(config: TrainConfig, n_features: int, n_conditions: int = 0,
                  feature_shape: tuple[int, ...] | None = None,
                  feature_mask: FeatureMask | None = None) -> Sampler:
    """The sampler named in ``config``, building its backbones with the configured options;
    with ``n_conditions`` they take a condition ``(batch, n_conditions)``, with ``feature_shape``
    they learn the shape of the flat features (points × channels, channels × pixels), and
    ``feature_mask`` tells it which features are absent."""
    backbone = registry.get_backbone(config.backbone)
    condition = {"cond_features": n_conditions} if n_conditions else {}
    if feature_shape is not None:
        condition["feature_shape"] = tuple(feature_shape)

    def make_network(in_features: int, out_features: int | None = None) -> torch.nn.Module:
        return _instantiate("backbone", backbone, in_features, out_features, **condition,
                            **config.backbone_options)

    sampler = _instantiate("sampler", registry.get_sampler(config.sampler), make_network, n_features,
                           **config.sampler_options)
    sampler.feature_mask = feature_mask
    if config.bayesian:
        options = dict(config.bayes_options)
        patterns = options.pop("deterministic_layers", [])
        _instantiate("bayes", bayesianize, sampler.network, keep=lambda name, _: any(
            fnmatch.fnmatch(name, p) for p in patterns), **options)
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

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "auto") -> "TrainedModel":
        """Rebuild the run's sampler with its EMA weights on ``device``, in eval mode."""
        torch_device = resolve_device(device)
        state = load_checkpoint(run_dir)
        config = TrainConfig(**state["config"])
        process = build_process(config)
        preprocessor = Preprocessor.from_state_dict(process, state["preprocessing"])
        conditions = (ConditionDistribution.from_state_dict(state["conditions"])
                      if process.n_conditions else None)
        sampler = build_sampler(config, process.n_features, process.n_conditions, process.feature_shape,
                                None if conditions is None else sampler_feature_mask(process, conditions.values))
        try:
            sampler.load_state_dict(state["ema"])
        except RuntimeError as error:
            raise RunError(f"checkpoint in {run_dir} does not match the {config.sampler}/"
                           f"{config.backbone} model it names: {str(error).splitlines()[0]}") from None
        sampler.to(torch_device).eval()
        return cls(config, process, preprocessor, sampler, state["step"], state["train_seconds"], conditions)
