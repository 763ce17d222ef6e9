"""Kinematic helpers for validation observables, built on :mod:`vector` (NumPy backend).

Conventions: momenta and masses in GeV, angles in radians, azimuth φ wrapped to (-π, π].
Inputs are 1-d arrays of equal length ``(n,)`` (scalars broadcast); outputs are float64 ``(n,)``.
"""
from __future__ import annotations

import numpy as np
import vector

__all__ = ["wrap_phi", "four_vectors", "dilepton_observables"]

_TWO_PI = 2.0 * np.pi


def wrap_phi(phi):
    """Map angles to (-π, π]: ``π - ((π - φ) mod 2π)``; π stays π and -π maps to π.

    Values already in (-π, π] are returned unchanged (bit for bit).
    """
    phi = np.asarray(phi, dtype=np.float64)
    out = np.pi - np.mod(np.pi - phi, _TWO_PI)
    # (π - φ) mod 2π can round up to exactly 2π for tiny negative arguments.
    out = np.where(out <= -np.pi, out + _TWO_PI, out)
    return np.where((phi > -np.pi) & (phi <= np.pi), phi, out)


def four_vectors(pt, eta, phi, mass) -> vector.MomentumNumpy4D:
    """Four-vectors ``(n,)`` from (pT, η, φ) and a mass (scalar or ``(n,)``)."""
    pt = np.asarray(pt, dtype=np.float64)
    shape = np.broadcast_shapes(pt.shape, np.shape(eta), np.shape(phi), np.shape(mass))
    cols = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape)
            for k, v in (("pt", pt), ("eta", eta), ("phi", phi), ("mass", mass))}
    return vector.array(cols)


def dilepton_observables(pt1, eta1, phi1, pt2, eta2, phi2, mass: float) -> dict[str, np.ndarray]:
    """Pair observables of two leptons of equal ``mass``.

    Returns ``mll`` (invariant mass), ``ptll`` (pair pT), ``yll`` (pair rapidity
    ½ ln((E+p_z)/(E−p_z))), ``dphi`` (|Δφ| in [0, π]) and ``dr`` (ΔR = √(Δη² + Δφ²)).
    """
    l1 = four_vectors(pt1, eta1, phi1, mass)
    l2 = four_vectors(pt2, eta2, phi2, mass)
    pair = l1 + l2
    return {
        "mll": np.asarray(pair.mass, dtype=np.float64),
        "ptll": np.asarray(pair.pt, dtype=np.float64),
        "yll": np.asarray(pair.rapidity, dtype=np.float64),
        "dphi": np.abs(np.asarray(l1.deltaphi(l2), dtype=np.float64)),
        "dr": np.asarray(l1.deltaR(l2), dtype=np.float64),
    }
