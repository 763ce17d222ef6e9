"""The linearised ensemble of a Bayesian run on its generated events
(:mod:`bayesgen.bayes.linearised`): each member's weight of every event, from the gradient of the
event's exact negative log-likelihood at the posterior means."""
from __future__ import annotations

import numpy as np
import torch

from bayesgen.bayes import is_bayesian
from bayesgen.bayes.linearised import linearised_weights, member_offsets
from bayesgen.core.errors import ConfigError
from bayesgen.core.sampler import Sampler
from bayesgen.core.seeding import derive_seed
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.progress import progress_bar

LINEARISED_CHUNK = 20_000   #: events per gradient pass


def check_linearisable(model: TrainedModel) -> None:
    """A :class:`ConfigError` unless ``model`` is a Bayesian run of event-level features whose
    sampler has a log-likelihood."""
    if not is_bayesian(model.sampler):
        raise ConfigError("the linearised band weighs a Bayesian run's members; this run is deterministic")
    if model.process.feature_shape is not None:
        raise ConfigError(f"the linearised band needs one feature vector per event; {model.config.process} has "
                          f"detector-level features {tuple(model.process.feature_shape)}")
    if type(model.sampler).log_prob is Sampler.log_prob:
        raise ConfigError(f"the linearised band needs the sampler's exact log-likelihood; the "
                          f"{model.config.sampler} sampler has none (inn and ar have one): use --band sampled")


def linearised_member_weights(model: TrainedModel, events: np.ndarray, draws: int, seed: int,
                              progress: bool = False) -> np.ndarray:
    """``(draws, n)``: each of the ``draws`` members that
    :func:`~bayesgen.bayes.model.weight_draws` draws with ``seed``, as the weights
    ``1 − ∇_θ NLL · Δθ_m`` of the posterior-mean network's ``events`` ``(n, n_quantities)``; with
    ``progress``, a bar on a terminal."""
    check_linearisable(model)
    sampler, process = model.sampler, model.process
    sampler.eval()
    offsets = member_offsets(sampler, draws, seed)
    features = model.preprocessor.forward(events, np.random.default_rng(derive_seed(seed, "linearised-absent")))
    conditions = process.conditions(events) if process.n_conditions else None
    chunks = []
    bar = progress_bar(progress, total=len(events), desc="linearising", unit="event", unit_scale=True)
    for start in range(0, len(events), LINEARISED_CHUNK):
        rows = slice(start, start + LINEARISED_CHUNK)
        x = torch.from_numpy(features[rows]).float().to(sampler.device)
        cond = None if conditions is None else torch.from_numpy(conditions[rows]).float().to(sampler.device)
        with torch.enable_grad():
            weights = linearised_weights(sampler, lambda: -sampler.log_prob(x, cond).sum(), offsets)
        chunks.append(weights.cpu().numpy())
        bar.update(len(x))
    bar.close()
    return np.concatenate(chunks, axis=1)
