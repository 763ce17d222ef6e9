"""Laplace posterior of a trained network's variational layers (MacKay 1992; Ritter et al. 2018;
Daxberger et al. 2021, "Laplace Redux").

About the trained weights θ* (the posterior means, left as trained) the posterior is the Gaussian
whose precision is the curvature of the negative log-posterior there,

    Λ = Σ_n w_n g_n g_nᵀ + 1/σ_p²,    g_n = ∇_θ NLL_n(θ*),

the empirical Fisher of the training events (weights ``w_n``, mean 1) plus the prior
``N(0, σ_p²)``'s precision, kept diagonal: the same mean-field family as
:class:`~bayesgen.bayes.layers.VariationalLinear`, whose ``log_sigma`` becomes ``−½ log Λ``.
Unlike a variational fit, the means are not moved, so the posterior-mean network is the trained
one, and no hidden unit is switched off to save KL (mean-field variational inference prunes
units whose outgoing weights it cannot afford to pin down). The prior width σ_p is the one that
maximises the Laplace evidence

    log p(D | σ_p) ≈ −NLL(θ*) − Σ_i [θ_i² / (2σ_p²) + ½ log(1 + σ_p² F_i)],   F_i = Λ_i − 1/σ_p²,

over a logarithmic grid (:func:`best_prior_std`): one width for every layer, or one per layer
(``per_layer``; the evidence is a sum of one term per layer, each maximised on its own, as the
layer-wise prior precision of Laplace Redux). Layers must see one row per event (a leading
event dimension; any dimensions between, e.g. points, are summed per event), so that each
event's gradient is read off the layer's inputs and output gradients in one backward pass.

Two curvatures: :func:`empirical_fisher`, the diagonal above, and :func:`kronecker_factors`
(K-FAC; Martens & Grosse 2015, Ritter et al. 2018), which keeps the correlations within a
layer as ``F ≈ A ⊗ G`` over ``W̃ = [W | b]``: ``A`` the mean outer product of the layer's
centred inputs (with a 1 appended), ``G`` the summed outer product of its output gradients.
Its posterior is matrix normal (:class:`~bayesgen.bayes.layers.KroneckerLinear`): in the
eigenbases of ``A`` and ``G`` the precision is diagonal, ``λ_G,i λ_A,j + 1/σ_p²``. A diagonal
posterior gives each weight the width its own curvature allows, as if the others were fixed, and
so moves the network along directions the data pin down together; the Kronecker one puts the
width where the likelihood is flattest (docs/precision.md measures both).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from bayesgen.bayes.layers import KroneckerLinear
from bayesgen.bayes.model import variational_layers

#: the prior widths :func:`best_prior_std` chooses from: 10⁻³ … 10, 20 per decade
PRIOR_GRID = np.logspace(-3, 1, 81)
#: a prior width: one for every variational layer, or one per layer (in the order of
#: :func:`~bayesgen.bayes.model.variational_layers`)
PriorStd = float | Sequence[float]
_EVENT_CHUNK = 256   #: events whose per-event weight gradients are held at once (layers with extra dimensions)


class _Recorder:
    """Forward hooks that keep each variational layer's inputs and outputs of every call."""

    def __init__(self, layers: list[nn.Module]):
        self.calls: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
        self._hooks = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, index: int):
        def record(module, args, output) -> None:
            self.calls[index].append((args[0], output))
        return record

    def clear(self) -> None:
        for calls in self.calls:
            calls.clear()

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()


def _layers(module: nn.Module) -> list:
    layers = variational_layers(module)
    if not layers:
        raise ValueError("the module has no variational layers; call bayesianize first")
    return layers


def per_layer_prior(prior_std: PriorStd, layers: int) -> list[float]:
    """``prior_std`` as one width per layer of ``layers`` layers."""
    if isinstance(prior_std, Sequence):
        if len(prior_std) != layers:
            raise ValueError(f"{len(prior_std)} prior widths for {layers} variational layers")
        return [float(s) for s in prior_std]
    return [float(prior_std)] * layers


