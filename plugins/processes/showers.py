"""A seeded toy shower and detector for boosted jets, shared by ``ecal_cloud`` and ``jet_images``.

Units GeV and radians. Every jet is central (η = 0, φ = 0) with pT uniform in [PT_MIN, PT_MAX];
positions are (η, φ) in that local frame, so the jet axis is the origin. Chain per jet:

* partons: a top decays t → bW, W → qq̄′ (isotropic two-body decays in the rest frames,
  massless quarks, boosted to the jet pT), so its three prongs lie ~2m/pT apart. A QCD jet is a
  quark or gluon core emitting Poisson(λ_i) gluons with dP = (2 α_s C_i/π) dz/z dθ/θ on
  [Z_MIN, Z_MAX] × [THETA_MIN, THETA_MAX] (at most MAX_EMISSIONS, each off the recoiling core);
* fragmentation: each parton of energy E becomes max(1, Poisson(μ)) particles, with
  μ = MULT_QUARK (C_i/C_F) (E/MULT_E_REF)^MULT_POWER (at most MAX_PER_PARTON), energy fractions
  Dirichlet(FRAG_ALPHA), angles kT/E' off the parton (kT ~ Exp(FRAG_KT), capped at
  FRAG_THETA_MAX; recentred so the particles' energy centroid is the parton direction). Each
  particle is a charged hadron, photon or neutral hadron with probabilities TYPE_FRACTIONS;
* detector: photons deposit in ECAL; charged hadrons a fraction U(0, 2 CHARGED_ECAL_FRACTION)
  in ECAL, the rest in HCAL, and leave a track; neutral hadrons deposit in HCAL. ECAL: a grid of
  N_CRYSTALS² crystals of width CRYSTAL centred on the axis; each deposit shares a Gaussian
  profile (σ = SHOWER_SIGMA) over its 3×3 neighbourhood; per-crystal energies are smeared by
  ECAL_STOCHASTIC/√E ⊕ ECAL_CONSTANT and kept above ECAL_THRESHOLD. HCAL: towers of 5×5
  crystals, HCAL_STOCHASTIC/√E ⊕ HCAL_CONSTANT, kept above HCAL_THRESHOLD. Tracks: charged
  particles with pT > TRACK_PT_MIN, positions smeared by TRACK_ANGLE_RESOLUTION, pT by
  TRACK_PT_RESOLUTION. Energy outside the calorimeter grid is lost.

Objects of a batch of ``n`` jets travel as flat arrays ``(m,)`` with an ``event`` index.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

TOP, QUARK, GLUON = 0, 1, 2           #: jet flavours
M_TOP = 172.5                         #: top mass
M_W = 80.4                            #: W mass
PT_MIN, PT_MAX = 500.0, 1000.0        #: jet pT range (uniform)
BEAM_ENERGY = 6500.0                  #: energy of each beam (√s = 13 TeV): no jet carries more
C_F, C_A = 4.0 / 3.0, 3.0             #: colour factors of quarks and gluons
ALPHA_S = 0.12                        #: fixed coupling of the emissions
Z_MIN, Z_MAX = 0.03, 0.5              #: energy fraction range of an emission
THETA_MIN, THETA_MAX = 0.01, 0.4      #: emission angle range
MAX_EMISSIONS = 8                     #: emissions per QCD jet at most
MULT_QUARK = 10.0                     #: mean particle multiplicity of a quark of MULT_E_REF
MULT_E_REF = 100.0                    #: reference parton energy of the multiplicity
MULT_POWER = 0.3                      #: multiplicity ∝ E^MULT_POWER
MAX_PER_PARTON = 64                   #: particles per parton at most
FRAG_ALPHA = 0.5                      #: Dirichlet concentration of the energy fractions
FRAG_KT = 0.3                         #: mean transverse momentum of a particle to its parton
FRAG_THETA_MAX = 0.3                  #: largest particle angle to its parton
CHARGED, PHOTON, NEUTRAL = 0, 1, 2    #: particle kinds
TYPE_FRACTIONS = (0.60, 0.25, 0.15)   #: probabilities (= energy fractions) of the kinds
CHARGED_ECAL_FRACTION = 0.3           #: mean fraction of a charged hadron's energy in ECAL
CRYSTAL = 0.0174                      #: ECAL crystal width in η and φ
N_CRYSTALS = 125                      #: crystals per axis (the grid spans ±1.0875)
TOWER = 5 * CRYSTAL                   #: HCAL tower width (5×5 crystals)
N_TOWERS = N_CRYSTALS // 5            #: towers per axis
SHOWER_SIGMA = 0.6 * CRYSTAL          #: lateral EM shower spread (Molière radius ≈ 1 crystal)
ECAL_STOCHASTIC, ECAL_CONSTANT = 0.03, 0.005  #: σ(E)/E = a/√E ⊕ b of a crystal
ECAL_THRESHOLD = 0.1                  #: crystals below are dropped (noise threshold)
HCAL_STOCHASTIC, HCAL_CONSTANT = 1.0, 0.05    #: σ(E)/E = a/√E ⊕ b of a tower
HCAL_THRESHOLD = 0.5                  #: towers below are dropped
TRACK_PT_MIN = 0.5                    #: tracking threshold
TRACK_ANGLE_RESOLUTION = 0.001        #: σ of a track's η and φ
TRACK_PT_RESOLUTION = 0.01            #: σ(pT)/pT of a track


@dataclass(frozen=True)
class Particles:
    """Partons or particles ``(m,)``: ``event`` index, energy ``e``, ``eta``, ``phi``, and
    ``tag`` (partons: is gluon; particles: kind)."""

    event: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    tag: np.ndarray


@dataclass(frozen=True)
class Hits:
    """Calorimeter cells with energy ``(m,)``: ``event``, cell indices ``ieta``, ``iphi`` on a grid
    of ``n_cells`` cells of ``width`` per axis, energy ``e``."""

    event: np.ndarray
    ieta: np.ndarray
    iphi: np.ndarray
    e: np.ndarray
    width: float
    n_cells: int

    @property
    def eta(self) -> np.ndarray:
        return cell_centre(self.ieta, self.width, self.n_cells)

    @property
    def phi(self) -> np.ndarray:
        return cell_centre(self.iphi, self.width, self.n_cells)


CHUNK = 2000  #: jets simulated at once by :func:`simulate_in_chunks`


def simulate_in_chunks(simulate: Callable[[int, np.random.Generator], np.ndarray], n: int, seed: int,
                       n_columns: int) -> np.ndarray:
    """Exactly ``n`` events ``(n, n_columns)`` from ``simulate(batch, rng)``, CHUNK at a time from
    one ``default_rng(seed)``: reproducible for ``(n, seed)``."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    chunks = [simulate(min(CHUNK, n - start), rng) for start in range(0, n, CHUNK)]
    return np.concatenate(chunks) if chunks else np.empty((0, n_columns))


