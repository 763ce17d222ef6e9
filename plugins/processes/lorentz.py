"""Four-vector helpers on plain arrays for the embedded generators.

Four-momenta are float64 arrays ``(..., 4)`` ordered (p_x, p_y, p_z, E) in GeV; the metric is
(+, −, −, −) on (E; p⃗). Beam 1 travels along +z, beam 2 along −z.
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.kinematics import wrap_phi


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minkowski product a·b = a_E b_E − a⃗·b⃗ ``(...)``."""
    return a[..., 3] * b[..., 3] - a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1] - a[..., 2] * b[..., 2]


def mass2(p: np.ndarray) -> np.ndarray:
    """p² ``(...)``."""
    return dot(p, p)


def boost(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Boost four-momenta ``p`` (..., 4) from the rest frame of ``parent`` (..., 4)
    to the frame where it has (P⃗, E_P), mass M:  E' = (E_P E + P⃗·p⃗)/M,
    p⃗' = p⃗ + P⃗ (E + P⃗·p⃗/(E_P + M))/M."""
    pvec, e = p[..., :3], p[..., 3]
    pp, ep = parent[..., :3], parent[..., 3]
    m = np.sqrt(np.maximum(ep * ep - np.einsum("...i,...i->...", pp, pp), 0.0))
    prod = np.einsum("...i,...i->...", pp, pvec)
    out = np.empty_like(p)
    out[..., 3] = (ep * e + prod) / m
    out[..., :3] = pvec + pp * ((e + prod / (ep + m)) / m)[..., None]
    return out


def to_rest_frame(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Momenta ``p`` seen in the rest frame of ``parent`` (inverse of :func:`boost`)."""
    flipped = parent.copy()
    flipped[..., :3] *= -1.0
    return boost(p, flipped)


def map_momenta(p: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The Lorentz transformation Λ with Λ·old = new for two momenta of equal mass
    (Catani–Seymour):  Λp = p − 2 (K + K̃)·p/(K + K̃)² (K + K̃) + 2 K̃·p/K² K,  K̃ = old, K = new.
    ``old``, ``new`` ``(n, 4)``; ``p`` ``(n, 4)`` or ``(n, k, 4)``."""
    total = old + new
    if p.ndim == 3:
        total_b, old_b, new_b = total[:, None, :], old[:, None, :], new[:, None, :]
    else:
        total_b, old_b, new_b = total, old, new
    a = 2.0 * dot(total_b, p) / dot(total_b, total_b)
    b = 2.0 * dot(old_b, p) / dot(new_b, new_b)
    return p - a[..., None] * total_b + b[..., None] * new_b


def pt_eta_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity and azimuth (φ in (-π, π]) of ``p`` (..., 4)."""
    pt = np.hypot(p[..., 0], p[..., 1])
    return pt, np.arcsinh(p[..., 2] / pt), wrap_phi(np.arctan2(p[..., 1], p[..., 0]))


def rapidity(p: np.ndarray) -> np.ndarray:
    """y = ½ ln((E + p_z)/(E − p_z)) ``(...)``."""
    return 0.5 * np.log((p[..., 3] + p[..., 2]) / (p[..., 3] - p[..., 2]))


def transverse_kick(system: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    """``system`` ``(n, 4)`` with (k_x, k_y) added to its p_T, mass and rapidity kept."""
    m2 = mass2(system)
    y = rapidity(system)
    px, py = system[:, 0] + kx, system[:, 1] + ky
    mt = np.sqrt(m2 + px * px + py * py)
    return np.stack([px, py, mt * np.sinh(y), mt * np.cosh(y)], axis=-1)