def _per_event(tensors: list[torch.Tensor], events: int, name: str) -> torch.Tensor:
    """A layer's rows of all its calls as ``(events, rows per event, features)``."""
    for tensor in tensors:
        if tensor.dim() < 2 or tensor.shape[0] != events:
            raise ValueError(f"variational layer {name} saw a batch of shape {tuple(tensor.shape)}, not one row "
                             f"per event of the {events} events: the Laplace posterior needs each event's rows")
    return torch.cat([t.reshape(events, -1, t.shape[-1]) for t in tensors], dim=1)


def center_inputs(module: nn.Module, forward_batches: Iterable[Callable[[], object]]) -> None:
    """Set each variational layer's input centre ``m`` to its mean input over the batches (each a
    callable that runs ``module`` on some events) and absorb it into the bias, ``b ← b + μ m``:
    the same function, with the bias now the output at the inputs' mean (see
    :mod:`bayesgen.bayes.layers`)."""
    layers = _layers(module)
    for layer in layers:
        if layer.input_center is None:
            raise ValueError("center_inputs needs layers built with center_inputs=True")
    recorder = _Recorder(layers)
    sums = [torch.zeros_like(layer.input_center, dtype=torch.float64) for layer in layers]
    rows = [0] * len(layers)
    try:
        with torch.no_grad():
            for run in forward_batches:
                recorder.clear()
                run()
                for i, calls in enumerate(recorder.calls):
                    for inputs, _ in calls:
                        flat = inputs.reshape(-1, inputs.shape[-1])
                        sums[i] += flat.sum(0, dtype=torch.float64)
                        rows[i] += len(flat)
            for layer, total, count in zip(layers, sums, rows):
                if count == 0:
                    raise ValueError("a variational layer was never called on the batches")
                centre = (total / count).to(layer.input_center.dtype)
                if layer.bias_mean is not None:
                    layer.bias_mean += layer.weight_mean @ (centre - layer.input_center)
                layer.input_center.copy_(centre)
    finally:
        recorder.remove()


Batches = Iterable[tuple[Callable[[], torch.Tensor], "torch.Tensor | None"]]


def event_rows(layers: list, batches: Batches) -> Iterator[tuple[int, list[tuple]]]:
    """For each batch: its number of events ``n`` and, for each variational layer called on it,
    ``(layer index, output gradients (n, rows, out), centred inputs (n, rows, in), event weights
    (n,))``. Each batch is a callable returning the summed, unweighted NLL of its events (nats)
    and those events' weights (None: all 1; then ``n`` is the first layer's leading dimension)."""
    recorder = _Recorder(layers)
    try:
        for nll, event_weights in batches:
            recorder.clear()
            total = nll()
            outputs = [output for calls in recorder.calls for _, output in calls]
            if not outputs:
                raise ValueError("no variational layer was called on a batch")
            gradients = [torch.zeros_like(output) if gradient is None else gradient.detach() for output, gradient
                         in zip(outputs, torch.autograd.grad(total, outputs, allow_unused=True))]
            n, rows = outputs[0].shape[0] if event_weights is None else len(event_weights), []
            for i, (layer, calls) in enumerate(zip(layers, recorder.calls)):
                if not calls:
                    continue
                deltas, gradients = gradients[:len(calls)], gradients[len(calls):]
                centre = 0 if layer.input_center is None else layer.input_center
                inputs = _per_event([x.detach() - centre for x, _ in calls], n, str(i))
                weights = (torch.ones(n, device=inputs.device, dtype=inputs.dtype) if event_weights is None
                           else event_weights.to(inputs.device, inputs.dtype))
                rows.append((i, _per_event(deltas, n, str(i)), inputs, weights))
            yield n, rows
    finally:
        recorder.remove()


