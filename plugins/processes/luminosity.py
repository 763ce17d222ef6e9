"""Leading-order Born configurations drawn from parton luminosities in pp at √s = 13 TeV.

A Born event is two incoming partons with momentum fractions x₁ (beam 1, +z) and x₂ (beam 2,
−z) forming a colour-singlet system of mass M and rapidity y: x₁,₂ = (M/√s) e^{±y}. The factor-
isation scale is μ_F = M and the densities are GRV94 LO (:mod:`.pdf`).

* :class:`DrellYanBorn` — q q̄ → γ*/Z → ℓ⁻ℓ⁺ for q = d u s c b:
  d³σ/dM dy dcosθ* = (2/M) Σ_q [x₁f_q(x₁) x₂f_q̄(x₂) + (q ↔ q̄)] dσ̂_q/dcosθ*(M²)
  (:mod:`.electroweak`), θ* measured from the quark, so which beam brought the quark (and
  hence the sign of cosθ* seen from the beams) follows the densities; cosθ* is drawn from
  1 + c² + (8/3)A_FB c of the channel's quark type.
* :class:`GluonFusionBorn` — a colour singlet of fixed mass from g g: y from x₁g(x₁) x₂g(x₂).

The channel luminosities are tabulated from the analytic densities on a grid uniform in ln M
(121 nodes) and y (241 nodes), once per mass window; how they are sampled is in
:class:`DrellYanBorn`. The tests compare the samples with direct integrations of the densities.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from bayesgen.plugins.processes import electroweak as ew
from bayesgen.plugins.processes import pdf

SQRT_S = 13000.0                 #: pp centre-of-mass energy (GeV)
E_BEAM = 0.5 * SQRT_S            #: beam energy (GeV)
UP_FLAVOURS, DOWN_FLAVOURS = (2, 4), (1, 3, 5)
_N_M, _N_Y = 121, 241
X_BORN_MAX = 0.99                #: largest Born momentum fraction (densities ~ (1 − x)³ there)


def born_fractions(mass: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x₁, x₂) = (M/√s) e^{±y}."""
    root_tau = mass / SQRT_S
    return root_tau * np.exp(y), root_tau * np.exp(-y)


