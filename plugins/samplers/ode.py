"""ODE integration for flow samplers: fixed-step Euler, midpoint, RK4 and adaptive dopri5.

States are tuples of tensors, so a sample and its running log-density integrate together.
``f(t, state) → d state / dt`` with ``t`` a 0-dim tensor.
"""
from __future__ import annotations

from typing import Callable

import torch
import torchdiffeq

from bayesgen.core.errors import ConfigError

State = tuple[torch.Tensor, ...]
Field = Callable[[torch.Tensor, State], State]

#: network evaluations per step of each fixed-step method
EVALUATIONS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}
ADAPTIVE = ("dopri5",)
SOLVERS = tuple(EVALUATIONS_PER_STEP) + ADAPTIVE


def _axpy(state: State, h: torch.Tensor, slope: State) -> State:
    return tuple(s + h * d for s, d in zip(state, slope))


def _step(f: Field, method: str, t: torch.Tensor, h: torch.Tensor, y: State) -> State:
    """One step of size ``h`` from ``(t, y)``."""
    k1 = f(t, y)
    if method == "euler":
        return _axpy(y, h, k1)
    if method == "midpoint":
        return _axpy(y, h, f(t + h / 2, _axpy(y, h / 2, k1)))
    k2 = f(t + h / 2, _axpy(y, h / 2, k1))
    k3 = f(t + h / 2, _axpy(y, h / 2, k2))
    k4 = f(t + h, _axpy(y, h, k3))
    return tuple(s + h / 6 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(y, k1, k2, k3, k4))


def integrate(f: Field, y0: State, t0: float, t1: float, method: str = "midpoint", steps: int = 50,
              rtol: float = 1e-5, atol: float = 1e-5) -> State:
    """``y(t1)`` for ``dy/dt = f(t, y)``, ``y(t0) = y0``; ``steps`` is ignored by adaptive methods."""
    if method not in SOLVERS:
        raise ConfigError(f"unknown ODE solver {method!r}; known: {', '.join(SOLVERS)}")
    device = y0[0].device
    if method in ADAPTIVE:
        times = torch.tensor([t0, t1], dtype=y0[0].dtype, device=device)
        return tuple(y[-1] for y in torchdiffeq.odeint(f, y0, times, method=method, rtol=rtol, atol=atol))
    if steps < 1:
        raise ConfigError(f"the number of ODE steps must be positive, got {steps}")
    grid = torch.linspace(t0, t1, steps + 1, device=device, dtype=y0[0].dtype)
    y = y0
    for t, t_next in zip(grid[:-1], grid[1:]):
        y = _step(f, method, t, t_next - t, y)
    return y
