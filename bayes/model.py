"""Make any network Bayesian, weigh its KL, and draw ensembles of frozen generators."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from bayesgen.bayes.layers import KroneckerLinear, VariationalLinear
from bayesgen.core.errors import ConfigError
from bayesgen.core.seeding import derive_seed, torch_generator


#: the posterior families of :func:`bayesianize`: the layer class each uses
POSTERIORS = {"mean_field": VariationalLinear, "kronecker": KroneckerLinear}


def bayesianize(module: nn.Module, prior_std: float | Mapping[str, float] = 1.0, init_log_sigma: float = -9.0,
                keep: Callable[[str, nn.Linear], bool] | None = None, inplace: bool = True,
                center_inputs: bool = False, posterior: str = "mean_field") -> nn.Module:
    """Replace every :class:`nn.Linear` in ``module`` (recursively) by a :class:`VariationalLinear`
    whose posterior means start at the layer's weights, under the prior ``N(0, prior_std²)`` (a
    mapping gives each layer, by its name in ``module``, a width of its own); ``keep(name,
    layer)`` → True leaves a layer deterministic; ``center_inputs`` centres each layer with a
    bias on its running mean input (see :mod:`bayesgen.bayes.layers`); ``posterior =
    "kronecker"`` makes :class:`KroneckerLinear` layers instead, to hold a Laplace fit
    (:mod:`bayesgen.bayes.laplace`). Returns the module (a copy unless ``inplace``)."""
    if posterior not in POSTERIORS:
        raise ValueError(f"unknown posterior {posterior!r}; known: {', '.join(POSTERIORS)}")
    module = module if inplace else copy.deepcopy(module)
    linears = [(name, layer) for name, layer in module.named_modules() if type(layer) is nn.Linear]
    linears = [(name, layer) for name, layer in linears if keep is None or not keep(name, layer)]
    if isinstance(prior_std, Mapping) and (missing := [name for name, _ in linears if name not in prior_std]):
        raise ConfigError(f"prior_std gives no width to the layers {', '.join(missing)}; it names "
                          f"{', '.join(prior_std) or 'none'}")
    for name, layer in linears:
        width = prior_std[name] if isinstance(prior_std, Mapping) else prior_std
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, POSTERIORS[posterior].from_linear(layer, width, init_log_sigma, center_inputs))
    return module


def named_variational_layers(module: nn.Module) -> dict[str, VariationalLinear]:
    """Each variational layer of ``module`` by its name in it."""
    return {name: layer for name, layer in module.named_modules() if isinstance(layer, VariationalLinear)}


def variational_layers(module: nn.Module) -> list[VariationalLinear]:
    return list(named_variational_layers(module).values())


def is_bayesian(module: nn.Module) -> bool:
    return bool(variational_layers(module))


def width_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The posterior widths (log σ) of every variational layer of ``module``."""
    return [p for layer in variational_layers(module) for p in layer.width_parameters()]


def kl_divergence(module: nn.Module) -> torch.Tensor:
    """Summed KL of every variational layer of ``module`` to its prior."""
    layers = variational_layers(module)
    if not layers:
        raise ValueError("the module has no variational layers; call bayesianize first")
    return sum(layer.kl_divergence() for layer in layers)


def _draw(layers: list[VariationalLinear], members: range, seed: int) -> None:
    """Fix the weights of ensemble ``members`` in every layer; member ``m`` of layer ``i`` is
    drawn from the stream ``(seed, m, i)``, so it is the same draw in every mode."""
    for index, layer in enumerate(layers):
        device = layer.weight_mean.device
        layer.draw(len(members), [torch_generator(derive_seed(seed, "weight-draw", m, index), device)
                                  for m in members])


@contextmanager
def weight_draws(module: nn.Module, draws: int, seed: int = 0) -> Iterator[nn.Module]:
    """Inside the block every variational layer holds ``draws`` fixed weight samples, evaluated
    together: input rows form ``draws`` consecutive blocks, one per ensemble member."""
    layers = variational_layers(module)
    try:
        _draw(layers, range(draws), seed)
        yield module
    finally:
        for layer in layers:
            layer.use_mean()


def ensemble(module: nn.Module, draws: int, seed: int = 0) -> Iterator[nn.Module]:
    """Yield ``module`` ``draws`` times, each time holding the weights of one frozen ensemble
    member (the same members that :func:`weight_draws` evaluates together)."""
    layers = variational_layers(module)
    try:
        for m in range(draws):
            _draw(layers, range(m, m + 1), seed)
            yield module
    finally:
        for layer in layers:
            layer.use_mean()
