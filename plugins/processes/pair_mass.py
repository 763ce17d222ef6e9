"""A lepton pair's invariant mass as a network coordinate, exactly invertible.

For two (nearly) massless leptons a, b

    M² = 2 pT_a pT_b (cosh Δη − cos Δφ),

so given pT_a, both η and Δφ, the mass fixes the partner's transverse momentum,
pT_b = M² / (2 pT_a (cosh Δη − cos Δφ)): a feature map may carry M in place of pT_b and lose
nothing. (M here is the massless-lepton mass; with lepton mass m the observable's is larger by
δM/M ≈ (m²/M²)(1 + (p_a/p_b + p_b/p_a)/2) for momenta p: ~10⁻⁶ for muons at the Z, up to
~2·10⁻³ for very asymmetric pairs.) Δφ enters through δ = wrap(φ_b − φ_a − π) as the feature
maps hold it (δ = 0 back to back), cos Δφ = −cos δ.

A resonance's mass is then mapped to ``u = asinh((M − M₀)/w)``: linear across the peak (a width
w becomes one unit), logarithmic in the radiative tail below it and the continuum above, so the
narrow peak fills a standardised coordinate instead of a sliver of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.core.errors import ConfigError

__all__ = ["FEATURE_MAPS", "check_feature_map", "opening", "pair_mass", "partner_pt", "ResonanceMap"]

#: values of the ``features`` option of the lepton processes, the default first: ``mass`` carries
#: pair masses in place of some transverse momenta, ``leptons`` each lepton's own (log pT, η, φ)
FEATURE_MAPS = ("mass", "leptons")


def check_feature_map(features: str) -> str:
    """``features`` if it names a feature map, else :class:`ConfigError` listing them."""
    if features not in FEATURE_MAPS:
        raise ConfigError(f"unknown feature map features = {features!r}; known: {', '.join(FEATURE_MAPS)}")
    return features


def opening(eta_a: np.ndarray, eta_b: np.ndarray, delta_over_pi: np.ndarray) -> np.ndarray:
    """``cosh(η_a − η_b) + cos(π δ̂)`` = cosh Δη − cos Δφ, with δ̂ = δ/π as the features hold it."""
    return np.cosh(eta_a - eta_b) + np.cos(np.pi * delta_over_pi)


def pair_mass(pt_a: np.ndarray, pt_b: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
    """Massless-lepton pair mass ``√(2 pT_a pT_b · opening)`` (GeV)."""
    return np.sqrt(2.0 * pt_a * pt_b * opening_ab)


def partner_pt(mass: np.ndarray, pt_a: np.ndarray, opening_ab: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pair_mass` for pT_b: ``M² / (2 pT_a · opening)`` (GeV)."""
    with np.errstate(divide="ignore"):
        return mass * mass / (2.0 * pt_a * opening_ab)


@dataclass(frozen=True)
class ResonanceMap:
    """``u = asinh((M − center)/width)`` and back, ``M = center + width · sinh u`` (GeV)."""

    center: float
    width: float

    def forward(self, mass: np.ndarray) -> np.ndarray:
        return np.arcsinh((mass - self.center) / self.width)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return self.center + self.width * np.sinh(u)
