"""Shared embedded Drell–Yan Z/γ* → ℓ⁺ℓ⁻ Monte Carlo at √s = 13 TeV (vectorised NumPy).

Generation chain per event (GeV, radians, φ in (-π, π]):

* mass: relativistic Breit–Wigner in s, p(s) ∝ 1/((s − M_Z²)² + M_Z²Γ_Z²), sampled by inverting
  s = M_Z² + M_ZΓ_Z tan(u) on the window [M_LOW, M_HIGH]; a fraction GAMMA_STAR_FRACTION
  instead follows the γ* continuum p(M) ∝ 1/M²;
* pair pT: p(pT) ∝ pT (1 + pT²/p₀²)^(−n), inverse CDF pT² = p₀²[(1 − u)^(1/(1−n)) − 1];
* pair rapidity: Gaussian of width Y_SIGMA truncated to the kinematic limit |y| < ln(√s/m_T);
* φ of the pair: uniform;
* decay: ℓ⁻ direction in the Collins–Soper frame with p(cosθ) ∝ 1 + cos²θ + (8/3) A_FB cosθ,
  φ_CS uniform; CS z axis bisects beam₁ and −beam₂ in the pair rest frame, signed along the
  pair's lab p_z; y axis ∝ beam₁ × beam₂ (same sign flip), x = y × z;
* detector (per subclass): Gaussian pT smearing with σ/pT = :meth:`DrellYan.relative_resolution`,
  acceptance pT > pt_min, |η| < eta_max and |η| outside ``eta_crack`` on both leptons.

Event columns ``{l}1_pt, {l}1_eta, {l}1_phi, {l}2_pt, {l}2_eta, {l}2_phi`` (float64, lepton 1 =
leading pT). Features (5): log pT₁, η₁, log pT₂, η₂, artanh(δ/π) with δ = wrap(φ₂ − φ₁ − π);
the global φ is re-drawn uniformly on the way back.
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import vector

from bayesgen.core.process import Binning, Process, physical_objects, sample_accepted
from bayesgen.validation.observables import dilepton_observables, wrap_phi

# --- physical constants (GeV) ---------------------------------------------------------------
SQRT_S = 13000.0          #: pp centre-of-mass energy
M_Z = 91.1876             #: Z pole mass (PDG)
GAMMA_Z = 2.4952          #: Z total width (PDG)

# --- generator parameters -------------------------------------------------------------------
M_LOW, M_HIGH = 60.0, 120.0   #: generated dilepton-mass window
GAMMA_STAR_FRACTION = 0.03    #: fraction of events from the γ* 1/M² continuum
PT_SCALE = 6.0                #: p₀ of the pair-pT spectrum
PT_POWER = 2.5                #: n of the pair-pT spectrum (tail ∝ pT^(1−2n))
PT_MAX = 500.0                #: upper truncation of the pair pT
Y_SIGMA = 2.0                 #: width of the pair-rapidity Gaussian
A_FB = 0.02                   #: forward–backward asymmetry of cosθ_CS

_MAX_BATCH = 1_000_000
_DPHI_CLIP = 1.0 - 1e-7


def sample_mass(n: int, rng: np.random.Generator) -> np.ndarray:
    """Dilepton masses ``(n,)``: Breit–Wigner in s (inverse tan CDF) plus γ* continuum."""
    mg = M_Z * GAMMA_Z
    a_lo, a_hi = np.arctan((M_LOW**2 - M_Z**2) / mg), np.arctan((M_HIGH**2 - M_Z**2) / mg)
    s = M_Z**2 + mg * np.tan(rng.uniform(a_lo, a_hi, n))
    mass = np.sqrt(s)
    # γ* continuum p(M) ∝ 1/M²: 1/M uniform between 1/M_HIGH and 1/M_LOW.
    cont = rng.random(n) < GAMMA_STAR_FRACTION
    mass[cont] = 1.0 / rng.uniform(1.0 / M_HIGH, 1.0 / M_LOW, int(cont.sum()))
    return mass


def sample_pt(n: int, rng: np.random.Generator, scale: float = PT_SCALE,
              power: float = PT_POWER, pt_max: float = PT_MAX) -> np.ndarray:
    """Pair pT ``(n,)`` from p(pT) ∝ pT (1 + pT²/p₀²)^(−n) on [0, pt_max] by inverse CDF."""
    one_minus_n = 1.0 - power
    u_max = 1.0 - (1.0 + (pt_max / scale) ** 2) ** one_minus_n
    u = rng.uniform(0.0, u_max, n)
    return scale * np.sqrt((1.0 - u) ** (1.0 / one_minus_n) - 1.0)


def sample_rapidity(mt: np.ndarray, rng: np.random.Generator,
                    sigma: float = Y_SIGMA) -> np.ndarray:
    """Rapidity ``(n,)``: N(0, sigma) truncated to |y| < ln(√s/m_T) (x₁, x₂ ≤ 1)."""
    y_max = np.log(SQRT_S / mt)
    y = rng.normal(0.0, sigma, mt.shape)
    bad = np.flatnonzero(np.abs(y) >= y_max)
    while bad.size:
        y[bad] = rng.normal(0.0, sigma, bad.size)
        bad = bad[np.abs(y[bad]) >= y_max[bad]]
    return y


def sample_cos_theta(n: int, rng: np.random.Generator, a_fb: float = A_FB) -> np.ndarray:
    """cosθ ``(n,)`` from p(c) ∝ 1 + c² + (8/3) a_fb c.

    |c| from 1 + c² by solving c³ + 3c = 3t (Cardano, one real root), t uniform in
    [−4/3, 4/3]; then the sign is + with probability ½ + B|c|/(2(1 + c²)), B = 8a_fb/3.
    """
    t = rng.uniform(-4.0 / 3.0, 4.0 / 3.0, n)
    root = np.sqrt(2.25 * t * t + 1.0)
    c = np.abs(np.cbrt(1.5 * t + root) + np.cbrt(1.5 * t - root))
    b = 8.0 * a_fb / 3.0
    forward = rng.random(n) < 0.5 + b * c / (2.0 * (1.0 + c * c))
    return np.where(forward, c, -c)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def collins_soper_axes(pair: vector.MomentumNumpy4D) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collins–Soper unit axes ``(x, y, z)``, each ``(n, 3)``, in the pair rest frame."""
    n = len(pair)
    e_beam = np.full(n, 0.5 * SQRT_S)
    zero = np.zeros(n)
    dirs = []
    for sign in (1.0, -1.0):
        beam = vector.array({"px": zero, "py": zero, "pz": sign * e_beam, "E": e_beam})
        beam = beam.boostCM_of_p4(pair)
        dirs.append(_unit(np.stack([beam.px, beam.py, beam.pz], axis=-1)))
    b1, b2 = dirs
    sign = np.where(np.asarray(pair.pz) < 0.0, -1.0, 1.0)[:, None]
    z = sign * _unit(b1 - b2)
    y = np.cross(b1, b2)
    norm = np.linalg.norm(y, axis=-1, keepdims=True)
    # pT = 0: beams collinear in the rest frame, any transverse y works; take lab ŷ.
    y = sign * np.where(norm > 1e-12, y / np.where(norm > 0, norm, 1.0), [0.0, 1.0, 0.0])
    x = np.cross(y, z)
    return x, y, z


