"""Autoregressive transformer with a Gaussian mixture per coordinate (JetGPT-style).

The event's density factorises over its coordinates, taken in the order ``π`` (option ``order``):

    log p(x | c) = Σᵢ log p(x_π(i) | x_π(0) … x_π(i−1), c),
    p(x_j | ·)   = Σ_k w_k N(x_j; μ_k, σ_k²),   K = ``components`` Gaussians.

Token 0 is a start token; token i ≥ 1 carries the value of coordinate π(i − 1), embedded
linearly plus a learned embedding of its position. Pre-norm blocks of causal self-attention
(query/key/value/output projections are ``nn.Linear``, so ``--bayesian`` swaps every one of them)
turn token i into a state h_i that has seen π(0) … π(i − 1) only. The configured **backbone**
(``make_network``; ``--backbone mlp`` by default) maps ``(h_i, t = (i + 1)/d, c)`` to the mixture
of coordinate π(i): K weights (log-softmax), K means and K log σ (clamped to LOG_SIGMA_RANGE),
the means offset by the standard-normal quantiles Φ⁻¹((k + ½)/K): the head starts at zero, and
components that start alike get the same gradient, so the mixture would stay one Gaussian. The
conditions enter through that head; the transformer's size is this sampler's own option
(``width``, ``depth``, ``heads``), the head's is the backbone's. A backbone that needs structured
features (``transformer``, ``unet``) refuses the head's shape with a clear error.

The loss is the exact negative log-likelihood per feature; :meth:`log_prob` is exact. Sampling
draws π(0), π(1), … in turn, each step feeding one new token through the blocks with a
key/value cache, so an event costs d steps of one token each (attention to the cached keys
aside). A Bayesian model holds one weight draw for all d steps of an event.

Absent features (a process's ``feature_mask``, handed over by core): they leave the likelihood of
training, enter the later tokens as 0, and are drawn from core's N(0, absent_std²) fill when
sampling; the loop stops after the last coordinate any event of the batch has. :meth:`log_prob`
adds that fill's density for them, so it is a density over all features, comparable with the
other samplers'.

Departures from JetGPT (Butter et al., arXiv:2305.10475): one model for every jet multiplicity
with the condition fed to the head (JetGPT adds a multiplicity embedding to every token); the
head is a backbone instead of one linear layer; generation reuses a key/value cache instead of
re-running the growing sequence.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.sampler import Sampler, weighted_mean

LOG_SIGMA_RANGE = (-7.0, 3.0)  #: clamp of each component's log σ, standardised units
ORDERS = ("natural", "reverse")


def mixture_parameters(raw: torch.Tensor, components: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Head output ``(..., 3K)`` → ``(log w, μ, log σ)``, each ``(..., K)``, in float32 or wider."""
    raw = raw.to(torch.promote_types(raw.dtype, torch.float32))
    logits, means, log_sigmas = raw.unflatten(-1, (3, components)).unbind(-2)
    return logits.log_softmax(-1), means, log_sigmas.clamp(*LOG_SIGMA_RANGE)


def mixture_log_prob(raw: torch.Tensor, x: torch.Tensor, components: int) -> torch.Tensor:
    """``log Σ_k w_k N(x; μ_k, σ_k²)`` for head outputs ``(..., 3K)`` and values ``x (...)``."""
    log_weights, means, log_sigmas = mixture_parameters(raw, components)
    z = (x[..., None].to(means.dtype) - means) * torch.exp(-log_sigmas)
    return torch.logsumexp(log_weights - 0.5 * z.square() - log_sigmas - 0.5 * math.log(2 * math.pi), dim=-1)


def mixture_sample(raw: torch.Tensor, uniform: torch.Tensor, normal: torch.Tensor, components: int) -> torch.Tensor:
    """One value per row of ``raw (n, 3K)``: the component whose cumulative weight first
    exceeds ``uniform (n,)``, then ``μ_k + σ_k · normal (n,)``."""
    log_weights, means, log_sigmas = mixture_parameters(raw, components)
    cumulative = log_weights.exp().cumsum(-1)
    k = (cumulative < uniform[:, None]).sum(-1, keepdim=True).clamp(max=components - 1)
    return means.gather(-1, k)[:, 0] + log_sigmas.gather(-1, k)[:, 0].exp() * normal


