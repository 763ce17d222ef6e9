"""The interface every sampler plugin implements, and what core may rely on.

A sampler plugin is a factory ``factory(make_network, n_features, **options)`` (``options``: the
user's ``sampler_options``) returning a :class:`Sampler`. It owns its networks, each built by the
``make_network(in_features, out_features=None)`` callable core hands it (the configured backbone
with the user's ``backbone_options``; see :mod:`bayesgen.core.backbone` for what a network
takes and returns), together with a training loss and a sampling procedure. Core trains and
samples through this interface alone and never branches on a sampler's name. Core relies on:

* ``network`` — one module holding every trainable network of the sampler, each parameter
  registered exactly once (no module reachable under two names, or ``state_dict`` lists its
  tensors twice and the EMA of weights averages them twice). It is a container, not necessarily
  called itself (the INN's is the list of its coupling blocks). The Bayesian swap
  (:func:`bayesgen.bayes.bayesianize`) is applied to it; the optimiser, the EMA and the
  checkpoints take the whole sampler.
* :meth:`Sampler.sampling_networks` — the slots ``(owner, attribute)`` of the modules that
  :meth:`Sampler.sample` calls as ``owner.attribute(...)``: ``--compile`` replaces each by its
  :func:`torch.compile` version, so they must be the modules actually called (the rest, update
  formulas and splines, runs eagerly). By default the ``network`` itself.
* conditions pass unchanged: the ``cond`` a method receives is what its networks receive (the
  AR head repeats rows, never columns), so a point mask in its first columns reaches the backbone.
* rows stay in order: under :func:`bayesgen.bayes.weight_draws` the rows of ``sample(M·n, cond)``
  form M consecutive blocks, one per ensemble member, and every network call keeps that order.
* randomness only from the ``generator`` passed in (and, in training, torch's global seed for
  the variational layers): the same generator state gives the same samples and the same loss.
* attributes core sets after construction: :attr:`Sampler.feature_mask` (absent features) and
  :attr:`Sampler.feature_range` (:meth:`Sampler.set_feature_range`); ``n_features``.
* buffers hold constants (schedules, rotations) only.
* shapes: :meth:`Sampler.loss` takes features ``(n, n_features)``, conditions ``(n,
  n_conditions)`` or ``None`` and weights ``(n,)`` or ``None`` and returns a scalar;
  :meth:`Sampler.sample` returns ``(n, n_features)`` on the sampler's device;
  :meth:`Sampler.evaluations_per_event` a positive count (or ``None`` before an adaptive solver
  has run) and a :class:`~bayesgen.core.errors.ConfigError` for settings it does not take;
  :meth:`Sampler.log_prob` and :meth:`Sampler.log_prob_bound` ``(n,)``, or
  ``NotImplementedError`` where the sampler has neither.

:func:`check_sampler` checks these rules on a built sampler; every registered sampler meets them
in ``tests/test_sampler_contract.py``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from bayesgen.core.errors import ContractError


@dataclass(frozen=True)
class FeatureMask:
    """Which features of an event are present, as core hands it to a sampler of a process with
    absent features (see :meth:`bayesgen.core.process.Process.feature_mask`): ``present(cond)``
    maps conditions ``(n, n_conditions)`` to a bool tensor ``(n, n_features)`` on their device;
    the training data carry N(0, ``absent_std``²) noise in the absent slots."""

    present: Callable[[torch.Tensor], torch.Tensor]
    absent_std: float


class Sampler(nn.Module, ABC):
    """A generative model over standardised features ``(n, n_features)``.

    ``feature_mask`` is set by core after construction for a process with absent features and is
    ``None`` otherwise; a sampler may leave absent features out of its likelihood (``ar`` does)
    or learn their noise like any other feature.
    """

    feature_mask: FeatureMask | None = None

    #: The sampler's training recipe: options of :class:`~bayesgen.engine.config.TrainConfig` over
    #: its defaults and under the process's training defaults, the user's TOML and flags (see
    #: :mod:`bayesgen.engine.config`); ``backbone_options`` keyed by backbone name, ``sampler_options``
    #: its own, e.g. ``{"steps": 20000, "backbone_options": {"mlp": {"width": 256}},
    #: "sampler_options": {"steps": 50}}``.
    training_defaults: dict = {}

    def __init__(self, network: nn.Module, n_features: int):
        """``network`` holds every trainable network of the sampler (a module or ModuleList),
        each registered once."""
        super().__init__()
        self.network = network
        self.n_features = n_features
        self.register_buffer("feature_range", None, persistent=False)

    def set_feature_range(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Record the per-feature range ``[low, high]`` (each ``(n_features,)``) of the
        standardised training features as :attr:`feature_range` ``(2, n_features)``; a sampler
        with an output guard (e.g. DDPM's x̂₀ clipping) keeps its samples near it. ``None`` until
        set (a run trained before ranges were recorded): no guard."""
        self.feature_range = torch.stack([torch.as_tensor(low), torch.as_tensor(high)]).float().to(self.device)

    def sampling_networks(self) -> list[tuple[nn.Module, str]]:
        """``(owner, attribute)`` of each module that :meth:`sample` calls as
        ``owner.attribute(...)``; by default the sampler's ``network``."""
        return [(self, "network")]

    @abstractmethod
    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
             weights: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar training loss on a batch of features ``x``, the ``weights``-weighted mean of the
        per-event losses (see :func:`weighted_mean`); noise is drawn from ``generator``."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss, so that wrappers such as DistributedDataParallel can call the sampler."""
        return self.loss(x, cond, generator, weights)

    def likelihood_scale(self) -> float:
        """:meth:`loss` over the negative log-likelihood per event it stands for (nats). A Bayesian
        run adds the prior's KL as ``likelihood_scale() · KL / N_train``, so that it minimises the
        negative ELBO per event times this same factor and the posterior widths are the ELBO's.
        1 by default: a loss that is the NLL per event, or a regression loss (ddpm, cfm) read as
        one by convention; a likelihood averaged over the features returns ``1 / n_features``."""
        return 1.0

    @abstractmethod
    def sample(self, n: int, cond: torch.Tensor | None = None, steps: int | None = None,
               solver: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` feature vectors ``(n, n_features)`` on the sampler's device; ``steps`` and
        ``solver`` default to the sampler's own choice."""

    @abstractmethod
    def evaluations_per_event(self, steps: int | None = None, solver: str | None = None) -> int | None:
        """Network evaluations per event with these settings (for adaptive solvers: those of
        the last :meth:`sample` call, ``None`` before one); raises on invalid settings."""

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None, **options) -> torch.Tensor:
        """``log p(x)`` per event ``(n,)`` in feature space, where the sampler can compute it."""
        raise NotImplementedError(f"the {type(self).__name__} sampler has no log-likelihood")

    def log_prob_bound(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """A lower bound on ``log p(x)`` per event ``(n,)`` (the variational bound), for samplers
        whose exact log-likelihood is out of reach; noise is drawn from ``generator``."""
        raise NotImplementedError(f"the {type(self).__name__} sampler has no likelihood bound")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over features: ``(n, d) → (n,)``."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2 * math.pi))


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``Σ wᵢ vᵢ / Σ wᵢ`` over events ``(n,)``; the plain mean without weights. Negative weights
    (NLO generators) are allowed; their sum over the batch must stay positive."""
    if weights is None:
        return values.mean()
    return (weights * values).sum() / weights.sum()


def check_sampler(sampler: Sampler, label: str, n_conditions: int = 0, n: int = 8) -> None:
    """Raise :class:`ContractError` naming ``label`` and the rule when a built ``sampler`` breaks
    the contract of the module docstring: its ``network`` and :meth:`~Sampler.sampling_networks`
    (always), and, with ``n > 0``, the shapes and reproducibility of :meth:`~Sampler.loss`,
    :meth:`~Sampler.sample` and :meth:`~Sampler.evaluations_per_event` on ``n`` random events
    (with ``n_conditions`` one-hot conditions)."""
    def rule(text: str) -> ContractError:
        return ContractError(f"{label} breaks the sampler contract: {text}")

    if not isinstance(sampler, Sampler):
        raise rule(f"the factory must return a bayesgen.core.sampler.Sampler, got {type(sampler).__name__}")
    if not isinstance(getattr(sampler, "network", None), nn.Module):
        raise rule("network must be the module holding every trainable network")
    if {id(p) for p in sampler.network.parameters()} != {id(p) for p in sampler.parameters()}:
        raise rule("every parameter must lie in network, where --bayesian and the checkpoints find it")
    pointers = [v.data_ptr() for v in sampler.state_dict().values() if v.numel()]
    if len(pointers) != len(set(pointers)):
        raise rule("a tensor is registered under two names (the EMA of weights would average it twice)")
    inside = {id(m) for m in sampler.modules()}
    for owner, attribute in sampler.sampling_networks():
        if id(owner) not in inside or not isinstance(getattr(owner, attribute, None), nn.Module):
            raise rule(f"sampling_networks names {type(owner).__name__}.{attribute}, which is no module of the sampler")
    if n:
        _check_calls(sampler, n, n_conditions, rule)


def _check_calls(sampler: Sampler, n: int, n_conditions: int, rule: Callable[[str], ContractError]) -> None:
    """Shapes, determinism under a seeded generator, and the count of network calls."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, sampler.n_features, generator=generator)
    cond = (torch.nn.functional.one_hot(torch.arange(n) % n_conditions, n_conditions).float()
            if n_conditions else None)
    torch.manual_seed(0)
    loss = sampler.loss(x, cond, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    again = sampler.loss(x, cond, generator=torch.Generator().manual_seed(1))
    if not isinstance(loss, torch.Tensor) or loss.shape != () or not torch.isfinite(loss):
        raise rule(f"loss must return a finite scalar, got {getattr(loss, 'shape', loss)}")
    if not torch.equal(loss, again):
        raise rule("the loss must depend on the generator's state only (the same state, the same loss)")
    was_training = sampler.training
    sampler.eval()
    try:
        with torch.no_grad():
            samples = sampler.sample(n, cond, generator=torch.Generator().manual_seed(2))
            repeat = sampler.sample(n, cond, generator=torch.Generator().manual_seed(2))
        calls = sampler.evaluations_per_event()
    finally:
        sampler.train(was_training)
    if not isinstance(samples, torch.Tensor) or samples.shape != (n, sampler.n_features):
        raise rule(f"sample(n) must return (n, n_features) = {(n, sampler.n_features)}, "
                   f"got {getattr(samples, 'shape', type(samples).__name__)}")
    if not torch.equal(samples, repeat):
        raise rule("sample must draw from the generator only (the same state, the same events)")
    if not (calls is None or isinstance(calls, int) and calls > 0):
        raise rule(f"evaluations_per_event must return a positive count or None, got {calls!r}")
