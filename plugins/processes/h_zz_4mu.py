"""Embedded H(125) → ZZ* → 4μ Monte Carlo at √s = 13 TeV (vectorised NumPy).

Generation chain per event (GeV, radians, φ in (-π, π]):

* Higgs: mass from a relativistic Breit–Wigner (M_H, Γ_H) truncated to ±H_WINDOW; produced in
  gluon fusion at leading order: rapidity from the g g luminosity x₁g(x₁)x₂g(x₂) at
  μ_F = M_H (GRV94 LO, :class:`.luminosity.GluonFusionBorn`), x₁,₂ = (m_H/√s)e^{±y}; then the
  initial-state shower of :mod:`.isr` evolves both gluons (g ← g with C_A, g ← q) with the
  g g → H g and q g → H q matrix elements (m_t → ∞) for the hardest emission and a primordial
  k_⊥, and the Higgs recoils against the emissions;
* Z masses (m₁ ≥ m₂, so Z₁ is the pair closer to M_Z): for x_i = m_i²/M_H²,
  p(s₁, s₂) ∝ BW(s₁) BW(s₂) λ^½(1, x₁, x₂) [λ(1, x₁, x₂) + 12 x₁x₂],
  BW(s) = 1/((s − M_Z²)² + M_Z²Γ_Z²), λ(a, b, c) = a² + b² + c² − 2ab − 2ac − 2bc
  (two-body momentum × the summed SM H → VV helicity amplitudes), on m₂ ≥ M2_MIN,
  m₁ + m₂ < M_H. m₁ by inverse CDF of its tabulated marginal in u = atan((s₁ − M_Z²)/M_ZΓ_Z)
  (BW(s₁) ds₁ ∝ du), then s₂ | s₁ by accept–reject against a tabulated bound; both masses are
  finally scaled by m_H/M_H (a ~10⁻⁵ effect) so that m₁ + m₂ < m_H per event;
* H → Z₁Z₂: Z₁ direction isotropic in the H rest frame, |p*| = M_H λ^½/2;
* Z_i → μ⁻μ⁺: helicities λ₁ = λ₂ = λ, longitudinal (λ = 0) with probability x²/(x² + 2),
  x = (m_H² − m₁² − m₂²)/(2m₁m₂) (|A₀₀|² : |A₊₊|² : |A₋₋|² = x² : 1 : 1); μ⁻ polar angle in
  each Z's helicity frame from p(c) ∝ 1 − c² (λ = 0) or 1 + c² + 2λR c (λ = ±1,
  R = 2g_Vg_A/(g_V² + g_A²)); azimuths uniform, i.e. the helicity interference terms
  (cos Φ, cos 2Φ between the decay planes) are neglected; boosts by :func:`boost`;
* detector: muon σ(pT)/pT of :mod:`.z_mumu`; acceptance pT > PT_MIN and |η| < ETA_MAX for all
  four muons, leading pT > PT_LEAD, sub-leading pT > PT_SUB.

Event columns ``mu{i}_pt, mu{i}_eta, mu{i}_phi`` for i = 1…4: muons 1, 2 from Z₁ and 3, 4 from
Z₂ (truth pairing), each pair leading pT first; charges are not stored.
Features (11): log pT_i (i = 1…4), η_i (i = 1…4), artanh(δ_i/π) with δ_i = wrap(φ_i − φ₁ − π)
for i = 2, 3, 4 (option ``features = "leptons"``), or by default (``"mass"``) the same with the Z
masses in place of pT₂ and pT₄ (:mod:`.pair_mass`): u(M_Z1) = asinh((M_Z1 − M_Z)/Γ_Z) and
log M_Z2; the global φ (φ₁) is re-drawn uniformly on the way back.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from bayesgen.core.hooks import hookimpl
from bayesgen.core.kinematics import four_vectors, wrap_phi
from bayesgen.core.process import Binning, Process, physical_objects, sample_accepted
from bayesgen.plugins.processes import isr
from bayesgen.plugins.processes.electroweak import GAMMA_Z, M_Z
from bayesgen.plugins.processes.lorentz import boost
from bayesgen.plugins.processes.luminosity import SQRT_S, GluonFusionBorn, born_fractions, sample_cos_theta
from bayesgen.plugins.processes.pair_mass import (FEATURE_MAPS, AsinhMap, check_feature_map, opening, pair_mass,
                                                  partner_pt, pt_ordered)
from bayesgen.plugins.processes.z_mumu import MUON_MASS, muon_resolution

# --- physics (GeV) ------------------------------------------------------------------------------
M_H = 125.0               #: Higgs mass
GAMMA_H = 4.1e-3          #: Higgs total width (SM)
H_WINDOW = 0.2            #: generated |m_H − M_H|
SIN2_THETA_W = 0.2312     #: effective weak mixing angle
_G_V, _G_A = -0.5 + 2.0 * SIN2_THETA_W, -0.5
R_LEPTON = 2.0 * _G_V * _G_A / (_G_V**2 + _G_A**2)   #: Z → ℓℓ parity-violation ≈ 0.15

# --- generator parameters -----------------------------------------------------------------------
M2_MIN = 0.5              #: lower end of the generated m₂ (p(m₂) ∝ m₂ there)

# --- detector -----------------------------------------------------------------------------------
PT_MIN = 5.0              #: every muon
PT_LEAD = 20.0            #: leading muon
PT_SUB = 10.0             #: sub-leading muon
ETA_MAX = 2.4             #: every muon

_MAX_BATCH = 500_000
_DPHI_CLIP = 1.0 - 1e-7
Z1_MAP = AsinhMap(M_Z, GAMMA_Z)   #: M_Z1's coordinate in the ``mass`` features
_N_U, _N_S2 = 1024, 257   #: table sizes (m₁ nodes per half, s₂ nodes)
_BOUND_MARGIN = 1.02


def _kallen(x1, x2):
    return (1.0 - x1 - x2) ** 2 - 4.0 * x1 * x2


def mass_density(s1, s2):
    """Unnormalised p(s₁, s₂) ∝ BW(s₁)BW(s₂)λ^½(λ + 12x₁x₂), 0 outside the physical region."""
    mg2 = (M_Z * GAMMA_Z) ** 2
    x1, x2 = s1 / M_H**2, s2 / M_H**2
    lam = np.maximum(_kallen(x1, x2), 0.0)
    bw = 1.0 / (((s1 - M_Z**2) ** 2 + mg2) * ((s2 - M_Z**2) ** 2 + mg2))
    return bw * np.sqrt(lam) * (lam + 12.0 * x1 * x2)


def _s2_max(m1):
    return np.minimum(m1, M_H - m1) ** 2


def _u_of_m1(m1):
    return np.arctan((m1 * m1 - M_Z**2) / (M_Z * GAMMA_Z))


def _m1_of_u(u):
    return np.sqrt(M_Z**2 + M_Z * GAMMA_Z * np.tan(u))


@lru_cache(maxsize=1)
def gluon_fusion_born() -> GluonFusionBorn:
    """The g g → H Born sampler at M_H (cached)."""
    return GluonFusionBorn(M_H)


@lru_cache(maxsize=1)
def mass_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, cdf, bound)``, each ``(2 _N_U,)``: grid in u(m₁) on [M_H/2, M_H − M2_MIN] (half
    uniform in u, half uniform in m₁), the normalised CDF of p(u) ∝ G(m₁) =
    ∫ BW(s₂)λ^½(λ + 12x₁x₂) ds₂ (trapezoid), and the accept–reject bound for s₂ | m₁:
    _BOUND_MARGIN × max over s₂ (and over the neighbouring nodes) of p(s₁, s₂)/BW(s₁)."""
    lo, hi = M_H / 2, M_H - M2_MIN
    u = np.unique(np.concatenate([np.linspace(_u_of_m1(lo), _u_of_m1(hi), _N_U),
                                  _u_of_m1(np.linspace(lo, hi, _N_U))]))
    m1 = _m1_of_u(u)[:, None]
    s1 = m1 * m1
    s2 = M2_MIN**2 + np.linspace(0.0, 1.0, _N_S2)[None, :] * (_s2_max(m1) - M2_MIN**2)
    f = mass_density(s1, s2) * ((s1 - M_Z**2) ** 2 + (M_Z * GAMMA_Z) ** 2)  # ÷ BW(s₁)
    g = np.trapezoid(f, s2, axis=1)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(u))])
    h = np.pad(f.max(axis=1), 1, mode="edge")
    bound = _BOUND_MARGIN * np.maximum(np.maximum(h[:-2], h[1:-1]), h[2:])
    return u, cdf / cdf[-1], bound


