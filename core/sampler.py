"""The interface every sampler plugin implements, and what core may rely on.

A sampler owns its networks ``f(x, t, cond) → (batch, out_features)`` (``x``: ``(batch,
in_features)``, ``t``: ``(batch,)`` in [0, 1], ``cond``: ``(batch, n_conditions)`` or ``None``),
built by the ``make_network(in_features, out_features=None)`` callable core hands to its factory,
together with a training loss and a sampling procedure. Core trains and samples through this
interface alone and never branches on a sampler's name. Core relies on:

* ``network`` — one module holding every trainable network of the sampler, each parameter
  registered exactly once (no module reachable under two names, or ``state_dict`` lists its
  tensors twice and the EMA of weights averages them twice). The Bayesian swap
  (:func:`bayesgen.bayes.bayesianize`) is applied to it; the optimiser, the EMA and the
  checkpoints take the whole sampler.
* :meth:`Sampler.sampling_networks` — the slots ``(owner, attribute)`` of the modules that
  :meth:`Sampler.sample` calls as ``owner.attribute(...)``: ``--compile`` replaces each by its
  :func:`torch.compile` version, so they must be the modules actually called (the rest, update
  formulas and splines, runs eagerly). By default the ``network`` itself.
* buffers hold constants (schedules, rotations) only.
* shapes: :meth:`Sampler.loss` takes features ``(n, n_features)``, conditions ``(n,
  n_conditions)`` or ``None`` and weights ``(n,)`` or ``None`` and returns a scalar;
  :meth:`Sampler.sample` returns ``(n, n_features)`` on the sampler's device.

Every registered sampler is run through this contract by ``tests/test_sampler_contract.py``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn


class Sampler(nn.Module, ABC):
    """A generative model over standardised features ``(n, n_features)``."""

    #: The sampler's training recipe: options of :class:`~bayesgen.core.config.TrainConfig` over
    #: its defaults and under the process's training defaults, the user's TOML and flags (see
    #: :mod:`bayesgen.core.config`); ``backbone_options`` keyed by backbone name, ``sampler_options``
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
