"""The contract every backbone plugin meets: a network ``f(x, t, cond) → same shape as x``.

A backbone plugin is a factory (usually an ``nn.Module`` class) that core calls as::

    factory(in_features, out_features=None, *, cond_features=0, feature_shape=None,
            mask_features=0, **options)

through the ``make_network(in_features, out_features=None)`` that a sampler receives (see
:mod:`bayesgen.core.sampler`); the ``options`` are the user's ``backbone_options``. Core passes
each keyword only when it is not its default; a backbone that cannot take ``cond_features`` or
``feature_shape`` leaves it out of its signature, and core then says so (:func:`check_signature`).

* ``in_features``, ``out_features`` — the widths of ``x`` and of the output; ``None`` means
  ``out_features = in_features``. A sampler may ask for other widths (the INN's coupling halves,
  the AR head), so a backbone for structured features checks they are whole objects and refuses
  others with a :class:`~bayesgen.core.errors.ConfigError`.
* ``cond_features`` — the width of ``cond``; the network is then always called with a condition
  ``(batch, cond_features)``, and with ``cond = None`` when it is 0.
* ``feature_shape`` — how the flat features unflatten (``(N, C)`` points × channels, ``(C, H,
  W)`` channels × pixels; C order), from :attr:`~bayesgen.core.process.Process.feature_shape`.
* ``mask_features`` — the point mask: the first ``mask_features`` columns of ``cond`` say which
  of the ``N = mask_features`` points are real (1.0) and which are padding (0.0); the other
  ``cond_features − mask_features`` columns are a global condition. Core passes it when the
  process declares :attr:`~bayesgen.core.process.Process.mask_conditions` and the backbone's
  signature names it: naming it is the promise that padding never changes a real point's
  output. A backbone that does not name it (one for flat vectors) receives the mask columns as
  ordinary condition columns.

The network's ``forward(x, t, cond=None)`` takes ``x (batch, in_features)``, ``t (batch,)`` in
[0, 1] and ``cond`` as above, and returns ``(batch, out_features)`` in the dtype of ``x``, where
row ``i`` depends on row ``i`` of the inputs only (generation cuts batches into chunks, and a
Bayesian ensemble evaluates its members as blocks of rows) and in eval mode on nothing random.
Trainable layers are ``nn.Linear`` (and convolutions), so that ``--bayesian`` reaches them.

:func:`check_backbone` builds a backbone as core does and runs it through these rules; every
registered backbone meets them in ``tests/test_backbone_contract.py``.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bayesgen.core.errors import ContractError

#: the keywords core may pass, each only when it differs from this default
CORE_KEYWORDS = {"cond_features": 0, "feature_shape": None, "mask_features": 0}


@dataclass(frozen=True)
class BackboneInputs:
    """What core tells a backbone about the data besides the widths (see the module docstring)."""

    cond_features: int = 0
    feature_shape: tuple[int, ...] | None = None
    mask_features: int = 0

    @classmethod
    def of(cls, process: Any) -> "BackboneInputs":
        """The inputs a backbone receives for a :class:`~bayesgen.core.process.Process`."""
        shape = None if process.feature_shape is None else tuple(process.feature_shape)
        return cls(process.n_conditions, shape, process.mask_conditions)

    def keywords(self, factory: Callable | None = None) -> dict[str, Any]:
        """The keywords core passes to ``factory``: those away from their defaults, and
        ``mask_features`` only where the factory names it."""
        values = {"cond_features": self.cond_features, "feature_shape": self.feature_shape,
                  "mask_features": self.mask_features}
        accepted = None if factory is None else accepted_keywords(factory)
        return {k: v for k, v in values.items() if v != CORE_KEYWORDS[k]
                and not (k == "mask_features" and accepted is not None and k not in accepted)}


def accepted_keywords(factory: Callable) -> set[str] | None:
    """The core keywords ``factory`` takes; None when it takes any (``**kwargs``) or has no
    signature to read."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.name in CORE_KEYWORDS and p.kind is not p.POSITIONAL_ONLY}


def honours_mask(factory: Callable) -> bool:
    """Whether ``factory`` names ``mask_features`` (or takes any keyword)."""
    accepted = accepted_keywords(factory)
    return accepted is None or "mask_features" in accepted


def check_signature(factory: Callable, label: str, inputs: BackboneInputs) -> None:
    """:class:`ContractError` when ``factory`` cannot take ``cond_features`` or
    ``feature_shape`` that ``inputs`` makes core pass."""
    accepted = accepted_keywords(factory)
    if accepted is None:
        return
    for name, value in inputs.keywords(factory).items():
        if name not in accepted:
            raise ContractError(f"{label} takes no {name}, which core passes for this process ({name}={value!r}); "
                                "name it in the factory's signature")


