"""Final-state QED radiation off a lepton pair: a Sudakov-ordered collinear photon shower.

Each lepton ℓ (mass m) of the ℓ⁻ℓ⁺ dipole radiates photons with the quasi-collinear splitting
probability (Catani, Dittmaier, Trócsányi, Phys. Lett. B500 (2001) 149)

    dP = (α/2π) (dt/t) dz [ (1 + z²)/(1 − z) − 2z(1 − z) m²/t ],
    t = k_⊥² + (1 − z)² m² = z(1 − z)(Q² − m²),

z the lepton's share of the energy of the (ℓγ) system in the dipole rest frame and Q² its
virtuality; so t > (1 − z)²m², and the t integral yields the lepton-mass logarithm
ln(s/m²): the rate of photons with energy fraction above x₀ per lepton is
≈ (α/π)(ln(s/m²) − 1) ln(1/x₀). Phase space: t ≤ min(z, 1 − z)² s_dip (where the photon's
angle to the (ℓγ) direction stays physical in the construction below), 1 − z ≥ X_MIN. Emissions off both leptons are ordered in
t from s_dip/4 down; the veto algorithm draws trials from (α/2π)(dt/t) 2dz/(1 − z) and keeps
them with weight [(1 + z²) − 2z(1 − z)²m²/t]/2.

Kinematics (dipole rest frame, recoil on the other lepton): the (ℓγ) system of mass Q moves
along the emitter's direction, the spectator opposite; in it the photon takes energy
(1 − z)E_ℓγ at the angle fixed by Q, azimuth uniform. Photons of later emissions stay as they
are; the next emission uses the new dipole. α is fixed at its Thomson value (real photons).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgen.plugins.processes.lorentz import boost, dot, to_rest_frame

ALPHA_QED = 1.0 / 137.035999   #: fine-structure constant for real-photon emission
X_MIN = 1e-3                   #: smallest photon energy fraction 1 − z generated
MAX_PHOTONS = 6                #: photons kept per event (later ones are not generated)


@dataclass
class Radiated:
    """Output of :func:`radiate` for ``n`` dipoles: the leptons ``minus``, ``plus`` ``(n, 4)``,
    the ``photons`` ``(n, MAX_PHOTONS, 4)`` (zeros where absent), their number ``n_photons``
    and per photon the emitter (0: ℓ⁻, 1: ℓ⁺; −1 absent) and the splitting variable ``z``."""

    minus: np.ndarray
    plus: np.ndarray
    photons: np.ndarray
    n_photons: np.ndarray
    emitter: np.ndarray
    z: np.ndarray


def overestimate_rate(x_min: float = X_MIN) -> float:
    """Trial rate per unit ln t for the pair: 2 leptons × (α/2π) ∫ 2 dz/(1 − z)."""
    return 2.0 * ALPHA_QED / (2.0 * np.pi) * 2.0 * np.log(1.0 / x_min)


def radiate(minus: np.ndarray, plus: np.ndarray, lepton_mass: float, rng: np.random.Generator,
            x_min: float = X_MIN) -> Radiated:
    """Shower the lepton pairs ``minus``, ``plus`` ``(n, 4)`` (any frame; the evolution runs in
    each dipole's rest frame and the results are returned in the input frame)."""
    n = len(minus)
    leptons = np.stack([minus, plus], axis=1).astype(np.float64)          # (n, 2, 4)
    photons = np.zeros((n, MAX_PHOTONS, 4))
    n_photons = np.zeros(n, dtype=np.int64)
    emitter = np.full((n, MAX_PHOTONS), -1, dtype=np.int64)
    zs = np.zeros((n, MAX_PHOTONS))
    rate = overestimate_rate(x_min)
    m2 = lepton_mass * lepton_mass
    t = 0.25 * dot(minus + plus, minus + plus)
    t_cut = x_min * x_min * m2
    active = np.arange(n)
    while active.size:
        t[active] *= rng.random(active.size) ** (1.0 / rate)
        active = active[(t[active] > t_cut) & (n_photons[active] < MAX_PHOTONS)]
        if not active.size:
            break
        which = (rng.random(active.size) < 0.5).astype(np.intp)
        one_minus_z = x_min ** rng.random(active.size)
        z = 1.0 - one_minus_z
        tt = t[active]
        pair = leptons[active, 0] + leptons[active, 1]
        s_dip = dot(pair, pair)
        softer = np.minimum(z, one_minus_z)
        inside = (tt > one_minus_z * one_minus_z * m2) & (tt < softer * softer * s_dip)
        weight = 0.5 * (1.0 + z * z) - z * one_minus_z * one_minus_z * m2 / tt
        keep = inside & (rng.random(active.size) < weight)
        rows = active[keep]
        if not rows.size:
            continue
        new_leptons, photon, ok = _emit(leptons[rows], which[keep], tt[keep], z[keep], lepton_mass, rng)
        rows, which_ok = rows[ok], which[keep][ok]
        leptons[rows] = new_leptons[ok]
        slot = n_photons[rows]
        photons[rows, slot] = photon[ok]
        emitter[rows, slot] = which_ok
        zs[rows, slot] = z[keep][ok]
        n_photons[rows] = slot + 1
    return Radiated(leptons[:, 0], leptons[:, 1], photons, n_photons, emitter, zs)


def _emit(leptons: np.ndarray, which: np.ndarray, t: np.ndarray, z: np.ndarray, mass: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One emission per dipole ``leptons`` ``(k, 2, 4)`` off lepton ``which`` at (t, z): the new
    leptons, the photon ``(k, 4)`` and whether the kinematics exist (module docstring)."""
    k = len(leptons)
    pair = leptons[:, 0] + leptons[:, 1]
    rest = to_rest_frame(leptons, pair[:, None, :])
    rows = np.arange(k)
    emitter = rest[rows, which]
    root_s = np.sqrt(dot(pair, pair))
    m2 = mass * mass
    q2 = m2 + t / (z * (1.0 - z))
    lam = (root_s**2 - q2 - m2) ** 2 - 4.0 * q2 * m2
    p = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * root_s)
    e_pair = (root_s**2 + q2 - m2) / (2.0 * root_s)
    n_hat = emitter[:, :3] / np.linalg.norm(emitter[:, :3], axis=1, keepdims=True)
    e_photon = (1.0 - z) * e_pair
    e_lepton = z * e_pair
    p_lepton2 = e_lepton * e_lepton - m2
    with np.errstate(divide="ignore", invalid="ignore"):   # p = 0 where lam ≤ 0, rejected by ok
        cos = (p * p + e_photon * e_photon - p_lepton2) / (2.0 * p * e_photon)
    ok = (lam > 0.0) & (p_lepton2 > 0.0) & (np.abs(cos) <= 1.0)
    cos = np.clip(cos, -1.0, 1.0)
    sin = np.sqrt(1.0 - cos * cos)
    helper = np.where(np.abs(n_hat[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(n_hat, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n_hat, e1)
    phi = rng.uniform(-np.pi, np.pi, k)
    direction = cos[:, None] * n_hat + sin[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
    photon = np.concatenate([e_photon[:, None] * direction, e_photon[:, None]], axis=1)
    lepton = np.concatenate([p[:, None] * n_hat - photon[:, :3], e_lepton[:, None]], axis=1)
    recoil = np.concatenate([-p[:, None] * n_hat, (root_s - e_pair)[:, None]], axis=1)
    new = np.empty_like(rest)
    new[rows, which] = lepton
    new[rows, 1 - which] = recoil
    return boost(new, pair[:, None, :]), boost(photon, pair), ok
