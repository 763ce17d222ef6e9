"""A lepton pair's invariant mass as a network coordinate, exactly invertible.

For two (nearly) massless leptons a, b

    M² = 2 pT_a pT_b (cosh Δη − cos Δφ),

so given pT_a, both η and Δφ, the mass fixes the partner's transverse momentum,
pT_b = M² / (2 pT_a (cosh Δη − cos Δφ)): a feature map may carry M in place of pT_b and lose
nothing. (M here is the massless-lepton mass; with lepton mass m the observable's is larger by
δM/M ≈ (m²/M²)(1 + (p_a/p_b + p_b/p_a)/2) for momenta p: ~10⁻⁶ for muons at the Z, up to
~2·10⁻³ for very asymmetric pairs.) Δφ enters through δ = wrap(φ_b − φ_a − π) as the feature
maps hold it (δ = 0 back to back), cos Δφ = −cos δ.

A resonance's mass is then mapped to ``u = asinh((M − M₀)/w)`` (:class:`AsinhMap`): linear
across the peak (a width w becomes one unit), logarithmic in the radiative tail below it and the
continuum above, so the narrow peak fills a standardised coordinate instead of a sliver of it.
The same map serves any narrow peak with long tails, such as δ of a pair recoiling against
little (δ ≈ p_T(ℓℓ)/p_T(ℓ), tails out to ±π).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.core.errors import ConfigError

__all__ = ["DEFAULT_ETA_COORDINATE", "DELTA_COORDINATES", "ETA_COORDINATES", "FEATURE_MAPS", "check_feature_map",
           "opening", "pair_mass", "partner_pt", "pt_ordered", "window_logit", "AsinhMap", "EdgeMap", "HalfAngleMap",
           "LeadingPtMap", "PartnerEtaMap"]

#: values of the ``features`` option of the lepton processes, the default first: ``mass`` carries
#: pair masses in place of some transverse momenta, ``leptons`` each lepton's own (log pT, η, φ)
FEATURE_MAPS = ("mass", "leptons")
#: values of the ``eta_coordinate`` option: ``window``, the leader's η as ``logit`` has it and the
#: partner's within the window that the acceptance and the pT threshold leave it
#: (:class:`PartnerEtaMap`; ``mass`` features only); ``logit`` (:class:`EdgeMap`), which puts the
#: acceptance edges |η| = η_max at ±∞; or ``eta`` itself
ETA_COORDINATES = ("window", "logit", "eta")
#: the ``eta_coordinate`` of each feature map when none is asked for
DEFAULT_ETA_COORDINATE = {"mass": "window", "leptons": "logit"}
#: values of the ``delta_coordinate`` option (``mass`` features), the default first: δ as
#: ``asinh`` (:class:`AsinhMap`, which ends at ±asinh(π/width) where the density of δ is not zero)
#: or as ``half_angle`` (:class:`HalfAngleMap`, the same about 0, δ = ±π at ±∞)
DELTA_COORDINATES = ("asinh", "half_angle")


def check_feature_map(features: str, option: str = "features", known: tuple[str, ...] = FEATURE_MAPS) -> str:
    """``features`` if it is one of ``known`` (the values of ``option``), else :class:`ConfigError`
    listing them."""
    if features not in known:
        raise ConfigError(f"unknown feature map {option} = {features!r}; known: {', '.join(known)}")
    return features


def opening(eta_a: np.ndarray, eta_b: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``cosh(η_a − η_b) + cos δ`` = cosh Δη − cos Δφ, with δ = Δφ − π (rad)."""
    return np.cosh(eta_a - eta_b) + np.cos(delta)