def decay(pair: vector.MomentumNumpy4D, rng: np.random.Generator,
          lepton_mass: float) -> tuple[vector.MomentumNumpy4D, vector.MomentumNumpy4D, np.ndarray, np.ndarray]:
    """Two-body decay of the lab ``pair (n,)`` into ℓ⁻ℓ⁺ with the Collins–Soper angular
    distribution: ``(ℓ⁻, ℓ⁺, cosθ_CS, φ_CS)``, the leptons as lab :mod:`vector` arrays."""
    n = len(pair)
    mass = np.asarray(pair.mass, dtype=np.float64)
    cos_theta = sample_cos_theta(n, rng)
    phi_cs = rng.uniform(-np.pi, np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta * cos_theta)
    x, y_ax, z = collins_soper_axes(pair)
    direction = ((sin_theta * np.cos(phi_cs))[:, None] * x
                 + (sin_theta * np.sin(phi_cs))[:, None] * y_ax
                 + cos_theta[:, None] * z)
    p_star = np.sqrt(0.25 * mass * mass - lepton_mass**2)[:, None] * direction
    leptons = []
    for sign in (1.0, -1.0):  # ℓ⁻ along the CS direction, ℓ⁺ opposite
        rest = vector.array({"px": sign * p_star[:, 0], "py": sign * p_star[:, 1],
                             "pz": sign * p_star[:, 2], "mass": np.full(n, lepton_mass)})
        leptons.append(rest.boost_p4(pair))
    return leptons[0], leptons[1], cos_theta, phi_cs


def pair_vector(mass: np.ndarray, pt: np.ndarray, y: np.ndarray, phi: np.ndarray) -> vector.MomentumNumpy4D:
    """Lab four-vectors ``(n,)`` of a pair of given mass, pT, rapidity and azimuth."""
    mt = np.sqrt(mass * mass + pt * pt)
    return vector.array({"px": pt * np.cos(phi), "py": pt * np.sin(phi),
                         "pz": mt * np.sinh(y), "E": mt * np.cosh(y)})