@dataclass
class Curvature:
    """The diagonal empirical Fisher ``Σ_n w_n g_n²`` of every variational layer's weights and
    biases (the shapes of ``weight_mean`` and ``bias_mean``; bias None without one), summed over
    ``events`` events."""

    weight: list[torch.Tensor]
    bias: list[torch.Tensor | None]
    events: int

    def layer_log_evidence(self, module: nn.Module, prior_std: PriorStd) -> list[float]:
        """Each layer's term of the Laplace log evidence of ``prior_std``, up to terms that do not
        depend on it (nats): ``−Σ_i [θ_i²/(2σ_p²) + ½ log(1 + σ_p² F_i)]`` over the layer's
        posterior means θ_i."""
        layers = _layers(module)
        terms = []
        for layer, fisher_w, fisher_b, std in zip(layers, self.weight, self.bias,
                                                  per_layer_prior(prior_std, len(layers))):
            pairs = [(layer.weight_mean, fisher_w)] + ([] if fisher_b is None else [(layer.bias_mean, fisher_b)])
            terms.append(-sum(float((mean.detach().double().square() / (2 * std**2)
                                     + 0.5 * torch.log1p(std**2 * fisher.double())).sum()) for mean, fisher in pairs))
        return terms

    def log_evidence(self, module: nn.Module, prior_std: PriorStd) -> float:
        """The Laplace log evidence of ``prior_std``, the sum of :meth:`layer_log_evidence`."""
        return sum(self.layer_log_evidence(module, prior_std))

    def set_posterior(self, module: nn.Module, prior_std: PriorStd) -> None:
        """Give every variational layer the prior ``N(0, σ_p²)`` (its own with one width per layer)
        and the widths ``σ = (F + 1/σ_p²)^(−1/2)`` about its current means."""
        layers = _layers(module)
        with torch.no_grad():
            for layer, fisher_w, fisher_b, std in zip(layers, self.weight, self.bias,
                                                      per_layer_prior(prior_std, len(layers))):
                layer.prior_std = std
                layer.weight_log_sigma.copy_(-0.5 * torch.log(fisher_w + std**-2))
                if fisher_b is not None:
                    layer.bias_log_sigma.copy_(-0.5 * torch.log(fisher_b + std**-2))


def empirical_fisher(module: nn.Module, batches: Batches) -> Curvature:
    """``Σ_n w_n g_n²`` over events, ``g_n`` the gradient of event ``n``'s negative
    log-likelihood with respect to each variational layer's posterior means (batches as
    :func:`event_rows`)."""
    layers = _layers(module)
    weight = [torch.zeros_like(layer.weight_mean) for layer in layers]
    bias = [None if layer.bias_mean is None else torch.zeros_like(layer.bias_mean) for layer in layers]
    events = 0
    for n, rows in event_rows(layers, batches):
        events += n
        for i, delta, inputs, w in rows:
            if delta.shape[1] == 1:
                weight[i] += (delta[:, 0].square() * w[:, None]).T @ inputs[:, 0].square()
            else:
                for start in range(0, n, _EVENT_CHUNK):
                    part = slice(start, start + _EVENT_CHUNK)
                    per_event = torch.einsum("epo,epi->eoi", delta[part], inputs[part])
                    weight[i] += (per_event.square() * w[part, None, None]).sum(0)
            if bias[i] is not None:
                bias[i] += (delta.sum(1).square() * w[:, None]).sum(0)
    return Curvature(weight, bias, events)