def cell_index(x: np.ndarray, width: float, n_cells: int) -> np.ndarray:
    """Index of the cell holding ``x`` on a grid of ``n_cells`` cells centred on 0 (may fall outside)."""
    return np.floor(np.asarray(x) / width + n_cells / 2).astype(np.int64)


def cell_centre(index: np.ndarray, width: float, n_cells: int) -> np.ndarray:
    """Centre of cell ``index`` of that grid."""
    return (np.asarray(index) - (n_cells - 1) / 2) * width


# --- partons ---------------------------------------------------------------------------------
def _isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    cos = rng.uniform(-1.0, 1.0, n)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, n)
    sin = np.sqrt(1.0 - cos * cos)
    return np.stack([sin * np.cos(azimuth), sin * np.sin(azimuth), cos], axis=-1)


def _boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Four-momenta ``(..., 4)`` (E, p⃗) boosted by velocity ``beta (..., 3)``."""
    b2 = (beta * beta).sum(axis=-1, keepdims=True)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (beta * p[..., 1:]).sum(axis=-1, keepdims=True)
    vec = p[..., 1:] + beta * ((gamma - 1.0) * bp / b2 + gamma * p[..., :1])
    return np.concatenate([gamma * (p[..., :1] + bp), vec], axis=-1)


def top_partons(pt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(E, η, φ) ``(n, 3)`` of b, q, q̄′ of tops with transverse momenta ``pt`` along the axis."""
    n = len(pt)
    p_w = (M_TOP ** 2 - M_W ** 2) / (2.0 * M_TOP)
    w_dir, q_dir = _isotropic(n, rng), _isotropic(n, rng)
    w = np.concatenate([np.full((n, 1), np.hypot(p_w, M_W)), p_w * w_dir], axis=1)
    b = np.concatenate([np.full((n, 1), p_w), -p_w * w_dir], axis=1)
    quarks = [np.concatenate([np.full((n, 1), M_W / 2), sign * M_W / 2 * q_dir], axis=1) for sign in (1, -1)]
    quarks = [_boost(q, w[:, 1:] / w[:, :1]) for q in quarks]
    beta_top = np.stack([pt / np.hypot(pt, M_TOP), np.zeros(n), np.zeros(n)], axis=1)
    p = _boost(np.stack([b, *quarks], axis=1), beta_top[:, None, :])
    pt_i = np.hypot(p[..., 1], p[..., 2])
    return p[..., 0], np.arcsinh(p[..., 3] / pt_i), np.arctan2(p[..., 2], p[..., 1])