def generate_truth(n: int, rng: np.random.Generator, lepton: str,
                   lepton_mass: float) -> dict[str, object]:
    """``n`` unsmeared events before acceptance.

    Returns ``pair``, ``{lepton}_minus``, ``{lepton}_plus`` (lab :mod:`vector` arrays ``(n,)``)
    and the sampled ``mass``, ``pt``, ``y``, ``phi``, ``cos_theta``, ``phi_cs`` ``(n,)``.
    """
    mass = sample_mass(n, rng)
    pt = sample_pt(n, rng)
    y = sample_rapidity(np.sqrt(mass * mass + pt * pt), rng)
    phi = rng.uniform(-np.pi, np.pi, n)
    pair = pair_vector(mass, pt, y, phi)
    minus, plus, cos_theta, phi_cs = decay(pair, rng, lepton_mass)
    return {"pair": pair, f"{lepton}_minus": minus, f"{lepton}_plus": plus,
            "mass": mass, "pt": pt, "y": y, "phi": phi, "cos_theta": cos_theta, "phi_cs": phi_cs}


# --- naming helpers for subclasses ------------------------------------------------------------

def dilepton_quantities(lep: str) -> tuple[str, ...]:
    """Event columns ``{lep}1_pt … {lep}2_phi``."""
    return tuple(f"{lep}{i}_{v}" for i in (1, 2) for v in ("pt", "eta", "phi"))


def dilepton_feature_names(lep: str) -> tuple[str, ...]:
    return (f"log_{lep}1_pt", f"{lep}1_eta", f"log_{lep}2_pt", f"{lep}2_eta", "artanh_dphi")


def dilepton_binnings(lep: str, tex: str, pt1: tuple[float, float, int],
                      pt2: tuple[float, float, int], eta_max: float,
                      eta_bins: int) -> dict[str, Binning]:
    """Default histograms: per-lepton pT/η/φ, then m, pT, y, Δφ, ΔR of the pair ``{lep}{lep}``."""
    pair, ptex = lep + lep, tex + tex
    b: dict[str, Binning] = {}
    for i, (lo, hi, nb) in ((1, pt1), (2, pt2)):
        b[f"{lep}{i}_pt"] = Binning(lo, hi, nb, rf"$p_{{T,{tex}_{i}}}$ [GeV]")
        b[f"{lep}{i}_eta"] = Binning(-eta_max, eta_max, eta_bins, rf"$\eta_{{{tex}_{i}}}$")
        b[f"{lep}{i}_phi"] = Binning(-np.pi, np.pi, 32, rf"$\phi_{{{tex}_{i}}}$ [rad]")
    b[f"m_{pair}"] = Binning(70.0, 110.0, 80, rf"$M_{{{ptex}}}$ [GeV]")
    b[f"pt_{pair}"] = Binning(0.0, 100.0, 50, rf"$p_{{T,{ptex}}}$ [GeV]")
    b[f"y_{pair}"] = Binning(-2.4, 2.4, 24, rf"$y_{{{ptex}}}$")
    b[f"dphi_{pair}"] = Binning(0.0, np.pi, 32, rf"$\Delta\phi_{{{ptex}}}$ [rad]")
    b[f"dr_{pair}"] = Binning(0.0, 6.0, 30, rf"$\Delta R_{{{ptex}}}$")
    return b


