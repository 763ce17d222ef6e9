"""Embedded Drell–Yan Z/γ* → μ⁺μ⁻ Monte Carlo at √s = 13 TeV (vectorised NumPy).

Generation chain per event (GeV, radians, φ in (-π, π]):

* mass: relativistic Breit–Wigner in s, p(s) ∝ 1/((s − M_Z²)² + M_Z²Γ_Z²), sampled by inverting
  s = M_Z² + M_ZΓ_Z tan(u) on the window [M_LOW, M_HIGH]; a fraction GAMMA_STAR_FRACTION
  instead follows the γ* continuum p(M) ∝ 1/M²;
* pair pT: p(pT) ∝ pT (1 + pT²/p₀²)^(−n), inverse CDF pT² = p₀²[(1 − u)^(1/(1−n)) − 1];
* pair rapidity: Gaussian of width Y_SIGMA truncated to the kinematic limit |y| < ln(√s/m_T);
* φ of the pair: uniform;
* decay: μ⁻ direction in the Collins–Soper frame with p(cosθ) ∝ 1 + cos²θ + (8/3) A_FB cosθ,
  φ_CS uniform; CS z axis bisects beam₁ and −beam₂ in the pair rest frame, signed along the
  pair's lab p_z; y axis ∝ beam₁ × beam₂ (same sign flip), x = y × z;
* detector: Gaussian pT smearing σ/pT = RES_CONST + RES_SLOPE·pT, acceptance pT > PT_MIN and
  |η| < ETA_MAX on both muons.

Event columns: ``mu1_pt, mu1_eta, mu1_phi, mu2_pt, mu2_eta, mu2_phi`` (float64, mu1 = leading pT).
"""
from __future__ import annotations

import numpy as np
import vector

from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, Process
from bayesgen.validation.observables import dilepton_observables, wrap_phi

# --- physical constants (GeV) ---------------------------------------------------------------
SQRT_S = 13000.0          #: pp centre-of-mass energy
M_Z = 91.1876             #: Z pole mass (PDG)
GAMMA_Z = 2.4952          #: Z total width (PDG)
MUON_MASS = 0.1056584     #: muon mass

# --- generator parameters -------------------------------------------------------------------
M_LOW, M_HIGH = 60.0, 120.0   #: generated dimuon-mass window
GAMMA_STAR_FRACTION = 0.03    #: fraction of events from the γ* 1/M² continuum
PT_SCALE = 6.0                #: p₀ of the pair-pT spectrum
PT_POWER = 2.5                #: n of the pair-pT spectrum (tail ∝ pT^(1−2n))
PT_MAX = 500.0                #: upper truncation of the pair pT
Y_SIGMA = 2.0                 #: width of the pair-rapidity Gaussian
A_FB = 0.02                   #: forward–backward asymmetry of cosθ_CS

# --- detector ---------------------------------------------------------------------------------
RES_CONST = 0.01              #: constant term of σ(pT)/pT
RES_SLOPE = 1e-4              #: slope of σ(pT)/pT per GeV
PT_MIN = 20.0                 #: muon pT threshold
ETA_MAX = 2.4                 #: muon |η| acceptance

_MAX_BATCH = 1_000_000
_DPHI_CLIP = 1.0 - 1e-7


def sample_mass(n: int, rng: np.random.Generator) -> np.ndarray:
    """Dimuon masses ``(n,)``: Breit–Wigner in s (inverse tan CDF) plus γ* continuum."""
    mg = M_Z * GAMMA_Z
    a_lo, a_hi = np.arctan((M_LOW**2 - M_Z**2) / mg), np.arctan((M_HIGH**2 - M_Z**2) / mg)
    s = M_Z**2 + mg * np.tan(rng.uniform(a_lo, a_hi, n))
    mass = np.sqrt(s)
    # γ* continuum p(M) ∝ 1/M²: 1/M uniform between 1/M_HIGH and 1/M_LOW.
    cont = rng.random(n) < GAMMA_STAR_FRACTION
    mass[cont] = 1.0 / rng.uniform(1.0 / M_HIGH, 1.0 / M_LOW, int(cont.sum()))
    return mass