class KeyValueCache:
    """Keys and values ``(n, heads, tokens, width/heads)`` of one attention layer, filled token by token."""

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def append(self, keys: torch.Tensor, values: torch.Tensor, position: int,
               tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store one token's ``(n, heads, 1, width/heads)`` at ``position``; return every key and value so far."""
        if self.keys is None:
            self.keys = keys.new_empty(*keys.shape[:2], tokens, keys.shape[-1])
            self.values = torch.empty_like(self.keys)
        self.keys[:, :, position] = keys[:, :, 0]
        self.values[:, :, position] = values[:, :, 0]
        return self.keys[:, :, :position + 1], self.values[:, :, :position + 1]


class CausalSelfAttention(nn.Module):
    """Multi-head attention where token i attends to tokens ≤ i, from ``nn.Linear`` projections."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.output = (nn.Linear(width, width) for _ in range(4))

    def _heads(self, h: torch.Tensor) -> torch.Tensor:
        return h.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (n, L, W) → (n, heads, L, W/heads)

    def forward(self, h: torch.Tensor, cache: KeyValueCache | None = None, position: int = 0,
                tokens: int = 0) -> torch.Tensor:
        """``h (n, L, W)`` → ``(n, L, W)``; with a ``cache``, ``h`` is the one token at ``position``."""
        q, k, v = self._heads(self.query(h)), self._heads(self.key(h)), self._heads(self.value(h))
        if cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k, v = cache.append(k, v, position, tokens)
            out = F.scaled_dot_product_attention(q, k, v)
        return self.output(out.transpose(1, 2).flatten(2))


class CausalBlock(nn.Module):
    """Pre-norm block: ``h + Attn(LN(h))``, then ``h + MLP(LN(h))``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor, cache: KeyValueCache | None = None, position: int = 0,
                tokens: int = 0) -> torch.Tensor:
        h = h + self.attention(self.attention_norm(h), cache, position, tokens)
        return h + self.mlp(self.mlp_norm(h))