class DrellYan(Process):
    """Drell–Yan Z/γ* → ℓ⁺ℓ⁻ with lepton smearing and acceptance (abstract over the lepton).

    Subclasses set ``lepton`` (column prefix), ``lepton_mass``, ``pt_min``, ``eta_max``,
    optionally ``eta_crack = (lo, hi)`` (rejected |η| band), the usual :class:`Process`
    attributes (see :func:`dilepton_quantities` and friends) and :meth:`relative_resolution`.
    """

    lepton: str
    lepton_mass: float
    pt_min: float
    eta_max: float
    eta_crack: tuple[float, float] | None = None
    sqrt_s = SQRT_S
    initial_efficiency = 0.4   #: first guess of the acceptance, sizes the first batch

    @abstractmethod
    def relative_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """σ(pT)/pT ``(n,)`` for true lepton pT, η."""

    def smear_pt(self, pt: np.ndarray, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Gaussian smearing pT → pT (1 + σ_rel N(0, 1))."""
        return pt * (1.0 + self.relative_resolution(pt, eta) * rng.standard_normal(pt.shape))

    def accepted(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Boolean acceptance mask of single leptons ``(n,)``."""
        abs_eta = np.abs(eta)
        ok = (pt > self.pt_min) & (abs_eta < self.eta_max)
        if self.eta_crack is not None:
            lo, hi = self.eta_crack
            ok &= ~((abs_eta > lo) & (abs_eta < hi))
        return ok

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """Both leptons physical at √s = SQRT_S; with ``selection`` also both accepted
        (:meth:`accepted`) and lepton 1 leading in pT."""
        ev = np.asarray(events, dtype=np.float64)
        pt, eta = ev[:, 0:6:3], ev[:, 1:6:3]
        ok = physical_objects(pt, eta, ev[:, 2:6:3], self.lepton_mass, SQRT_S)
        if selection:
            ok &= self.accepted(pt[:, 0], eta[:, 0]) & self.accepted(pt[:, 1], eta[:, 1]) & (pt[:, 0] >= pt[:, 1])
        return ok

    def generate_truth(self, n: int, rng: np.random.Generator) -> dict[str, object]:
        """See :func:`generate_truth`."""
        return generate_truth(n, rng, self.lepton, self.lepton_mass)

    def reconstruct_leptons(self, truth: dict[str, object],
                            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Smeared, pT-ordered leptons ``(n, 6)`` of every event and the acceptance ``(n,)``."""
        cols = []
        for lep in (truth[f"{self.lepton}_minus"], truth[f"{self.lepton}_plus"]):
            eta = np.asarray(lep.eta)
            cols.append((self.smear_pt(np.asarray(lep.pt), eta, rng), eta,
                         wrap_phi(np.asarray(lep.phi))))
        (pt_a, eta_a, phi_a), (pt_b, eta_b, phi_b) = cols
        keep = self.accepted(pt_a, eta_a) & self.accepted(pt_b, eta_b)
        a = np.stack([pt_a, eta_a, phi_a], axis=-1)
        b = np.stack([pt_b, eta_b, phi_b], axis=-1)
        lead_a = (a[:, 0] >= b[:, 0])[:, None]
        return np.concatenate([np.where(lead_a, a, b), np.where(lead_a, b, a)], axis=-1), keep

    def detector(self, truth: dict[str, object], rng: np.random.Generator) -> np.ndarray:
        """Smear, apply acceptance, order by pT: accepted events ``(m, 6)``."""
        leptons, keep = self.reconstruct_leptons(truth, rng)
        return leptons[keep]

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 6)`` float64, reproducible for ``seed``."""
        return sample_accepted(n, seed, lambda batch, rng: self.detector(self.generate_truth(batch, rng), rng), 6, self.initial_efficiency, _MAX_BATCH)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 6)`` → ``(n, 5)``: log pT₁, η₁, log pT₂, η₂, artanh(δ/π) with
        δ = wrap(φ₂ − φ₁ − π) (≈ 0 for back-to-back leptons), |δ/π| clipped to 1 − 1e-7."""
        ev = np.asarray(events, dtype=np.float64)
        delta = wrap_phi(ev[:, 5] - ev[:, 2] - np.pi) / np.pi
        return np.stack([np.log(ev[:, 0]), ev[:, 1], np.log(ev[:, 3]), ev[:, 4],
                         np.arctanh(np.clip(delta, -_DPHI_CLIP, _DPHI_CLIP))], axis=-1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, 5)`` → ``(n, 6)``; φ₁ uniform in (-π, π] from ``rng``,
        φ₂ = wrap(φ₁ + π + π tanh f₅)."""
        f = np.asarray(features, dtype=np.float64)
        phi1 = np.pi - rng.uniform(0.0, 2.0 * np.pi, len(f))
        phi2 = wrap_phi(phi1 + np.pi + np.pi * np.tanh(f[:, 4]))
        return np.stack([np.exp(f[:, 0]), f[:, 1], phi1, np.exp(f[:, 2]), f[:, 3], phi2],
                        axis=-1)

    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Every :attr:`binnings` key → values ``(n,)``."""
        ev = np.asarray(events, dtype=np.float64)
        obs = {q: ev[:, i] for i, q in enumerate(self.quantities)}
        pair = dilepton_observables(*ev.T, mass=self.lepton_mass)
        p = self.lepton * 2
        obs.update({f"m_{p}": pair["mll"], f"pt_{p}": pair["ptll"], f"y_{p}": pair["yll"],
                    f"dphi_{p}": pair["dphi"], f"dr_{p}": pair["dr"]})
        return obs