def sample_pt(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pair pT ``(n,)`` from p(pT) ∝ pT (1 + pT²/p₀²)^(−n) on [0, PT_MAX] by inverse CDF."""
    one_minus_n = 1.0 - PT_POWER
    u_max = 1.0 - (1.0 + (PT_MAX / PT_SCALE) ** 2) ** one_minus_n
    u = rng.uniform(0.0, u_max, n)
    return PT_SCALE * np.sqrt((1.0 - u) ** (1.0 / one_minus_n) - 1.0)


def sample_rapidity(mt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pair rapidity ``(n,)``: N(0, Y_SIGMA) truncated to |y| < ln(√s/m_T) (x₁, x₂ ≤ 1)."""
    y_max = np.log(SQRT_S / mt)
    y = rng.normal(0.0, Y_SIGMA, mt.shape)
    bad = np.flatnonzero(np.abs(y) >= y_max)
    while bad.size:
        y[bad] = rng.normal(0.0, Y_SIGMA, bad.size)
        bad = bad[np.abs(y[bad]) >= y_max[bad]]
    return y


def sample_cos_theta(n: int, rng: np.random.Generator) -> np.ndarray:
    """cosθ ``(n,)`` from p(c) ∝ 1 + c² + (8/3) A_FB c.

    |c| from 1 + c² by solving c³ + 3c = 3t (Cardano, one real root), t uniform in
    [−4/3, 4/3]; then the sign is + with probability ½ + B|c|/(2(1 + c²)), B = 8A_FB/3.
    """
    t = rng.uniform(-4.0 / 3.0, 4.0 / 3.0, n)
    root = np.sqrt(2.25 * t * t + 1.0)
    c = np.abs(np.cbrt(1.5 * t + root) + np.cbrt(1.5 * t - root))
    b = 8.0 * A_FB / 3.0
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


def generate_truth(n: int, rng: np.random.Generator) -> dict[str, object]:
    """``n`` unsmeared events before acceptance.

    Returns ``pair``, ``mu_minus``, ``mu_plus`` (lab :mod:`vector` arrays ``(n,)``) and the
    sampled ``mass``, ``pt``, ``y``, ``phi``, ``cos_theta``, ``phi_cs`` ``(n,)``.
    """
    mass = sample_mass(n, rng)
    pt = sample_pt(n, rng)
    mt = np.sqrt(mass * mass + pt * pt)
    y = sample_rapidity(mt, rng)
    phi = rng.uniform(-np.pi, np.pi, n)
    pair = vector.array({"px": pt * np.cos(phi), "py": pt * np.sin(phi),
                         "pz": mt * np.sinh(y), "E": mt * np.cosh(y)})

    cos_theta = sample_cos_theta(n, rng)
    phi_cs = rng.uniform(-np.pi, np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta * cos_theta)
    x, y_ax, z = collins_soper_axes(pair)
    direction = ((sin_theta * np.cos(phi_cs))[:, None] * x
                 + (sin_theta * np.sin(phi_cs))[:, None] * y_ax
                 + cos_theta[:, None] * z)
    p_star = np.sqrt(0.25 * mass * mass - MUON_MASS**2)[:, None] * direction
    muons = []
    for sign in (1.0, -1.0):  # μ⁻ along the CS direction, μ⁺ opposite
        rest = vector.array({"px": sign * p_star[:, 0], "py": sign * p_star[:, 1],
                             "pz": sign * p_star[:, 2], "mass": np.full(n, MUON_MASS)})
        muons.append(rest.boost_p4(pair))
    return {"pair": pair, "mu_minus": muons[0], "mu_plus": muons[1], "mass": mass, "pt": pt,
            "y": y, "phi": phi, "cos_theta": cos_theta, "phi_cs": phi_cs}


def smear_pt(pt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian pT smearing with σ/pT = RES_CONST + RES_SLOPE·pT."""
    return pt * (1.0 + (RES_CONST + RES_SLOPE * pt) * rng.standard_normal(pt.shape))


def _detector(truth: dict[str, object], rng: np.random.Generator) -> np.ndarray:
    """Smear, apply acceptance, order by pT: accepted events ``(m, 6)``."""
    cols = []
    for mu in (truth["mu_minus"], truth["mu_plus"]):
        cols.append((smear_pt(np.asarray(mu.pt), rng), np.asarray(mu.eta),
                     wrap_phi(np.asarray(mu.phi))))
    (pt_a, eta_a, phi_a), (pt_b, eta_b, phi_b) = cols
    keep = ((pt_a > PT_MIN) & (pt_b > PT_MIN)
            & (np.abs(eta_a) < ETA_MAX) & (np.abs(eta_b) < ETA_MAX))
    a = np.stack([pt_a, eta_a, phi_a], axis=-1)[keep]
    b = np.stack([pt_b, eta_b, phi_b], axis=-1)[keep]
    lead_a = (a[:, 0] >= b[:, 0])[:, None]
    return np.concatenate([np.where(lead_a, a, b), np.where(lead_a, b, a)], axis=-1)


class ZMuMu(Process):
    """Drell–Yan Z/γ* → μ⁺μ⁻ at √s = 13 TeV with muon smearing and acceptance."""

    name = "z_mumu"
    description = "Drell-Yan Z/gamma* -> mu+ mu- at 13 TeV (embedded toy MC, 2 muons, 5 features)"
    quantities = ("mu1_pt", "mu1_eta", "mu1_phi", "mu2_pt", "mu2_eta", "mu2_phi")
    feature_names = ("log_mu1_pt", "mu1_eta", "log_mu2_pt", "mu2_eta", "artanh_dphi")
    binnings = {
        "mu1_pt": Binning(20.0, 100.0, 40, r"$p_{T,\mu_1}$ [GeV]"),
        "mu1_eta": Binning(-2.4, 2.4, 24, r"$\eta_{\mu_1}$"),
        "mu1_phi": Binning(-np.pi, np.pi, 32, r"$\phi_{\mu_1}$ [rad]"),
        "mu2_pt": Binning(20.0, 80.0, 30, r"$p_{T,\mu_2}$ [GeV]"),
        "mu2_eta": Binning(-2.4, 2.4, 24, r"$\eta_{\mu_2}$"),
        "mu2_phi": Binning(-np.pi, np.pi, 32, r"$\phi_{\mu_2}$ [rad]"),
        "m_mumu": Binning(70.0, 110.0, 80, r"$M_{\mu\mu}$ [GeV]"),
        "pt_mumu": Binning(0.0, 100.0, 50, r"$p_{T,\mu\mu}$ [GeV]"),
        "y_mumu": Binning(-2.4, 2.4, 24, r"$y_{\mu\mu}$"),
        "dphi_mumu": Binning(0.0, np.pi, 32, r"$\Delta\phi_{\mu\mu}$ [rad]"),
        "dr_mumu": Binning(0.0, 6.0, 30, r"$\Delta R_{\mu\mu}$"),
    }

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 6)`` float64, reproducible for ``seed``."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        chunks, have, efficiency = [], 0, 0.4
        while have < n:
            batch = int(min(_MAX_BATCH, max(1000, 1.1 * (n - have) / efficiency)))
            events = _detector(generate_truth(batch, rng), rng)
            efficiency = max(0.05, len(events) / batch)
            chunks.append(events)
            have += len(events)
        out = np.concatenate(chunks, axis=0)[:n] if chunks else np.empty((0, 6))
        return np.ascontiguousarray(out, dtype=np.float64)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 6)`` → ``(n, 5)``: log pT₁, η₁, log pT₂, η₂, artanh(δ/π) with
        δ = wrap(φ₂ − φ₁ − π) (≈ 0 for back-to-back muons), |δ/π| clipped to 1 − 1e-7."""
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
        pair = dilepton_observables(*ev.T, mass=MUON_MASS)
        obs.update(m_mumu=pair["mll"], pt_mumu=pair["ptll"], y_mumu=pair["yll"],
                   dphi_mumu=pair["dphi"], dr_mumu=pair["dr"])
        return obs


@hookimpl
def bayesgen_processes():
    return {"z_mumu": ZMuMu}
