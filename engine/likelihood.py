"""A trained model's negative log-likelihood on held-out truth events.

``NLL = −⟨log p(x)⟩`` over at most LIKELIHOOD_EVENTS truth events, in nats per event and in bits per
dimension (``NLL / (d ln 2)``, d features), with the standard error of the mean. ``x`` are the
standardised network features, the same for every sampler of a process, so the numbers compare
across samplers of one process (not across processes). ``kind`` says what it is: ``exact`` where the
sampler has a log-likelihood (ar, inn; cfm through its ODE solver), ``bound`` where it has only a
variational bound (ddpm: all T terms; the NLL is then an upper bound). A Bayesian model is
evaluated at its posterior means. Detector-level processes (point clouds, images) are skipped:
per-event likelihoods of hundreds of pixels or points cost a great deal and are not what their
validation measures.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bayesgen.core.seeding import derive_seed, torch_generator
from bayesgen.engine.model import TrainedModel

LIKELIHOOD_EVENTS = 2000  #: truth events the likelihood is evaluated on (T network calls each for ddpm)


def likelihood_summary(model: TrainedModel, events: np.ndarray, seed: int) -> dict[str, Any]:
    """``{"kind", "nll_per_event", "nll_per_event_error", "bits_per_dim", "n_events"}`` for the
    first LIKELIHOOD_EVENTS of the truth ``events`` ``(n, n_quantities)``, or ``{"skipped": why}``."""
    process, sampler = model.process, model.sampler
    if process.feature_shape is not None:
        return {"skipped": f"detector-level features {tuple(process.feature_shape)}"}
    events = events[:LIKELIHOOD_EVENTS]
    device = sampler.device
    features = torch.from_numpy(model.preprocessor.forward(
        events, np.random.default_rng(derive_seed(seed, "likelihood-absent")))).to(device)
    cond = (torch.from_numpy(process.conditions(events)).float().to(device) if process.n_conditions else None)
    with torch.no_grad():
        try:
            log_p, kind = sampler.log_prob(features, cond), "exact"
        except NotImplementedError:
            try:
                generator = torch_generator(derive_seed(seed, "likelihood-noise"), device)
                log_p, kind = sampler.log_prob_bound(features, cond, generator), "bound"
            except NotImplementedError as error:
                return {"skipped": str(error)}
    nll = -log_p.double().cpu().numpy()
    return {"kind": kind, "nll_per_event": float(nll.mean()),
            "nll_per_event_error": float(nll.std(ddof=1) / math.sqrt(len(nll))),
            "bits_per_dim": float(nll.mean() / (features.shape[1] * math.log(2))), "n_events": len(nll)}
