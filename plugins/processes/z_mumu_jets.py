"""Embedded Z/γ* → μ⁺μ⁻ + 1, 2 or 3 jets at √s = 13 TeV: a variable-dimension benchmark.

Generation chain per event (GeV, radians, φ in (-π, π]):

* jet multiplicity n ∈ {1, 2, 3} with P(n) ∝ R^(n−1) (staircase scaling, R = STAIRCASE_RATIO);
* jets: pT from p(pT) ∝ pT^(−JET_PT_POWER) above JET_PT_GEN_MIN, η ~ N(0, JET_ETA_SIGMA),
  φ uniform, mass m = pT·r with log r ~ N(log JET_MASS_RATIO, JET_MASS_SPREAD);
* Z: recoils against the jets, p⃗_T(Z) = −Σ p⃗_T(jets) + a Gaussian soft term (SOFT_SIGMA per
  component), so its φ is opposite the hadronic activity; its rapidity follows the leading jet,
  y_Z ~ N(Y_JET_CORRELATION·η_j1, Y_SIGMA); mass and decay (Collins–Soper 1 + cos²θ) as in
  :mod:`.drell_yan`;
* separation: events with ΔR < 0.4 between any two jets or a jet and a muon are rejected;
* detector: muons as in ``z_mumu`` (σ/pT = 1 % + 10⁻⁴ pT, pT > 20, |η| < 2.4); jets smeared by
  σ/pT = JET_RES_STOCHASTIC/√pT ⊕ JET_RES_CONSTANT (mass scaled alike), kept when pT > 20 and
  |η| < 2.5, re-ordered by pT; events left without a jet are rejected. The multiplicity is the
  number of reconstructed jets, so acceptance shifts the fractions away from P(n).

Event columns: ``mu1_pt … mu2_phi, n_jets, j1_pt, j1_eta, j1_phi, j1_m, …, j3_m`` (19; muon 1
and jet 1 lead in pT; an absent jet's four columns are 0). Features (5 + 4n = 9, 13 or 17 used
of 17): the five dimuon features of ``z_mumu``, then per jet log(pT − 20), η, artanh(δ/π) with
δ = wrap(φ_j − φ_μ1 − π), and log(1 + m/GeV) (finite for massless partons from LHE files). The network is conditioned on the multiplicity (one-hot);
see :mod:`bayesgen.core.process` for how absent jets' feature slots are handled.
"""
from __future__ import annotations

import numpy as np
import vector

from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, physical_objects, sample_accepted
from bayesgen.plugins.processes import drell_yan
from bayesgen.plugins.processes.drell_yan import (DrellYan, dilepton_binnings, dilepton_feature_names,
                                                  dilepton_quantities)
from bayesgen.plugins.processes.z_mumu import ETA_MAX, MUON_MASS, PT_MIN, muon_resolution
from bayesgen.validation.observables import dilepton_observables, four_vectors, wrap_phi

MAX_JETS = 3
STAIRCASE_RATIO = 0.5         #: P(n + 1 jets) / P(n jets) before acceptance
JET_PT_GEN_MIN = 18.0         #: lower edge of the generated jet pT (below the 20 GeV threshold)
JET_PT_POWER = 3.5            #: p(pT) ∝ pT^(−JET_PT_POWER)
JET_PT_MAX = 1000.0           #: upper truncation of the generated jet pT
JET_ETA_SIGMA = 1.4           #: width of the jet η Gaussian
JET_MASS_RATIO = 0.12         #: median m/pT of a jet
JET_MASS_SPREAD = 0.35        #: σ of log(m/pT)
SOFT_SIGMA = 5.0              #: unclustered recoil per transverse component
Y_JET_CORRELATION = 0.5       #: ⟨y_Z⟩ = Y_JET_CORRELATION · η_j1
Y_SIGMA = 1.5                 #: spread of y_Z around it
DELTA_R_MIN = 0.4             #: jet–jet and jet–muon separation
JET_PT_MIN = 20.0             #: reconstructed jet threshold
JET_ETA_MAX = 2.5             #: reconstructed jet |η| acceptance
JET_RES_STOCHASTIC = 1.0      #: √GeV, stochastic term of σ(pT)/pT
JET_RES_CONSTANT = 0.05       #: constant term of σ(pT)/pT