class CausalTransformer(nn.Module):
    """Token values ``(n, L)`` → states ``(n, L, width)``; state i depends on values ≤ i only."""

    def __init__(self, tokens: int, width: int, depth: int, heads: int):
        super().__init__()
        self.tokens = tokens
        self.value_embedding = nn.Linear(1, width)
        self.position_embedding = nn.Parameter(0.02 * torch.randn(tokens, width))
        self.blocks = nn.ModuleList(CausalBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def _embed(self, values: torch.Tensor, positions: slice) -> torch.Tensor:
        return self.value_embedding(values[..., None]) + self.position_embedding[positions]

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        h = self._embed(values, slice(0, values.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def step(self, value: torch.Tensor, position: int, caches: list[KeyValueCache]) -> torch.Tensor:
        """The state ``(n, width)`` of the token at ``position`` with value ``(n,)``, the earlier
        tokens' keys and values coming from ``caches`` (one per block, filled in turn)."""
        h = self._embed(value[:, None], slice(position, position + 1))
        for block, cache in zip(self.blocks, caches):
            h = block(h, cache, position, self.tokens)
        return self.norm(h)[:, 0]


def coordinate_order(order: str | list[int], n_features: int) -> list[int]:
    """The permutation π: ``natural`` (0 … d−1), ``reverse`` (d−1 … 0), or an explicit list of
    every feature index once."""
    if order == "natural":
        return list(range(n_features))
    if order == "reverse":
        return list(range(n_features - 1, -1, -1))
    if isinstance(order, str) or sorted(order) != list(range(n_features)):
        raise ConfigError(f"ar order must be {' or '.join(ORDERS)} or a permutation of 0 … {n_features - 1}, "
                          f"got {order!r}")
    return [int(i) for i in order]


class AutoregressiveTransformer(Sampler):
    """Autoregressive transformer: a Gaussian mixture per coordinate given the ones before (JetGPT)."""

    def __init__(self, make_network: Callable[..., nn.Module], n_features: int, components: int = 16,
                 order: str | list[int] = "natural", width: int = 128, depth: int = 3, heads: int = 4):
        if components < 1 or depth < 1 or heads < 1 or width % heads:
            raise ConfigError(f"ar needs components, depth, heads ≥ 1 and width divisible by heads; got "
                              f"components={components}, depth={depth}, heads={heads}, width={width}")
        network = nn.ModuleDict({"transformer": CausalTransformer(n_features, width, depth, heads),
                                 "head": make_network(width, 3 * components)})
        super().__init__(network, n_features)
        self.components = components
        self.register_buffer("order", torch.tensor(coordinate_order(order, n_features)), persistent=False)
        self.register_buffer("head_time", (torch.arange(n_features) + 1.0) / n_features, persistent=False)
        quantiles = torch.special.ndtri((torch.arange(components) + 0.5) / components)
        self.register_buffer("head_offset", torch.cat([torch.zeros(components), quantiles, torch.zeros(components)]),
                             persistent=False)

    def sampling_networks(self) -> list[tuple[nn.Module, str]]:
        """The head (``--compile`` compiles it); the transformer's cached steps run eagerly."""
        return [(self.network, "head")]

    def _head(self, states: torch.Tensor, positions: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Mixture parameters ``(n, L, 3K)`` of the coordinates at ``positions (L,)``."""
        n, length = states.shape[:2]
        rows_cond = None if cond is None else cond.repeat_interleave(length, dim=0)
        time = self.head_time[positions].repeat(n)
        raw = self.network["head"](states.flatten(0, 1), time, rows_cond).unflatten(0, (n, length))
        return raw + self.head_offset.to(raw.dtype)

    def _present(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        """Which coordinates are present ``(n, d)`` bool, in the order π; ``None`` for all."""
        if self.feature_mask is None:
            return None
        return self.feature_mask.present(cond)[:, self.order]

    def coordinate_log_probs(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x_π(i) | x_π(<i), c)`` ``(n, d)`` in the order π, absent coordinates included
        (they enter later tokens as 0)."""
        return self._coordinate_log_probs(x, cond, self._present(cond))

    def _coordinate_log_probs(self, x: torch.Tensor, cond: torch.Tensor | None,
                              present: torch.Tensor | None) -> torch.Tensor:
        ordered = x[:, self.order]
        if present is not None:
            ordered = torch.where(present, ordered, torch.zeros_like(ordered))
        values = torch.cat([torch.zeros_like(ordered[:, :1]), ordered[:, :-1]], dim=1)  # token 0: start
        states = self.network["transformer"](values)
        raw = self._head(states, torch.arange(self.n_features, device=x.device), cond)
        return mixture_log_prob(raw, ordered, self.components)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None, **_) -> torch.Tensor:
        """Exact ``log p(x)`` per event ``(n,)`` in feature space; absent coordinates count with
        the density of core's fill, N(0, absent_std²)."""
        present = self._present(cond)
        log_probs = self._coordinate_log_probs(x, cond, present)
        if present is None:
            return log_probs.sum(-1)
        std = self.feature_mask.absent_std
        z = x[:, self.order].to(log_probs.dtype) / std
        fill = -0.5 * z.square() - math.log(std) - 0.5 * math.log(2 * math.pi)
        return torch.where(present, log_probs, fill).sum(-1)

    def loss(self, x, cond=None, generator=None, weights=None):
        present = self._present(cond)
        log_probs = self._coordinate_log_probs(x, cond, present)
        if present is not None:
            log_probs = torch.where(present, log_probs, torch.zeros_like(log_probs))
        return -weighted_mean(log_probs.sum(-1), weights) * self.likelihood_scale()

    def likelihood_scale(self) -> float:
        """The loss is the NLL per event averaged over the features."""
        return 1.0 / self.n_features

    @torch.no_grad()
    def sample(self, n, cond=None, steps=None, solver=None, generator=None):
        """``n`` events drawn coordinate by coordinate; ``steps`` and ``solver`` do not apply."""
        device, dtype = self.device, self.network["transformer"].position_embedding.dtype
        present = self._present(cond)
        # coordinates after the last one any event has are only filled
        needed = self.n_features if present is None else int(present.any(0).cumsum(0).argmax()) + 1
        ordered = torch.zeros(n, self.n_features, device=device, dtype=dtype)
        caches = [KeyValueCache() for _ in self.network["transformer"].blocks]
        value = torch.zeros(n, device=device, dtype=dtype)  # the start token's
        for i in range(self.n_features):
            uniform = torch.rand(n, device=device, generator=generator, dtype=dtype)
            normal = torch.randn(n, device=device, generator=generator, dtype=dtype)
            if i < needed:
                state = self.network["transformer"].step(value, i, caches)
                raw = self._head(state[:, None], torch.tensor([i], device=device), cond)[:, 0]
                value = mixture_sample(raw, uniform, normal, self.components).to(dtype)
            if present is not None:
                value = torch.where(present[:, i], value, self.feature_mask.absent_std * normal)
            ordered[:, i] = value
            if present is not None:
                value = torch.where(present[:, i], value, torch.zeros_like(value))
        return torch.empty_like(ordered).index_copy_(1, self.order, ordered)

    def evaluations_per_event(self, steps=None, solver=None):
        return self.n_features


@hookimpl
def bayesgen_samplers():
    return {"ar": AutoregressiveTransformer}