def _fail(label: str, rule: str) -> ContractError:
    return ContractError(f"{label} breaks the backbone contract: {rule}")


def _randomised(network: nn.Module, seed: int) -> nn.Module:
    """A copy with every parameter moved by N(0, 0.1²) noise: zero-initialised output layers
    would otherwise hide what the output depends on."""
    network = copy.deepcopy(network).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return network


def check_backbone(factory: Callable, label: str, in_features: int, out_features: int | None = None,
                   inputs: BackboneInputs = BackboneInputs(), options: dict | None = None,
                   batch: int = 6) -> nn.Module:
    """Build ``factory`` as core does and check every rule of the module docstring on a batch of
    random inputs: the signature, the output's shape and dtype, rows independent of each other,
    eval mode deterministic, the output depending on ``t`` and on ``cond``, and, where it names
    ``mask_features``, padding that changes no real point's output. Return the network; raise
    :class:`ContractError` naming ``label`` and the rule it breaks."""
    check_signature(factory, label, inputs)
    network = factory(in_features, out_features, **inputs.keywords(factory), **(options or {}))
    if not isinstance(network, nn.Module):
        raise _fail(label, f"the factory must return an nn.Module, got {type(network).__name__}")
    width = out_features or in_features
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_features, generator=generator)
    t = torch.rand(batch, generator=generator)
    cond = _conditions(inputs, batch, generator)
    net = _randomised(network, seed=1)
    with torch.no_grad():
        out = net(x, t, cond)
        if not isinstance(out, torch.Tensor) or out.shape != (batch, width):
            raise _fail(label, f"f(x, t, cond) must return (batch, out_features) = {(batch, width)}, got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        if out.dtype != x.dtype:
            raise _fail(label, f"the output must have the dtype of x ({x.dtype}), got {out.dtype}")
        if not torch.equal(net(x, t, cond), out):
            raise _fail(label, "in eval mode the output must be deterministic")
        half = batch // 2
        if not torch.allclose(net(x[:half], t[:half], None if cond is None else cond[:half]), out[:half],
                              rtol=1e-4, atol=1e-5):
            raise _fail(label, "row i of the output must depend on row i of the inputs only "
                               "(generation cuts batches into chunks)")
        if torch.allclose(net(x, torch.rand(batch, generator=generator), cond), out):
            raise _fail(label, "the output must depend on t")
        if cond is not None and inputs.cond_features > inputs.mask_features:
            other = cond.clone()
            other[:, inputs.mask_features:] = torch.rand(batch, inputs.cond_features - inputs.mask_features,
                                                         generator=generator)
            if torch.allclose(net(x, t, other), out):
                raise _fail(label, "the output must depend on the global condition cond[:, mask_features:]")
        if inputs.mask_features and honours_mask(factory):
            _check_padding(net, label, x, t, cond, inputs, generator)
    return network


def _conditions(inputs: BackboneInputs, batch: int, generator: torch.Generator) -> torch.Tensor | None:
    """Random conditions: a point mask with at least one real and one padded point per row,
    then uniform global columns."""
    if not inputs.cond_features:
        return None
    cond = torch.rand(batch, inputs.cond_features, generator=generator)
    if inputs.mask_features:
        real = (torch.rand(batch, inputs.mask_features, generator=generator) < 0.5).float()
        real[:, 0], real[:, -1] = 1.0, 0.0
        cond[:, :inputs.mask_features] = real
    return cond


def _check_padding(net: nn.Module, label: str, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                   inputs: BackboneInputs, generator: torch.Generator) -> None:
    """Changing the features of padded points leaves the outputs of real points unchanged."""
    points = inputs.mask_features
    if inputs.feature_shape is None or inputs.feature_shape[0] != points:
        raise _fail(label, f"a point mask of {points} columns needs feature_shape (N={points}, C)")
    padded = cond[:, :points] < 0.5
    noise = torch.randn(x.shape, generator=generator).reshape(len(x), points, -1)
    moved = (x.reshape(len(x), points, -1) + 10.0 * noise * padded[:, :, None]).reshape(len(x), -1)
    out, again = net(x, t, cond), net(moved, t, cond)
    per_point = out.shape[1] // points
    real = ~padded
    if not torch.allclose(out.reshape(len(x), points, per_point)[real],
                          again.reshape(len(x), points, per_point)[real], rtol=1e-4, atol=1e-5):
        raise _fail(label, "a padded point (mask 0) must not change the output of a real point (mask 1)")
