"""W± → μ±ν at √s = 13 TeV with missing transverse momentum: an example bayesgen process plugin.

A toy Monte Carlo in vectorised NumPy (GeV, radians, φ in (-π, π]); per event:

* W mass: relativistic Breit–Wigner in s, p(s) ∝ 1/((s − M_W²)² + M_W²Γ_W²) on [M_LOW, M_HIGH],
  sampled by inverting s = M_W² + M_WΓ_W tan(u);
* W pT: p(pT) ∝ pT (1 + pT²/p₀²)^(−n) by inverse CDF; rapidity N(0, Y_SIGMA) inside the
  kinematic limit |y| < ln(√s/m_T); φ uniform; W⁺ with probability W_PLUS_FRACTION;
* decay (V−A): p(cosθ) ∝ (1 ∓ cosθ)² for W±, θ the angle of the μ± to the quark in the W rest
  frame reached from the lab by a pure boost (≈ Collins–Soper for pT ≪ M_W); the quark moves
  along the W's boost with probability ½(1 + tanh|y|) (valence quarks carry the larger x);
* detector: muon σ(pT)/pT = RES_CONST + RES_SLOPE·pT; hadronic recoil u = −pT(W) smeared by
  MET_SIGMA per component; MET = −(pT(μ) + u); acceptance pT(μ) > PT_MIN, |η(μ)| < ETA_MAX.

Event columns: ``mu_pt, mu_eta, mu_phi, met, met_phi`` (float64).
"""
from __future__ import annotations

import numpy as np
import vector

from bayesgen.core.hooks import hookimpl
from bayesgen.core.kinematics import four_vectors, wrap_phi
from bayesgen.core.process import Binning, Process, physical_objects

SQRT_S = 13000.0                  #: pp centre-of-mass energy
M_W, GAMMA_W = 80.377, 2.085      #: W pole mass and width (PDG)
MUON_MASS = 0.1056584
M_LOW, M_HIGH = 50.0, 110.0       #: generated W-mass window
PT_SCALE, PT_POWER, PT_MAX = 6.0, 2.5, 500.0   #: p₀, n and upper limit of the W-pT spectrum
Y_SIGMA = 2.0                     #: width of the W-rapidity Gaussian
W_PLUS_FRACTION = 0.57            #: σ(W⁺)/σ(W⁻) ≈ 1.3 at 13 TeV
RES_CONST, RES_SLOPE = 0.01, 1e-4  #: muon σ(pT)/pT = RES_CONST + RES_SLOPE·pT
MET_SIGMA = 10.0                  #: recoil resolution per transverse component
PT_MIN, ETA_MAX = 25.0, 2.4       #: muon acceptance
_CLIP = 1.0 - 1e-7


