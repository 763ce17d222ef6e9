"""The posterior's members to first order in the weights (the linearised predictive; Immer et al.
2021).

Member ``m``, weights ``θ* + Δθ_m`` about the posterior means ``θ*``, has the density
``p_m(x) ≈ p*(x) (1 − ∇_θ NLL(x) · Δθ_m)``, so events of the posterior-mean network ``p*``, each
weighted by ``w_m = 1 − ∇_θ NLL · Δθ_m``, stand for member ``m``. Drawn as networks instead, the
members answer their weight noise at every order: a narrow peak is smeared at second order, and a
posterior over whole networks gives members far from the trained one. The weights need the
exact log-likelihood of the events; the members share the events.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bayesgen.bayes.laplace import event_rows
from bayesgen.bayes.model import ensemble, variational_layers


def member_offsets(module: nn.Module, draws: int, seed: int) -> list[torch.Tensor]:
    """Per variational layer, the members' offsets ``Δ[W | b]`` from the posterior means
    ``(draws, out, in + 1)``: the members :func:`~bayesgen.bayes.model.weight_draws` draws with
    ``seed``."""
    layers = variational_layers(module)
    members = [[layer.drawn_offsets()[0] for layer in layers] for _ in ensemble(module, draws, seed)]
    return [torch.stack(per_layer) for per_layer in zip(*members)]


def linearised_weights(module: nn.Module, nll: Callable[[], torch.Tensor],
                       offsets: list[torch.Tensor]) -> torch.Tensor:
    """``w_m = 1 − ∇_θ NLL(x) · Δθ_m`` ``(draws, n)`` of ``n`` events, ``nll`` returning their
    summed negative log-likelihood with ``module`` at its posterior means (nats; every variational
    layer seeing one row per event), ``offsets`` as :func:`member_offsets`."""
    weights = None
    for n, rows in event_rows(variational_layers(module), [(nll, None)]):
        weights = torch.ones(len(offsets[0]), n, dtype=offsets[0].dtype, device=offsets[0].device)
        for index, gradients, centred, _ in rows:
            if centred.shape[1] != 1:
                raise ValueError(f"variational layer {index} sees {centred.shape[1]} rows per event; the "
                                 "linearised weights need one")
            inputs = torch.cat([centred[:, 0], torch.ones_like(centred[:, 0, :1])], dim=1)
            weights -= torch.einsum("no,mop,np->mn", gradients[:, 0], offsets[index], inputs).detach()
    return weights