def sample_z_masses(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(m₁, m₂) ``(n,)`` each from p(s₁, s₂) (see module docstring) for m_H = M_H."""
    u_grid, cdf, bound = mass_tables()
    u = np.interp(rng.random(n), cdf, u_grid)
    m1 = _m1_of_u(u)
    s1, lo = m1 * m1, M2_MIN**2
    hi = _s2_max(m1)
    h = np.interp(u, u_grid, bound)
    bw1 = (s1 - M_Z**2) ** 2 + (M_Z * GAMMA_Z) ** 2
    s2 = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        trial = rng.uniform(lo, hi[todo])
        ok = rng.random(todo.size) * h[todo] < mass_density(s1[todo], trial) * bw1[todo]
        s2[todo[ok]] = trial[ok]
        todo = todo[~ok]
    return m1, np.sqrt(s2)


def sample_higgs_mass(n: int, rng: np.random.Generator) -> np.ndarray:
    """m_H ``(n,)``: relativistic Breit–Wigner in s on M_H ± H_WINDOW (inverse tan CDF)."""
    mg = M_H * GAMMA_H
    a_lo = np.arctan(((M_H - H_WINDOW) ** 2 - M_H**2) / mg)
    a_hi = np.arctan(((M_H + H_WINDOW) ** 2 - M_H**2) / mg)
    return np.sqrt(M_H**2 + mg * np.tan(rng.uniform(a_lo, a_hi, n)))


def sample_cos_longitudinal(n: int, rng: np.random.Generator) -> np.ndarray:
    """c ``(n,)`` from p(c) = ¾(1 − c²): root of c³ − 3c + 4u − 2 = 0,
    c = 2 cos((arccos(1 − 2u) + 4π)/3)."""
    return 2.0 * np.cos((np.arccos(1.0 - 2.0 * rng.random(n)) + 4.0 * np.pi) / 3.0)


def _four(p3: np.ndarray, mass) -> np.ndarray:
    e = np.sqrt(np.einsum("...i,...i->...", p3, p3) + np.square(mass))
    return np.concatenate([p3, e[..., None]], axis=-1)


def generate_truth(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` unsmeared events before acceptance.

    Returns lab four-momenta (px, py, pz, E): ``higgs`` ``(n, 4)`` and ``muons``
    ``(4, n, 4)`` (Z₁ μ⁻, Z₁ μ⁺, Z₂ μ⁻, Z₂ μ⁺), and the sampled ``m_h``, Born rapidity ``y``,
    ``m1``, ``m2``, ``cos_theta1``, ``cos_theta2``, ``helicity`` (−1, 0, +1) ``(n,)``.
    """
    m_h = sample_higgs_mass(n, rng)
    m1, m2 = sample_z_masses(n, rng)
    scale = m_h / M_H
    m1, m2 = m1 * scale, m2 * scale
    y = gluon_fusion_born().sample(n, rng)["y"]
    x1, x2 = born_fractions(m_h, y)
    higgs = isr.shower(np.stack([x1, x2], axis=1), np.zeros((n, 2), dtype=np.int64), rng, me=isr.SCALAR).final_state

    # H rest frame: Z₁ along n̂(θ*, φ*); helicity frames share x = e_θ, y = ±e_φ.
    cos_s = rng.uniform(-1.0, 1.0, n)
    sin_s = np.sqrt(1.0 - cos_s * cos_s)
    phi_s = rng.uniform(-np.pi, np.pi, n)
    cp, sp = np.cos(phi_s), np.sin(phi_s)
    n_hat = np.stack([sin_s * cp, sin_s * sp, cos_s], axis=-1)
    e_theta = np.stack([cos_s * cp, cos_s * sp, -sin_s], axis=-1)
    e_phi = np.stack([-sp, cp, np.zeros(n)], axis=-1)
    x1, x2 = m1 * m1 / m_h**2, m2 * m2 / m_h**2
    p_star = 0.5 * m_h * np.sqrt(np.maximum(_kallen(x1, x2), 0.0))

    x = (m_h * m_h - m1 * m1 - m2 * m2) / (2.0 * m1 * m2)
    r = rng.random(n)
    f_long = x * x / (x * x + 2.0)
    helicity = np.where(r < f_long, 0, np.where(r < 0.5 * (1.0 + f_long), 1, -1))
    long = helicity == 0
    a_fb = 0.75 * R_LEPTON * helicity          # (8/3)A_FB c = 2λR c
    cos_t = []
    for _ in range(2):
        c = sample_cos_theta(n, rng, a_fb=a_fb)
        c[long] = sample_cos_longitudinal(int(long.sum()), rng)
        cos_t.append(c)

    muons = np.empty((4, n, 4))
    for i, (sign, m, c) in enumerate(((1.0, m1, cos_t[0]), (-1.0, m2, cos_t[1]))):
        z_ax, y_ax = sign * n_hat, sign * e_phi
        z_rest = _four(z_ax * p_star[:, None], m)      # Z_i in the H rest frame
        s, ph = np.sqrt(1.0 - c * c), rng.uniform(-np.pi, np.pi, n)
        d = ((s * np.cos(ph))[:, None] * e_theta + (s * np.sin(ph))[:, None] * y_ax
             + c[:, None] * z_ax)
        q = np.sqrt(0.25 * m * m - MUON_MASS**2)[:, None] * d
        muons[2 * i] = boost(_four(q, MUON_MASS), z_rest)      # μ⁻ along d
        muons[2 * i + 1] = boost(_four(-q, MUON_MASS), z_rest)  # μ⁺ opposite
    return {"higgs": higgs, "muons": boost(muons, higgs), "m_h": m_h, "y": y, "m1": m1, "m2": m2,
            "cos_theta1": cos_t[0], "cos_theta2": cos_t[1], "helicity": helicity}


def accepted(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Events ``(n,)`` whose four muons ``(n, 4)`` all have pT > PT_MIN and |η| < ETA_MAX, the
    leading pT > PT_LEAD and the sub-leading > PT_SUB."""
    with np.errstate(invalid="ignore"):
        ranked = np.sort(pt, axis=1)
        return ((pt > PT_MIN).all(axis=1) & (np.abs(eta) < ETA_MAX).all(axis=1)
                & (ranked[:, 3] > PT_LEAD) & (ranked[:, 2] > PT_SUB))


def detector(truth: dict[str, object], rng: np.random.Generator) -> np.ndarray:
    """Smear pT, apply acceptance, order each pair by pT: accepted events ``(m, 12)``."""
    p = truth["muons"]                                      # (4, n, 4)
    pt = np.hypot(p[..., 0], p[..., 1])
    eta = np.arcsinh(p[..., 2] / pt)
    phi = wrap_phi(np.arctan2(p[..., 1], p[..., 0]))
    pt = pt * (1.0 + muon_resolution(pt) * rng.standard_normal(pt.shape))
    ev = np.stack([pt, eta, phi], axis=-1).transpose(1, 0, 2)   # (n, 4, 3)
    ev = ev[accepted(ev[:, :, 0], ev[:, :, 1])]
    for a in (0, 2):
        swap = ev[:, a + 1, 0] > ev[:, a, 0]
        ev[swap, a:a + 2] = ev[swap, a:a + 2][:, ::-1]
    return ev.reshape(len(ev), 12)


def _mu(i: int) -> tuple[str, str, str]:
    return f"mu{i}_pt", f"mu{i}_eta", f"mu{i}_phi"


def feature_names(features: str = FEATURE_MAPS[0]) -> tuple[str, ...]:
    """Names of the 11 features of the map ``features``."""
    transverse = (("log_mu1_pt", "asinh_m_z1", "log_mu3_pt", "log_m_z2") if features == "mass"
                  else tuple(f"log_mu{i}_pt" for i in range(1, 5)))
    return transverse + tuple(f"mu{i}_eta" for i in range(1, 5)) + tuple(f"artanh_dphi_1{i}" for i in range(2, 5))


class HZZ4Mu(Process):
    """H(125) → ZZ* → 4μ at √s = 13 TeV with muon smearing and acceptance."""

    name = "h_zz_4mu"
    description = "H(125) -> ZZ* -> 4 mu at 13 TeV (embedded LO+ISR MC, 4 muons, 11 features)"
    sqrt_s = SQRT_S
    quantities = tuple(q for i in range(1, 5) for q in _mu(i))
    feature_names = feature_names()
    binnings = {
        **{k: v for i, hi in ((1, 120.0), (2, 80.0), (3, 60.0), (4, 40.0))
           for k, v in zip(_mu(i), (
               Binning(0.0, hi, 40, rf"$p_{{T,\mu_{i}}}$ [GeV]"),
               Binning(-2.4, 2.4, 24, rf"$\eta_{{\mu_{i}}}$"),
               Binning(-np.pi, np.pi, 32, rf"$\phi_{{\mu_{i}}}$ [rad]")))},
        "m_4mu": Binning(115.0, 135.0, 80, r"$M_{4\mu}$ [GeV]"),
        "pt_4mu": Binning(0.0, 150.0, 50, r"$p_{T,4\mu}$ [GeV]"),
        "y_4mu": Binning(-2.4, 2.4, 24, r"$y_{4\mu}$"),
        "m_z1": Binning(40.0, 120.0, 80, r"$M_{Z_1}$ [GeV]"),
        "m_z2": Binning(0.0, 64.0, 64, r"$M_{Z_2}$ [GeV]"),
        "pt_z1": Binning(0.0, 150.0, 50, r"$p_{T,Z_1}$ [GeV]"),
        "pt_z2": Binning(0.0, 150.0, 50, r"$p_{T,Z_2}$ [GeV]"),
    }

    def __init__(self, features: str = FEATURE_MAPS[0]):
        """``features``: the network's feature map, one of :data:`~.pair_mass.FEATURE_MAPS`."""
        self.features = check_feature_map(features)
        self.feature_names = feature_names(features)

    def portable_options(self, options: dict) -> dict:
        """The options with the feature map made explicit (a run keeps it when the default changes)."""
        return {**options, "features": self.features}

    def generate_truth(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """See :func:`generate_truth`."""
        return generate_truth(n, rng)

    def detector(self, truth: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """See :func:`detector`."""
        return detector(truth, rng)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 12)`` float64, reproducible for ``seed``."""
        return sample_accepted(n, seed, lambda batch, rng: detector(generate_truth(batch, rng), rng), 12, 0.4, _MAX_BATCH)

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """Four physical muons at √s = SQRT_S; with ``selection`` also :func:`accepted`, each
        Z's pair leading in pT first."""
        ev = np.asarray(events, dtype=np.float64).reshape(-1, 4, 3)
        pt, eta = ev[:, :, 0], ev[:, :, 1]
        ok = physical_objects(pt, eta, ev[:, :, 2], MUON_MASS, SQRT_S)
        if selection:
            ok &= accepted(pt, eta) & (pt[:, 0] >= pt[:, 1]) & (pt[:, 2] >= pt[:, 3])
        return ok

    @staticmethod
    def _openings(eta: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cosh Δη − cos Δφ of the pairs (1, 2) and (3, 4) from η ``(n, 4)`` and δ/π ``(n, 3)``
        of muons 2…4 (Δφ₃₄ = π(δ̂₄ − δ̂₃), and cos(x − π) = −cos x)."""
        return (opening(eta[:, 0], eta[:, 1], np.pi * delta[:, 0]),
                opening(eta[:, 2], eta[:, 3], np.pi * (delta[:, 2] - delta[:, 1] - 1.0)))

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 12)`` → ``(n, 11)``: log pT_i (``mass``: u(M_Z1) and log M_Z2 in place of
        i = 2, 4), η_i, artanh(δ_i/π) with δ_i = wrap(φ_i − φ₁ − π) (i = 2…4, |δ_i/π| clipped to
        1 − 1e-7; the masses are those of the clipped δ, so the map inverts exactly)."""
        ev = np.asarray(events, dtype=np.float64).reshape(-1, 4, 3)
        pt, eta = ev[:, :, 0], ev[:, :, 1]
        delta = np.clip(wrap_phi(ev[:, 1:, 2] - ev[:, :1, 2] - np.pi) / np.pi, -_DPHI_CLIP, _DPHI_CLIP)
        transverse = np.log(pt)
        if self.features == "mass":
            z1, z2 = self._openings(eta, delta)
            transverse[:, 1] = Z1_MAP.forward(pair_mass(pt[:, 0], pt[:, 1], z1))
            transverse[:, 3] = np.log(pair_mass(pt[:, 2], pt[:, 3], z2))
        return np.concatenate([transverse, eta, np.arctanh(delta)], axis=1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 11)`` → ``(n, 12)``; φ₁ uniform in (-π, π] from ``rng``,
        φ_i = wrap(φ₁ + π + π tanh f); with ``mass`` features pT₂ and pT₄ follow from the Z
        masses (:func:`~.pair_mass.partner_pt`); each pair is put in pT order
        (:func:`~.pair_mass.pt_ordered`)."""
        f = np.asarray(features, dtype=np.float64)
        delta, eta = np.tanh(f[:, 8:11]), f[:, 4:8]
        phi1 = np.pi - rng.uniform(0.0, 2.0 * np.pi, len(f))
        phi = np.concatenate([phi1[:, None], wrap_phi(phi1[:, None] + np.pi + np.pi * delta)], axis=1)
        with np.errstate(over="ignore"):
            pt = np.exp(f[:, 0:4])
        if self.features == "mass":
            z1, z2 = self._openings(eta, delta)
            pt[:, 1] = partner_pt(Z1_MAP.inverse(f[:, 1]), pt[:, 0], z1)
            with np.errstate(over="ignore"):
                pt[:, 3] = partner_pt(np.exp(f[:, 3]), pt[:, 2], z2)
        return pt_ordered(pt_ordered(np.stack([pt, eta, phi], axis=-1).reshape(len(f), 12), 0, 3), 6, 9)

    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Every :attr:`binnings` key → values ``(n,)``; Z₁ = muons 1 + 2, Z₂ = muons 3 + 4."""
        ev = np.asarray(events, dtype=np.float64)
        obs = {q: ev[:, i] for i, q in enumerate(self.quantities)}
        mu = [four_vectors(ev[:, 3 * i], ev[:, 3 * i + 1], ev[:, 3 * i + 2], MUON_MASS)
              for i in range(4)]
        z1, z2 = mu[0] + mu[1], mu[2] + mu[3]
        h = z1 + z2
        obs.update(m_4mu=h.mass, pt_4mu=h.pt, y_4mu=h.rapidity, m_z1=z1.mass, m_z2=z2.mass,
                   pt_z1=z1.pt, pt_z2=z2.pt)
        return {k: np.asarray(v, dtype=np.float64) for k, v in obs.items()}


@hookimpl
def bayesgen_processes():
    return {"h_zz_4mu": HZZ4Mu}