def generate(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` detector-level events ``(n, 5)`` before the acceptance cuts."""
    mg = M_W * GAMMA_W
    lo, hi = np.arctan((np.array([M_LOW, M_HIGH]) ** 2 - M_W**2) / mg)
    mass = np.sqrt(M_W**2 + mg * np.tan(rng.uniform(lo, hi, n)))
    a = 1.0 - PT_POWER
    u = rng.uniform(0.0, 1.0 - (1.0 + (PT_MAX / PT_SCALE) ** 2) ** a, n)
    pt = PT_SCALE * np.sqrt((1.0 - u) ** (1.0 / a) - 1.0)
    mt = np.hypot(mass, pt)
    y = rng.normal(0.0, Y_SIGMA, n)
    while (bad := np.abs(y) >= np.log(SQRT_S / mt)).any():
        y[bad] = rng.normal(0.0, Y_SIGMA, int(bad.sum()))
    phi = rng.uniform(-np.pi, np.pi, n)
    w = vector.array({"px": pt * np.cos(phi), "py": pt * np.sin(phi),
                      "pz": mt * np.sinh(y), "E": mt * np.cosh(y)})

    charge = np.where(rng.random(n) < W_PLUS_FRACTION, 1.0, -1.0)
    along_boost = rng.random(n) < 0.5 * (1.0 + np.tanh(np.abs(y)))
    quark = np.where(y < 0, -1.0, 1.0) * np.where(along_boost, 1.0, -1.0)  # quark direction: ±z
    # (1 + c)² has CDF (1 + c)³/8, so c = 2u^⅓ − 1 for μ⁻; μ⁺ mirrors it; then quark axis → lab z.
    cos = -charge * quark * (2.0 * np.cbrt(rng.random(n)) - 1.0)
    sin = np.sqrt(1.0 - cos * cos)
    phi_star = rng.uniform(-np.pi, np.pi, n)
    p_star = (mass * mass - MUON_MASS**2) / (2.0 * mass)
    muon = vector.array({"px": p_star * sin * np.cos(phi_star), "py": p_star * sin * np.sin(phi_star),
                         "pz": p_star * cos, "mass": np.full(n, MUON_MASS)}).boost_p4(w)

    mu_pt = muon.pt * (1.0 + (RES_CONST + RES_SLOPE * muon.pt) * rng.standard_normal(n))
    mu_phi = wrap_phi(muon.phi)
    mu = vector.array({"pt": mu_pt, "phi": mu_phi})
    recoil = vector.array({"px": -w.px + MET_SIGMA * rng.standard_normal(n),
                           "py": -w.py + MET_SIGMA * rng.standard_normal(n)})
    met = -(mu + recoil)
    return np.stack([mu_pt, muon.eta, mu_phi, met.pt, wrap_phi(met.phi)], axis=-1)


def accepted(events: np.ndarray) -> np.ndarray:
    """Events ``(n,)`` whose muon has pT > PT_MIN and |η| < ETA_MAX."""
    with np.errstate(invalid="ignore"):
        return (events[:, 0] > PT_MIN) & (np.abs(events[:, 1]) < ETA_MAX)


class WMuNu(Process):
    """W -> mu nu at 13 TeV with missing transverse momentum (example plugin, 4 features)."""

    name = "w_munu"
    description = "W -> mu nu at 13 TeV with MET (example third-party plugin, 4 features)"
    sqrt_s = SQRT_S
    quantities = ("mu_pt", "mu_eta", "mu_phi", "met", "met_phi")
    feature_names = ("log_mu_pt", "mu_eta", "log_met", "artanh_dphi")
    binnings = {
        "mu_pt": Binning(25.0, 65.0, 40, r"$p_{T,\mu}$ [GeV]"),
        "mu_eta": Binning(-2.4, 2.4, 24, r"$\eta_\mu$"),
        "mu_phi": Binning(-np.pi, np.pi, 32, r"$\phi_\mu$ [rad]"),
        "met": Binning(0.0, 100.0, 50, r"$E_T^{miss}$ [GeV]"),
        "met_phi": Binning(-np.pi, np.pi, 32, r"$\phi(E_T^{miss})$ [rad]"),
        "mt": Binning(20.0, 120.0, 50, r"$m_T$ [GeV]"),
        "dphi": Binning(0.0, np.pi, 32, r"$\Delta\phi(\mu, E_T^{miss})$ [rad]"),
        "pt_w": Binning(0.0, 60.0, 30, r"$p_{T,W} = |p_{T,\mu} + E_T^{miss}|$ [GeV]"),
    }

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 5)`` float64, reproducible for ``seed``."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        chunks, have = [], 0
        while have < n:
            events = generate(min(1_000_000, max(1000, 2 * (n - have))), rng)
            events = events[accepted(events)]
            chunks.append(events)
            have += len(events)
        return np.concatenate(chunks)[:n] if chunks else np.empty((0, len(self.quantities)))

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """The muon and the MET (as a massless object at η = 0, its least energy) physical at
        √s; with ``selection`` also :func:`accepted`."""
        ev = np.asarray(events, dtype=np.float64)
        pt, eta = ev[:, [0, 3]], np.stack([ev[:, 1], np.zeros(len(ev))], axis=1)
        ok = physical_objects(pt, eta, ev[:, [2, 4]], [MUON_MASS, 0.0], SQRT_S)
        if selection:
            ok &= accepted(ev)
        return ok

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 5)`` → ``(n, 4)``: log pT(μ), η(μ), log MET, artanh(δ/π) with
        δ = wrap(φ_MET − φ_μ − π) (≈ 0 back to back); the global φ is dropped."""
        ev = np.asarray(events, dtype=np.float64)
        delta = wrap_phi(ev[:, 4] - ev[:, 2] - np.pi) / np.pi
        return np.stack([np.log(ev[:, 0]), ev[:, 1], np.log(ev[:, 3]),
                         np.arctanh(np.clip(delta, -_CLIP, _CLIP))], axis=-1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 4)`` → ``(n, 5)``; φ_μ is re-drawn uniformly in (-π, π] from ``rng``."""
        f = np.asarray(features, dtype=np.float64)
        mu_phi = np.pi - rng.uniform(0.0, 2.0 * np.pi, len(f))
        met_phi = wrap_phi(mu_phi + np.pi + np.pi * np.tanh(f[:, 3]))
        return np.stack([np.exp(f[:, 0]), f[:, 1], mu_phi, np.exp(f[:, 2]), met_phi], axis=-1)

    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Every :attr:`binnings` key → values ``(n,)``; m_T = √(2 pT(μ) MET (1 − cos Δφ))."""
        ev = np.asarray(events, dtype=np.float64)
        obs = dict(zip(self.quantities, ev.T))
        mu = four_vectors(ev[:, 0], ev[:, 1], ev[:, 2], MUON_MASS).to_2D()
        met = vector.array({"pt": ev[:, 3], "phi": ev[:, 4]})
        dphi = np.abs(np.asarray(mu.deltaphi(met)))
        obs.update(mt=np.sqrt(2.0 * ev[:, 0] * ev[:, 3] * (1.0 - np.cos(dphi))), dphi=dphi,
                   pt_w=np.asarray((mu + met).pt))
        return obs


@hookimpl
def bayesgen_processes():
    return {"w_munu": WMuNu}