def emission_rate(gluon: np.ndarray) -> np.ndarray:
    """Mean number of emissions λ_i of quark (False) or gluon (True) cores."""
    log_area = np.log(Z_MAX / Z_MIN) * np.log(THETA_MAX / THETA_MIN)
    return 2.0 * ALPHA_S / np.pi * np.where(gluon, C_A, C_F) * log_area


def qcd_partons(pt: np.ndarray, gluon: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(E, η, φ, present) ``(n, 1 + MAX_EMISSIONS)``: the core, then the emitted gluons."""
    n, k = len(pt), MAX_EMISSIONS
    present = np.arange(k) < np.minimum(rng.poisson(emission_rate(gluon)), k)[:, None]
    z = np.where(present, Z_MIN * (Z_MAX / Z_MIN) ** rng.random((n, k)), 0.0)
    theta = THETA_MIN * (THETA_MAX / THETA_MIN) ** rng.random((n, k))
    azimuth = rng.uniform(0.0, 2.0 * np.pi, (n, k))
    step = np.stack([theta * np.cos(azimuth), theta * np.sin(azimuth)], axis=-1)
    left = np.cumprod(1.0 - z, axis=1)                  # core energy fraction after each emission
    before = np.concatenate([np.ones((n, 1)), left[:, :-1]], axis=1)
    recoil = np.cumsum(-z[..., None] * step, axis=1)    # core position after each emission
    core_before = np.concatenate([np.zeros((n, 1, 2)), recoil[:, :-1]], axis=1)
    emitted = core_before + (1.0 - z[..., None]) * step
    e = pt[:, None] * np.concatenate([left[:, -1:], z * before], axis=1)
    position = np.concatenate([recoil[:, -1:], emitted], axis=1)
    return e, position[..., 0], position[..., 1], np.concatenate([np.ones((n, 1), bool), present], axis=1)


def partons(flavour: np.ndarray, rng: np.random.Generator) -> Particles:
    """The partons of jets of ``flavour (n,)`` (TOP, QUARK or GLUON); ``tag`` is True for gluons."""
    flavour = np.asarray(flavour)
    pt = rng.uniform(PT_MIN, PT_MAX, len(flavour))
    top, qcd = np.flatnonzero(flavour == TOP), np.flatnonzero(flavour != TOP)
    e_t, eta_t, phi_t = top_partons(pt[top], rng)
    e_q, eta_q, phi_q, present = qcd_partons(pt[qcd], flavour[qcd] == GLUON, rng)
    gluon = np.ones_like(present)
    gluon[:, 0] = flavour[qcd] == GLUON
    return Particles(np.concatenate([np.repeat(top, 3), np.broadcast_to(qcd[:, None], present.shape)[present]]),
                     np.concatenate([e_t.ravel(), e_q[present]]), np.concatenate([eta_t.ravel(), eta_q[present]]),
                     np.concatenate([phi_t.ravel(), phi_q[present]]),
                     np.concatenate([np.zeros(3 * len(top), bool), gluon[present]]))


# --- fragmentation ---------------------------------------------------------------------------
def mean_multiplicity(e: np.ndarray, gluon: np.ndarray) -> np.ndarray:
    """Mean particle multiplicity μ of partons of energy ``e``."""
    return MULT_QUARK * np.where(gluon, C_A / C_F, 1.0) * (np.asarray(e) / MULT_E_REF) ** MULT_POWER


def fragment(partons: Particles, rng: np.random.Generator) -> Particles:
    """The particles of ``partons``; ``tag`` is the kind (CHARGED, PHOTON or NEUTRAL)."""
    count = np.clip(rng.poisson(mean_multiplicity(partons.e, partons.tag)), 1, MAX_PER_PARTON)
    parent = np.repeat(np.arange(len(partons.e)), count)
    weight = rng.gamma(FRAG_ALPHA, size=len(parent))
    x = weight / np.bincount(parent, weight, len(count))[parent]
    e = x * partons.e[parent]
    theta = np.minimum(rng.exponential(FRAG_KT, len(parent)) / e, FRAG_THETA_MAX)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, len(parent))
    offset = theta[:, None] * np.stack([np.cos(azimuth), np.sin(azimuth)], axis=1)
    centroid = np.stack([np.bincount(parent, x * offset[:, i], len(count)) for i in (0, 1)], axis=1)
    offset -= centroid[parent]
    kind = rng.choice(3, size=len(parent), p=TYPE_FRACTIONS)
    return Particles(partons.event[parent], e, partons.eta[parent] + offset[:, 0],
                     partons.phi[parent] + offset[:, 1], kind)


def jets(flavour: np.ndarray, rng: np.random.Generator) -> Particles:
    """The particles of jets of ``flavour (n,)``."""
    return fragment(partons(flavour, rng), rng)


# --- detector --------------------------------------------------------------------------------
def _sum_cells(event, ieta, iphi, e, width: float, n_cells: int) -> Hits:
    """Deposits summed per cell of the grid; those outside it are dropped."""
    inside = (ieta >= 0) & (ieta < n_cells) & (iphi >= 0) & (iphi < n_cells)
    keys, inverse = np.unique(((event * n_cells + ieta) * n_cells + iphi)[inside], return_inverse=True)
    energy = np.bincount(inverse, e[inside], len(keys))
    event, cell = np.divmod(keys, n_cells * n_cells)
    return Hits(event, cell // n_cells, cell % n_cells, energy, width, n_cells)


def _smear(hits: Hits, stochastic: float, constant: float, threshold: float, rng: np.random.Generator) -> Hits:
    sigma = np.sqrt(stochastic ** 2 * hits.e + (constant * hits.e) ** 2)
    e = hits.e + sigma * rng.standard_normal(len(hits.e))
    keep = e > threshold
    return Hits(hits.event[keep], hits.ieta[keep], hits.iphi[keep], e[keep], hits.width, hits.n_cells)


def ecal_fractions(particles: Particles, rng: np.random.Generator) -> np.ndarray:
    """The fraction of each particle's energy deposited in ECAL (the rest goes to HCAL)."""
    charged = rng.uniform(0.0, 2.0 * CHARGED_ECAL_FRACTION, len(particles.e))
    return np.select([particles.tag == PHOTON, particles.tag == CHARGED], [1.0, charged], 0.0)


def ecal(particles: Particles, fraction: np.ndarray, rng: np.random.Generator) -> Hits:
    """ECAL crystals hit by ``particles`` depositing ``fraction`` of their energy there."""
    on = fraction > 0
    eta, phi = particles.eta[on], particles.phi[on]
    neighbours = np.arange(-1, 2)
    ieta = cell_index(eta, CRYSTAL, N_CRYSTALS)[:, None, None] + neighbours[:, None]
    iphi = cell_index(phi, CRYSTAL, N_CRYSTALS)[:, None, None] + neighbours
    distance2 = ((cell_centre(ieta, CRYSTAL, N_CRYSTALS) - eta[:, None, None]) ** 2
                 + (cell_centre(iphi, CRYSTAL, N_CRYSTALS) - phi[:, None, None]) ** 2)
    profile = np.exp(-0.5 * distance2 / SHOWER_SIGMA ** 2)
    e = (particles.e * fraction)[on, None, None] * profile / profile.sum(axis=(1, 2), keepdims=True)
    shape = e.shape
    hits = _sum_cells(np.broadcast_to(particles.event[on, None, None], shape).ravel(),
                      np.broadcast_to(ieta, shape).ravel(), np.broadcast_to(iphi, shape).ravel(), e.ravel(),
                      CRYSTAL, N_CRYSTALS)
    return _smear(hits, ECAL_STOCHASTIC, ECAL_CONSTANT, ECAL_THRESHOLD, rng)


def hcal(particles: Particles, fraction: np.ndarray, rng: np.random.Generator) -> Hits:
    """HCAL towers hit by ``particles`` depositing ``1 − fraction`` of their energy there."""
    on = fraction < 1
    hits = _sum_cells(particles.event[on], cell_index(particles.eta[on], TOWER, N_TOWERS),
                      cell_index(particles.phi[on], TOWER, N_TOWERS), (particles.e * (1.0 - fraction))[on],
                      TOWER, N_TOWERS)
    return _smear(hits, HCAL_STOCHASTIC, HCAL_CONSTANT, HCAL_THRESHOLD, rng)


def tracks(particles: Particles, rng: np.random.Generator) -> Particles:
    """Tracks of the charged ``particles``; ``e`` holds their pT, ``tag`` is CHARGED."""
    pt = particles.e / np.cosh(particles.eta)
    keep = (particles.tag == CHARGED) & (pt > TRACK_PT_MIN)
    m = int(keep.sum())
    smeared = [x[keep] + TRACK_ANGLE_RESOLUTION * rng.standard_normal(m) for x in (particles.eta, particles.phi)]
    return Particles(particles.event[keep], pt[keep] * (1.0 + TRACK_PT_RESOLUTION * rng.standard_normal(m)),
                     *smeared, particles.tag[keep])