def channel_luminosities(mass: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x₁f(x₁) x₂f(x₂) of the ten q q̄ channels ``(..., 10)`` at μ_F = M: channel
    2(q − 1) + d for quark q = 1…5 (d u s c b), d = 0 with the quark from beam 1, d = 1 with the
    antiquark from beam 1; zero outside the kinematic limit x₁,₂ < 1."""
    x1, x2 = born_fractions(mass, y)
    inside = (x1 < 1.0) & (x2 < 1.0)
    q2 = mass * mass
    f1 = pdf.parton_densities(np.where(inside, x1, 0.5), q2)
    f2 = pdf.parton_densities(np.where(inside, x2, 0.5), q2)
    lum = np.stack([f1[..., q + 5 * d] * f2[..., q + 5 * (1 - d)] for q in range(1, 6) for d in (0, 1)],
                   axis=-1)
    return np.where(inside[..., None], lum, 0.0)


#: quark flavour (1…5) and whether the antiquark comes from beam 1, per channel
CHANNEL_QUARK = np.repeat(np.arange(1, 6), 2)
CHANNEL_ANTI_FIRST = np.tile([0, 1], 5)
CHANNEL_UP = np.isin(CHANNEL_QUARK, UP_FLAVOURS)


class DrellYanBorn:
    """LO Drell–Yan Born configurations with M in [m_low, m_high] (see module docstring).

    Sampling: M by inverse CDF of dσ/dM on a fine grid (0.02 GeV steps at the pole); the channel
    c by its share σ̂_c(M) Λ_c(M), Λ_c = ∫ dy L_c(M, y); y by inverse CDF of L_c(M_i, y) in a row
    M_i of the table chosen with the linear-interpolation weights of M between its nodes."""

    def __init__(self, m_low: float, m_high: float):
        self.m_low, self.m_high = float(m_low), float(m_high)
        self.log_m = np.linspace(np.log(m_low), np.log(m_high), _N_M)
        self.y_max = np.log(SQRT_S / m_low)
        self.y = np.linspace(-self.y_max, self.y_max, _N_Y)
        lum = channel_luminosities(np.exp(self.log_m)[:, None], self.y[None, :])   # (N_M, N_Y, 10)
        #: L_c(M_i, y_j) ``(10, N_M, N_Y)``
        self.luminosity = np.ascontiguousarray(np.moveaxis(lum, -1, 0))
        cells = 0.5 * (self.luminosity[..., 1:] + self.luminosity[..., :-1]) * np.diff(self.y)
        cumulative = np.concatenate([np.zeros(cells.shape[:-1] + (1,)), np.cumsum(cells, axis=-1)], axis=-1)
        #: Λ_c(M_i) ``(N_M, 10)``
        self.integrated = np.ascontiguousarray(cumulative[..., -1].T)
        rows = cumulative / np.where(cumulative[..., -1:] > 0, cumulative[..., -1:], 1.0)
        # each row's CDF offset by its row number: one sorted array for every (channel, M node)
        self._row_cdf = (rows + np.arange(10 * _N_M).reshape(10, _N_M, 1)).ravel()
        self._mass_nodes = _mass_grid(self.m_low, self.m_high)
        density = self.mass_density(self._mass_nodes)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(self._mass_nodes))])
        self._sigma = float(cdf[-1])
        self._mass_cdf = cdf / cdf[-1]

    @staticmethod
    def partonic_pb(mass: np.ndarray) -> np.ndarray:
        """σ̂ ``(n, 10)`` in pb of each channel at ŝ = M²."""
        s_hat = mass * mass
        by_type = np.stack([ew.sigma_hat_pb(s_hat, ew.DOWN), ew.sigma_hat_pb(s_hat, ew.UP)], axis=1)
        return by_type[:, CHANNEL_UP.astype(np.intp)]

    def _mass_position(self, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = (np.log(mass) - self.log_m[0]) * ((_N_M - 1) / (self.log_m[-1] - self.log_m[0]))
        np.clip(f, 0.0, _N_M - 1.000001, out=f)
        i = f.astype(np.intp)
        return i, f - i

    def channel_weights(self, mass: np.ndarray) -> np.ndarray:
        """d σ_c/dM in pb/GeV of each channel ``(n, 10)``: (2/M) σ̂_c(M²) Λ_c(M)."""
        i, w = self._mass_position(mass)
        lum = self.integrated[i] + w[:, None] * (self.integrated[i + 1] - self.integrated[i])
        return (2.0 / mass)[:, None] * self.partonic_pb(mass) * lum

    def mass_density(self, mass: np.ndarray) -> np.ndarray:
        """dσ/dM in pb/GeV ``(n,)``."""
        return self.channel_weights(mass).sum(axis=1)

    def sigma_pb(self) -> float:
        """σ(pp → γ*/Z → ℓ⁺ℓ⁻, m_low < M < m_high) in pb (one lepton flavour, LO)."""
        return self._sigma

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` Born configurations: ``mass``, ``y``, ``x`` ``(n, 2)``, ``flavour`` ``(n, 2)``
        (signed codes of the partons from beams 1 and 2), ``quark_beam`` (0 or 1: which beam
        brought the quark), ``cos_theta_star`` (ℓ⁻ against the quark direction) and
        ``cos_theta_beam`` (ℓ⁻ against beam 1 in the Born frame)."""
        mass = np.interp(rng.random(n), self._mass_cdf, self._mass_nodes)
        cumulative = np.cumsum(self.channel_weights(mass), axis=1)
        channel = np.sum(rng.random(n)[:, None] * cumulative[:, -1:] > cumulative, axis=1)
        i, w = self._mass_position(mass)
        row = channel * _N_M + i + (rng.random(n) < w)
        target = row + rng.random(n)
        j = np.searchsorted(self._row_cdf, target, side="right") - 1
        j = np.clip(j, row * _N_Y, row * _N_Y + _N_Y - 2)
        lo, hi = self._row_cdf[j], self._row_cdf[j + 1]
        cell = j - row * _N_Y
        y = self.y[cell] + (target - lo) / np.where(hi > lo, hi - lo, 1.0) * (self.y[1] - self.y[0])
        # a table cell can straddle the kinematic limit: keep x₁,₂ ≤ X_BORN_MAX
        edge = np.log(X_BORN_MAX * SQRT_S / mass)
        y = np.clip(y, -edge, edge)
        x1, x2 = born_fractions(mass, y)
        q = CHANNEL_QUARK[channel]
        quark_beam = CHANNEL_ANTI_FIRST[channel]
        flavour = np.stack([np.where(quark_beam == 0, q, -q), np.where(quark_beam == 0, -q, q)], axis=1)
        s_hat = mass * mass
        up = CHANNEL_UP[channel]
        a_fb = np.empty(n)
        a_fb[up] = ew.forward_backward(s_hat[up], ew.UP)
        a_fb[~up] = ew.forward_backward(s_hat[~up], ew.DOWN)
        cos_star = sample_cos_theta(n, rng, a_fb)
        return {"mass": mass, "y": y, "x": np.stack([x1, x2], axis=1), "flavour": flavour,
                "quark_beam": quark_beam, "cos_theta_star": cos_star,
                "cos_theta_beam": np.where(quark_beam == 0, cos_star, -cos_star)}


def _mass_grid(m_low: float, m_high: float) -> np.ndarray:
    """Integration nodes in M: 0.02 GeV steps up to 200 GeV (resolves Γ_Z), log-spaced above."""
    fine_top = min(m_high, 200.0)
    fine = np.linspace(m_low, fine_top, int((fine_top - m_low) / 0.02) + 1)
    if m_high <= fine_top:
        return fine
    return np.concatenate([fine, np.exp(np.linspace(np.log(fine_top), np.log(m_high), 2001))[1:]])


def sample_cos_theta(n: int, rng: np.random.Generator, a_fb: np.ndarray | float) -> np.ndarray:
    """cosθ ``(n,)`` from p(c) ∝ 1 + c² + (8/3) a_fb c.

    |c| from 1 + c² by solving c³ + 3c = 3t (Cardano, one real root), t uniform in
    [−4/3, 4/3]; then the sign is + with probability ½ + B|c|/(2(1 + c²)), B = 8a_fb/3.
    """
    t = rng.uniform(-4.0 / 3.0, 4.0 / 3.0, n)
    root = np.sqrt(2.25 * t * t + 1.0)
    c = np.abs(np.cbrt(1.5 * t + root) + np.cbrt(1.5 * t - root))
    b = 8.0 * np.asarray(a_fb) / 3.0
    forward = rng.random(n) < 0.5 + b * c / (2.0 * (1.0 + c * c))
    return np.where(forward, c, -c)


@lru_cache(maxsize=4)
def drell_yan_born(m_low: float, m_high: float) -> DrellYanBorn:
    """The (cached) Born sampler of a mass window."""
    return DrellYanBorn(m_low, m_high)


class GluonFusionBorn:
    """g g → colour singlet of mass ``mass``: y from x₁g(x₁, M²) x₂g(x₂, M²) by inverse CDF on
    a fine grid (linear interpolation of the CDF)."""

    def __init__(self, mass: float, n_nodes: int = 2001):
        self.mass = float(mass)
        half = np.log(SQRT_S / mass)
        self.y = np.linspace(-half, half, n_nodes)
        x1, x2 = born_fractions(self.mass, self.y)
        inside = (x1 < 1.0) & (x2 < 1.0)
        g1 = pdf.parton_densities(np.where(inside, x1, 0.5), mass * mass)[..., pdf.GLUON]
        g2 = pdf.parton_densities(np.where(inside, x2, 0.5), mass * mass)[..., pdf.GLUON]
        self.luminosity = np.where(inside, g1 * g2, 0.0)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (self.luminosity[1:] + self.luminosity[:-1])
                                                * np.diff(self.y))])
        self.cdf = cdf / cdf[-1]

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``y`` and ``x`` ``(n, 2)`` of ``n`` Born configurations."""
        y = np.interp(rng.random(n), self.cdf, self.y)
        x1, x2 = born_fractions(self.mass, y)
        return {"y": y, "x": np.stack([x1, x2], axis=1)}