def pair_mass(pt_a: np.ndarray, pt_b: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
    """Massless-lepton pair mass ``√(2 pT_a pT_b · opening)`` (GeV)."""
    return np.sqrt(2.0 * pt_a * pt_b * opening_ab)


def partner_pt(mass: np.ndarray, pt_a: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pair_mass` for pT_b: ``M² / (2 pT_a · opening)`` (GeV)."""
    with np.errstate(divide="ignore"):
        return mass * mass / (2.0 * pt_a * opening_ab)


def window_logit(t: np.ndarray) -> np.ndarray:
    """``logit(t)`` of a place t in a window, t kept within 10⁻¹² of 0 and 1 (NaN stays NaN)."""
    t = np.clip(t, 1e-12, 1.0 - 1e-12)
    return np.log(t) - np.log1p(-t)


@dataclass(frozen=True)
class LeadingPtMap:
    """The leading lepton's pT as an unbounded coordinate that keeps the pair in its selection.

    Given the pair's mass M and opening o = cosh Δη − cos Δφ (so pT_a pT_b = M²/(2o)), the
    leader's pT lies in [lo, hi] with lo = M/√(2o) (where pT_b = pT_a, the order's edge) and
    hi = M²/(2 o pt_min) (where pT_b = pt_min, the acceptance's); the coordinate is
    u = logit(t), t = log(pT_a/lo)/log(hi/lo), and every u maps back into the window, so a
    network cannot generate a pair out of pT order or below the threshold. (t is kept within
    10⁻¹² of 0 and 1 so that a pair exactly at an edge stays finite.) A mass below
    pt_min √(2o) has no window (hi < lo): no pair of that mass and opening passes the threshold,
    and the pair that comes back lies below it, outside the process's support."""

    pt_min: float

    def window(self, mass: np.ndarray, opening_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(log lo, log(hi/lo))`` ``(n,)`` each; log(hi/lo) = log(lo/pt_min)."""
        log_lo = np.log(mass) - 0.5 * np.log(2.0 * opening_ab)
        return log_lo, log_lo - np.log(self.pt_min)

    def forward(self, pt_a: np.ndarray, mass: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
        log_lo, log_span = self.window(mass, opening_ab)
        return window_logit((np.log(pt_a) - log_lo) / log_span)

    def inverse(self, u: np.ndarray, mass: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
        log_lo, log_span = self.window(mass, opening_ab)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(log_lo + log_span / (1.0 + np.exp(-u)))


@dataclass(frozen=True)
class PartnerEtaMap:
    """The partner lepton's η as an unbounded coordinate within the window that the acceptance
    and the pT threshold leave it, given the leader's η, the pair's mass M and δ.

    Both leptons above pt_min means pT_a pT_b = M²/(2o) ≥ pt_min², so the opening
    o = cosh Δη + cos δ is at most o_max = M²/(2 pt_min²) and |η_b − η_a| ≤ Δη_max =
    arccosh(o_max − cos δ); with |η_b| < eta_max, η_b lies in [lo, hi] = [max(−eta_max,
    η_a − Δη_max), min(eta_max, η_a + Δη_max)]. The coordinate u = logit((η_b − lo)/(hi − lo))
    puts both walls at ±∞, so a network never has to draw the density's fall to zero at
    |Δη| = Δη_max (where the leader's window of :class:`LeadingPtMap` closes), and every u maps
    back into the window. A mass too low for any opening (o_max − cos δ < 1) leaves Δη_max = 0:
    η_b = η_a, and the pair that comes back lies below the threshold."""

    pt_min: float
    eta_max: float

    def window(self, eta_a: np.ndarray, mass: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` ``(n,)`` each: the partner's allowed η."""
        reach = np.arccosh(np.maximum(mass * mass / (2.0 * self.pt_min ** 2) - np.cos(delta), 1.0))
        return np.maximum(-self.eta_max, eta_a - reach), np.minimum(self.eta_max, eta_a + reach)

    def forward(self, eta_b: np.ndarray, eta_a: np.ndarray, mass: np.ndarray, delta: np.ndarray) -> np.ndarray:
        lo, hi = self.window(eta_a, mass, delta)
        with np.errstate(divide="ignore", invalid="ignore"):
            return window_logit((eta_b - lo) / (hi - lo))

    def inverse(self, u: np.ndarray, eta_a: np.ndarray, mass: np.ndarray, delta: np.ndarray) -> np.ndarray:
        lo, hi = self.window(eta_a, mass, delta)
        with np.errstate(over="ignore"):
            return lo + (hi - lo) / (1.0 + np.exp(-u))


def pt_ordered(events: np.ndarray, a: int, b: int) -> np.ndarray:
    """``events`` ``(n, k)`` with the (pT, η, φ) column blocks starting at ``a`` and ``b`` swapped
    where pT_b > pT_a, so that ``a`` leads. A network that puts the partner's pT above the
    leader's has generated the same pair of leptons, labelled the other way round: relabelling
    keeps the event where rejecting it would remove its density from the pair's phase space."""
    out = np.array(events, dtype=np.float64)
    swap = out[:, b] > out[:, a]
    out[swap, a:a + 3], out[swap, b:b + 3] = out[swap, b:b + 3], out[swap, a:a + 3]
    return out


@dataclass(frozen=True)
class AsinhMap:
    """``u = asinh((x − center)/width)`` and back, ``x = center + width · sinh u``."""

    center: float
    width: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.arcsinh((x - self.center) / self.width)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return self.center + self.width * np.sinh(u)


@dataclass(frozen=True)
class HalfAngleMap:
    """An angle δ in (−π, π], narrow about 0, as an unbounded coordinate:
    ``u = asinh(tan(δ/2)/(width/2))``, ``δ = 2 atan((width/2) sinh u)``. About 0 it is
    asinh(δ/width) (:class:`AsinhMap`): linear across the peak, logarithmic in the tails; δ = ±π
    lies at ±∞, so a density that is not zero there meets no wall, and every u is an angle."""

    width: float

    def forward(self, delta: np.ndarray) -> np.ndarray:
        return np.arcsinh(np.tan(np.asarray(delta) / 2.0) / (self.width / 2.0))

    def inverse(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return 2.0 * np.arctan(self.width / 2.0 * np.sinh(u))


@dataclass(frozen=True)
class EdgeMap:
    """A coordinate cut sharply to (−limit, limit) as an unbounded one:
    ``u = logit((x + limit)/(2 limit)) = 2 artanh(x/limit)``, ``x = limit · tanh(u/2)``. The cut's
    edges go to ±∞, so a network never has to draw a density that drops to zero at a wall, and
    every u maps back inside the cut. (|x|/limit is kept within 10⁻¹² of 1 so that a value
    exactly at an edge stays finite.)"""

    limit: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * np.arctanh(np.clip(x / self.limit, -1.0 + 1e-12, 1.0 - 1e-12))

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return self.limit * np.tanh(0.5 * u)