JET_VARIABLES = ("pt", "eta", "phi", "m")
_N_MUON_COLUMNS = 6
_DPHI_CLIP = 1.0 - 1e-7


def jet_resolution(pt: np.ndarray) -> np.ndarray:
    """Jet σ(pT)/pT = JET_RES_STOCHASTIC/√pT ⊕ JET_RES_CONSTANT."""
    return np.hypot(JET_RES_STOCHASTIC / np.sqrt(pt), JET_RES_CONSTANT)


def multiplicity_probabilities() -> np.ndarray:
    """Generated P(n) for n = 1 … MAX_JETS, before acceptance."""
    p = STAIRCASE_RATIO ** np.arange(MAX_JETS)
    return p / p.sum()


def _artanh_dphi(phi: np.ndarray, reference: np.ndarray) -> np.ndarray:
    delta = wrap_phi(phi - reference - np.pi) / np.pi
    return np.arctanh(np.clip(delta, -_DPHI_CLIP, _DPHI_CLIP))


def _phi_from_artanh(feature: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return wrap_phi(reference + np.pi + np.pi * np.tanh(feature))


class ZMuMuJets(DrellYan):
    """Z/γ* → μ⁺μ⁻ + 1–3 jets at 13 TeV: recoiling Z, separated jets, multiplicity condition."""

    name = "z_mumu_jets"
    description = ("Z/gamma* -> mu+ mu- + 1-3 jets at 13 TeV (embedded toy MC, 9/13/17 features, "
                   "conditioned on the jet multiplicity)")
    lepton, lepton_mass, pt_min, eta_max = "mu", MUON_MASS, PT_MIN, ETA_MAX
    initial_efficiency = 0.3
    jet_columns = tuple(f"j{i}_{v}" for i in range(1, MAX_JETS + 1) for v in JET_VARIABLES)
    quantities = (*dilepton_quantities("mu"), "n_jets", *jet_columns)
    feature_names = (*dilepton_feature_names("mu"), *(
        name for i in range(1, MAX_JETS + 1)
        for name in (f"log_j{i}_pt_minus_threshold", f"j{i}_eta", f"artanh_dphi_j{i}", f"log1p_j{i}_m")))
    condition_names = tuple(f"n_jets_is_{n}" for n in range(1, MAX_JETS + 1))
    binnings = {
        **{k: v for k, v in dilepton_binnings("mu", r"\mu", pt1=(20.0, 200.0, 45), pt2=(20.0, 120.0, 40),
                                              eta_max=2.4, eta_bins=24).items() if not k.endswith("_phi")},
        "pt_mumu": Binning(0.0, 300.0, 60, r"$p_{T,\mu\mu}$ [GeV]"),
        "n_jets": Binning(0.5, MAX_JETS + 0.5, MAX_JETS, r"$n_\mathrm{jets}$"),
        "j1_pt": Binning(20.0, 300.0, 56, r"$p_{T,j_1}$ [GeV]"),
        "j2_pt": Binning(20.0, 150.0, 26, r"$p_{T,j_2}$ [GeV]"),
        "j3_pt": Binning(20.0, 100.0, 16, r"$p_{T,j_3}$ [GeV]"),
        "j1_eta": Binning(-2.5, 2.5, 25, r"$\eta_{j_1}$"),
        "j2_eta": Binning(-2.5, 2.5, 25, r"$\eta_{j_2}$"),
        "j3_eta": Binning(-2.5, 2.5, 10, r"$\eta_{j_3}$"),
        "j1_m": Binning(0.0, 40.0, 40, r"$m_{j_1}$ [GeV]"),
        "dr_j1j2": Binning(0.4, 6.0, 28, r"$\Delta R_{j_1 j_2}$"),
        "m_j1j2": Binning(0.0, 500.0, 50, r"$M_{j_1 j_2}$ [GeV]"),
        "ht": Binning(20.0, 500.0, 48, r"$H_T$ [GeV]"),
        "dphi_mumu_j1": Binning(0.0, np.pi, 32, r"$\Delta\phi_{\mu\mu, j_1}$ [rad]"),
    }

    def relative_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return muon_resolution(pt)

    # --- Monte Carlo -------------------------------------------------------------------------
    def generate_jets(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """True jets ``(n, MAX_JETS, 4)`` (pT, η, φ, m; unused slots 0) and multiplicity ``(n,)``."""
        multiplicity = 1 + rng.choice(MAX_JETS, size=n, p=multiplicity_probabilities())
        exponent = 1.0 - JET_PT_POWER
        u_max = 1.0 - (JET_PT_MAX / JET_PT_GEN_MIN) ** exponent
        present = np.arange(MAX_JETS) < multiplicity[:, None]
        pt = JET_PT_GEN_MIN * (1.0 - rng.uniform(0.0, u_max, (n, MAX_JETS))) ** (1.0 / exponent)
        pt = -np.sort(-np.where(present, pt, 0.0), axis=1)  # the event's own jets, leading first
        eta = rng.normal(0.0, JET_ETA_SIGMA, (n, MAX_JETS))
        phi = rng.uniform(-np.pi, np.pi, (n, MAX_JETS))
        mass = pt * np.exp(np.log(JET_MASS_RATIO) + JET_MASS_SPREAD * rng.standard_normal((n, MAX_JETS)))
        jets = np.where(present[..., None], np.stack([pt, eta, phi, mass], axis=-1), 0.0)
        return jets, multiplicity

    def generate_truth(self, n: int, rng: np.random.Generator) -> dict[str, object]:
        """``n`` unsmeared events: ``jets (n, MAX_JETS, 4)``, ``n_true (n,)``, the recoiling
        ``pair`` and its ``mu_minus``, ``mu_plus`` (:mod:`vector` arrays ``(n,)``)."""
        jets, n_true = self.generate_jets(n, rng)
        px = -(jets[..., 0] * np.cos(jets[..., 2])).sum(axis=1) + rng.normal(0.0, SOFT_SIGMA, n)
        py = -(jets[..., 0] * np.sin(jets[..., 2])).sum(axis=1) + rng.normal(0.0, SOFT_SIGMA, n)
        mass = drell_yan.sample_mass(n, rng)
        pt = np.hypot(px, py)
        y = rng.normal(Y_JET_CORRELATION * jets[:, 0, 1], Y_SIGMA)
        y_max = np.log(drell_yan.SQRT_S / np.sqrt(mass * mass + pt * pt))
        y = np.clip(y, -0.99 * y_max, 0.99 * y_max)
        pair = drell_yan.pair_vector(mass, pt, y, np.arctan2(py, px))
        minus, plus, _, _ = drell_yan.decay(pair, rng, MUON_MASS)
        return {"jets": jets, "n_true": n_true, "pair": pair, "mu_minus": minus, "mu_plus": plus}

    @staticmethod
    def separated(jets: np.ndarray, present: np.ndarray, muons: list[vector.MomentumNumpy4D]) -> np.ndarray:
        """Events ``(n,)`` whose jets are ΔR ≥ DELTA_R_MIN from each other and from the muons."""
        ok = np.ones(len(jets), dtype=bool)

        def delta_r(eta_a, phi_a, eta_b, phi_b):
            return np.hypot(eta_a - eta_b, wrap_phi(phi_a - phi_b))

        for i in range(MAX_JETS):
            eta_i, phi_i = jets[:, i, 1], jets[:, i, 2]
            for muon in muons:
                close = delta_r(eta_i, phi_i, np.asarray(muon.eta), np.asarray(muon.phi)) < DELTA_R_MIN
                ok &= ~(present[:, i] & close)
            for k in range(i + 1, MAX_JETS):
                close = delta_r(eta_i, phi_i, jets[:, k, 1], jets[:, k, 2]) < DELTA_R_MIN
                ok &= ~(present[:, i] & present[:, k] & close)
        return ok

    def reconstruct_jets(self, jets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Smeared, accepted, pT-ordered jets ``(n, MAX_JETS, 4)`` (absent slots 0) and their number."""
        present = jets[..., 0] > 0
        safe_pt = np.where(present, jets[..., 0], 1.0)
        scale = 1.0 + jet_resolution(safe_pt) * rng.standard_normal(safe_pt.shape)
        smeared = jets.copy()
        smeared[..., 0] *= scale
        smeared[..., 3] *= scale
        kept = present & (smeared[..., 0] > JET_PT_MIN) & (np.abs(smeared[..., 1]) < JET_ETA_MAX)
        order = np.argsort(-np.where(kept, smeared[..., 0], -np.inf), axis=1, kind="stable")
        smeared = np.take_along_axis(np.where(kept[..., None], smeared, 0.0), order[..., None], axis=1)
        return smeared, kept.sum(axis=1)

    def detector(self, truth: dict[str, object], rng: np.random.Generator) -> np.ndarray:
        """Accepted events ``(m, 19)``: separated jets, muons as in z_mumu, at least one jet."""
        jets = truth["jets"]
        separated = self.separated(jets, jets[..., 0] > 0, [truth["mu_minus"], truth["mu_plus"]])
        muons, keep = self.reconstruct_leptons(truth, rng)
        reco, n_jets = self.reconstruct_jets(jets, rng)
        keep &= separated & (n_jets > 0)
        return np.concatenate([muons[keep], n_jets[keep, None].astype(np.float64),
                               reco[keep].reshape(-1, 4 * MAX_JETS)], axis=1)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 19)`` float64, reproducible for ``seed``."""
        return sample_accepted(n, seed, lambda batch, rng: self.detector(self.generate_truth(batch, rng), rng),
                               len(self.quantities), self.initial_efficiency)

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """The muons as in :meth:`DrellYan.support`, ``n_jets`` whole in [0, MAX_JETS] with the
        absent jets' columns 0, muons and jets (m ≥ 0) physical together at √s; with
        ``selection`` also at least one jet, each with pT > JET_PT_MIN and |η| < JET_ETA_MAX,
        ordered by pT and separated (:meth:`separated`)."""
        ev = np.asarray(events, dtype=np.float64)
        n_jets = ev[:, _N_MUON_COLUMNS]
        jets = ev[:, _N_MUON_COLUMNS + 1:].reshape(-1, MAX_JETS, 4)
        present = np.arange(MAX_JETS) < n_jets[:, None]
        pt, eta, phi = (np.concatenate([ev[:, i:_N_MUON_COLUMNS:3], jets[..., i]], axis=1) for i in range(3))
        mass = np.concatenate([np.full((len(ev), 2), MUON_MASS), jets[..., 3]], axis=1)
        ok = (super().support(ev[:, :_N_MUON_COLUMNS], selection) & np.isin(n_jets, np.arange(MAX_JETS + 1))
              & (present | (jets == 0).all(axis=-1)).all(axis=1)
              & physical_objects(pt, eta, phi, mass, drell_yan.SQRT_S))
        if selection:
            with np.errstate(invalid="ignore"):
                jet_ok = ~present | ((jets[..., 0] > JET_PT_MIN) & (np.abs(jets[..., 1]) < JET_ETA_MAX))
                muons = [four_vectors(ev[:, i], ev[:, i + 1], ev[:, i + 2], MUON_MASS) for i in (0, 3)]
                ok &= ((n_jets >= 1) & jet_ok.all(axis=1) & (jets[:, 1:, 0] <= jets[:, :-1, 0]).all(axis=1)
                       & self.separated(jets, present, muons))
        return ok

    # --- network representation --------------------------------------------------------------
    def conditions(self, events: np.ndarray) -> np.ndarray:
        """One-hot multiplicity ``(n, MAX_JETS)``."""
        n_jets = np.asarray(events, dtype=np.float64)[:, _N_MUON_COLUMNS].astype(int)
        return (n_jets[:, None] == np.arange(1, MAX_JETS + 1)).astype(np.float64)

    def feature_mask(self, conditions: np.ndarray) -> np.ndarray:
        """Muon features always; jet ``i``'s four when the multiplicity is at least ``i``."""
        n_jets = 1 + np.argmax(conditions, axis=1)
        jet_present = np.arange(MAX_JETS) < n_jets[:, None]
        return np.concatenate([np.ones((len(conditions), 5), dtype=bool),
                               np.repeat(jet_present, 4, axis=1)], axis=1)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 19)`` → ``(n, 17)``; an absent jet's slots hold 0."""
        ev = np.asarray(events, dtype=np.float64)
        jets = ev[:, _N_MUON_COLUMNS + 1:].reshape(-1, MAX_JETS, 4)
        present = jets[..., 0] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            jet_features = np.stack([np.log(jets[..., 0] - JET_PT_MIN), jets[..., 1],
                                     _artanh_dphi(jets[..., 2], ev[:, 2:3]), np.log1p(jets[..., 3])], axis=-1)
        jet_features = np.where(present[..., None], jet_features, 0.0).reshape(len(ev), -1)
        return np.concatenate([super().to_features(ev[:, :_N_MUON_COLUMNS]), jet_features], axis=1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 17)`` and the one-hot multiplicity → ``(n, 19)``; φ_μ1 uniform from ``rng``."""
        f = np.asarray(features, dtype=np.float64)
        muons = super().from_features(f[:, :5], rng)
        n_jets = 1 + np.argmax(conditions, axis=1)
        j = f[:, 5:].reshape(-1, MAX_JETS, 4)
        jets = np.stack([JET_PT_MIN + np.exp(j[..., 0]), j[..., 1],
                         _phi_from_artanh(j[..., 2], muons[:, 2:3]), np.maximum(np.expm1(j[..., 3]), 0.0)], axis=-1)
        present = np.arange(MAX_JETS) < n_jets[:, None]
        jets = np.where(present[..., None], jets, 0.0).reshape(len(f), -1)
        return np.concatenate([muons, n_jets[:, None].astype(np.float64), jets], axis=1)

    # --- validation --------------------------------------------------------------------------
    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Every :attr:`binnings` key → values ``(n,)``; NaN where a jet it needs is absent."""
        ev = np.asarray(events, dtype=np.float64)
        obs = {q: ev[:, i] for i, q in enumerate(self.quantities[:_N_MUON_COLUMNS]) if q in self.binnings}
        pair = dilepton_observables(*ev[:, :_N_MUON_COLUMNS].T, mass=MUON_MASS)
        obs.update({"m_mumu": pair["mll"], "pt_mumu": pair["ptll"], "y_mumu": pair["yll"],
                    "dphi_mumu": pair["dphi"], "dr_mumu": pair["dr"]})
        n_jets = ev[:, _N_MUON_COLUMNS]
        jets = ev[:, _N_MUON_COLUMNS + 1:].reshape(-1, MAX_JETS, 4)
        present = np.arange(MAX_JETS) < n_jets[:, None]
        obs["n_jets"] = n_jets
        for i in range(MAX_JETS):
            for v, column in (("pt", 0), ("eta", 1), ("m", 3)):
                if f"j{i + 1}_{v}" in self.binnings:
                    obs[f"j{i + 1}_{v}"] = np.where(present[:, i], jets[:, i, column], np.nan)
        vectors = [four_vectors(jets[:, i, 0], jets[:, i, 1], jets[:, i, 2], jets[:, i, 3]) for i in range(2)]
        two = present[:, 1]
        obs["dr_j1j2"] = np.where(two, np.asarray(vectors[0].deltaR(vectors[1])), np.nan)
        obs["m_j1j2"] = np.where(two, np.asarray((vectors[0] + vectors[1]).mass), np.nan)
        obs["ht"] = np.where(present, jets[..., 0], 0.0).sum(axis=1)
        pair = four_vectors(ev[:, 0], ev[:, 1], ev[:, 2], MUON_MASS) + four_vectors(ev[:, 3], ev[:, 4], ev[:, 5], MUON_MASS)
        obs["dphi_mumu_j1"] = np.abs(np.asarray(pair.deltaphi(vectors[0])))
        return obs


@hookimpl
def bayesgen_processes():
    return {"z_mumu_jets": ZMuMuJets}