@dataclass
class KroneckerFactors:
    """The Kronecker factors (float64) of every variational layer's empirical Fisher over ``W̃ = [W | b]``:
    ``inputs`` ``A`` ``(in + 1, in + 1)``, the weighted mean of ``ã ãᵀ`` over the layer's rows
    (``ã`` its centred input with a 1 appended), and ``gradients`` ``G`` ``(out, out)``, the
    weighted sum of ``δ δᵀ`` over them (``δ`` the NLL's gradient at its output), so that
    ``F ≈ A ⊗ G``; over ``events`` events."""

    inputs: list[torch.Tensor]
    gradients: list[torch.Tensor]
    events: int

    @cached_property
    def _eigen(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(λ_A, Q_A, λ_G, Q_G)`` per layer, the eigenvalues clipped at 0 (computed once: the
        evidence is evaluated on every width of the prior grid)."""
        pairs = []
        for a, g in zip(self.inputs, self.gradients):
            (la, qa), (lg, qg) = torch.linalg.eigh(a), torch.linalg.eigh(g)
            pairs.append((la.clamp(min=0), qa, lg.clamp(min=0), qg))
        return pairs

    def layer_log_evidence(self, module: nn.Module, prior_std: PriorStd) -> list[float]:
        """As :meth:`Curvature.layer_log_evidence`, with ``F``'s eigenvalues ``λ_G,i λ_A,j``."""
        layers = _layers(module)
        return [-float(_augmented(layer).double().square().sum() / (2 * std**2)
                       + 0.5 * torch.log1p(std**2 * lg.double()[:, None] * la.double()[None, :]).sum())
                for layer, (la, _, lg, _), std in zip(layers, self._eigen, per_layer_prior(prior_std, len(layers)))]

    def log_evidence(self, module: nn.Module, prior_std: PriorStd) -> float:
        """The Laplace log evidence of ``prior_std``, the sum of :meth:`layer_log_evidence`."""
        return sum(self.layer_log_evidence(module, prior_std))

    def set_posterior(self, module: nn.Module, prior_std: PriorStd) -> None:
        """Give every (:class:`~bayesgen.bayes.layers.KroneckerLinear`) layer the prior
        ``N(0, σ_p²)`` (its own with one width per layer) and the matrix-normal posterior about
        its current means; its ``log_sigma`` become the marginal widths."""
        layers = _layers(module)
        with torch.no_grad():
            for layer, (la, qa, lg, qg), std in zip(layers, self._eigen, per_layer_prior(prior_std, len(layers))):
                if not isinstance(layer, KroneckerLinear):
                    raise ValueError("a Kronecker-factored posterior needs KroneckerLinear layers "
                                     "(bayesianize(..., posterior='kronecker'))")
                scale = (lg[:, None] * la[None, :] + std**-2).rsqrt()
                variance = qg.square() @ scale.square() @ qa.square().T
                layer.prior_std = std
                layer.basis_in.copy_(qa)
                layer.basis_out.copy_(qg)
                layer.scale.copy_(scale)
                layer.weight_log_sigma.copy_(0.5 * variance[:, :-1].log())
                layer.bias_log_sigma.copy_(0.5 * variance[:, -1].log())


def _augmented(layer) -> torch.Tensor:
    """``[W | b]`` of a layer's posterior means."""
    return torch.cat([layer.weight_mean.detach(), layer.bias_mean.detach()[:, None]], dim=1)


def kronecker_factors(module: nn.Module, batches: Batches) -> KroneckerFactors:
    """The Kronecker factors ``A`` and ``G`` of every variational layer (batches as
    :func:`event_rows`; several rows of one event count as several rows, K-FAC's "expand")."""
    layers = _layers(module)
    inputs = [torch.zeros(layer.in_features + 1, layer.in_features + 1, dtype=torch.float64,
                          device=layer.weight_mean.device) for layer in layers]
    gradients = [torch.zeros(layer.out_features, layer.out_features, dtype=torch.float64,
                             device=layer.weight_mean.device) for layer in layers]
    weight_sums = [0.0] * len(layers)
    events = 0
    for n, rows in event_rows(layers, batches):
        events += n
        for i, delta, centred, w in rows:
            augmented = torch.cat([centred, torch.ones_like(centred[..., :1])], dim=-1).double()
            row_weights = w.double()[:, None].expand(augmented.shape[:2]).reshape(-1, 1)
            flat_in = augmented.reshape(-1, augmented.shape[-1])
            flat_delta = delta.double().reshape(-1, delta.shape[-1])
            inputs[i] += (flat_in * row_weights).T @ flat_in
            gradients[i] += (flat_delta * row_weights).T @ flat_delta
            weight_sums[i] += float(row_weights.sum())
    if 0.0 in weight_sums:
        raise ValueError("a variational layer was never called on the batches")
    return KroneckerFactors([a / total for a, total in zip(inputs, weight_sums)], gradients, events)


def best_prior_std(module: nn.Module, curvature: Curvature | KroneckerFactors,
                   grid: Iterable[float] = PRIOR_GRID, per_layer: bool = False) -> PriorStd:
    """The prior width of ``grid`` with the largest Laplace log evidence, or with ``per_layer``
    each layer's width of ``grid`` with the largest term of it (a list, one per layer)."""
    widths = [float(s) for s in grid]
    terms = np.array([curvature.layer_log_evidence(module, s) for s in widths])   # (widths, layers)
    if per_layer:
        return [widths[i] for i in terms.argmax(0)]
    return widths[int(terms.sum(1).argmax())]
