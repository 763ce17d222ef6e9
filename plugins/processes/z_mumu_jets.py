"""Embedded Z/γ* → μ⁺μ⁻ + 1, 2 or 3 jets at √s = 13 TeV: a variable-dimension benchmark.

The events are those of :mod:`.z_mumu` (LO Drell–Yan, initial-state shower with the
O(α_s) matrix elements for the hardest emission, QED FSR; see :mod:`.drell_yan`), and the jets
are the shower's own emissions, so the Z recoils against them:

* partons: the first PARTONS_KEPT emissions of the initial-state shower (p_T-ordered, so these
  are the hardest); each becomes a jet constituent with a mass m = p_T·r, log r ~
  N(log JET_MASS_RATIO, JET_MASS_SPREAD), standing in for the parton's own final-state shower
  and hadronisation, which are not simulated;
* clustering: in order of decreasing p_T each constituent joins the first (hardest) jet within
  ΔR < DELTA_R_MIN of it, else starts a new jet (the anti-k_T picture for R = 0.4), repeated
  until all jets are ΔR ≥ DELTA_R_MIN apart;
* detector: muons as in ``z_mumu`` (bare, σ/pT = 1 % + 10⁻⁴ pT, pT > 20, |η| < 2.4); jets
  smeared by σ/pT = JET_RES_STOCHASTIC/√pT ⊕ JET_RES_CONSTANT (mass scaled alike), kept when
  pT > 20 and |η| < 2.5 and ΔR ≥ DELTA_R_MIN from both muons (overlap removal), re-ordered by
  pT. Events are kept with 1, 2 or 3 such jets: those with none are not Z + jets, those with
  four or more (a fraction ~10⁻³ of the rest) are dropped so that every kept event is described
  completely by its columns. The multiplicity is that of reconstructed jets.

Event columns: ``mu1_pt … mu2_phi, n_jets, j1_pt, j1_eta, j1_phi, j1_m, …, j3_m`` (19; muon 1
and jet 1 lead in pT; an absent jet's four columns are 0). Features (5 + 4n = 9, 13 or 17 used
of 17): the five dimuon features of ``z_mumu``, then per jet log(pT − 20), η, artanh(δ/π) with
δ = wrap(φ_j − φ_μ1 − π), and log(1 + m/GeV) (finite for massless partons from LHE files). The network is conditioned on the multiplicity (one-hot);
see :mod:`bayesgen.core.process` for how absent jets' feature slots are handled.
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.hooks import hookimpl
from bayesgen.core.kinematics import dilepton_observables, four_vectors, wrap_phi
from bayesgen.core.process import Binning, physical_objects, sample_accepted
from bayesgen.plugins.processes.drell_yan import (DrellYan, dilepton_binnings, dilepton_feature_names,
                                                  dilepton_quantities)
from bayesgen.plugins.processes.lorentz import pt_eta_phi
from bayesgen.plugins.processes.pair_mass import pt_ordered
from bayesgen.plugins.processes.luminosity import SQRT_S
from bayesgen.plugins.processes.z_mumu import ETA_MAX, MUON_MASS, PT_MIN, muon_resolution

MAX_JETS = 3
PARTONS_KEPT = 6              #: shower emissions followed into jets (the later ones are soft)
JET_MASS_RATIO = 0.12         #: median m/pT of a jet constituent (typical R = 0.4 light jets)
JET_MASS_SPREAD = 0.35        #: σ of log(m/pT)
DELTA_R_MIN = 0.4             #: jet radius, jet–jet and jet–muon separation
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


def _artanh_dphi(phi: np.ndarray, reference: np.ndarray) -> np.ndarray:
    delta = wrap_phi(phi - reference - np.pi) / np.pi
    return np.arctanh(np.clip(delta, -_DPHI_CLIP, _DPHI_CLIP))


def _phi_from_artanh(feature: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return wrap_phi(reference + np.pi + np.pi * np.tanh(feature))


def _delta_r(eta_a, phi_a, eta_b, phi_b):
    return np.hypot(eta_a - eta_b, wrap_phi(phi_a - phi_b))


def _with_mass(partons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Constituents ``(n, k, 4)``: the massless partons given a mass m = pT·r at fixed p⃗."""
    pt = np.hypot(partons[..., 0], partons[..., 1])
    mass = pt * np.exp(np.log(JET_MASS_RATIO) + JET_MASS_SPREAD * rng.standard_normal(pt.shape))
    p2 = np.sum(partons[..., :3] ** 2, axis=-1)
    out = partons.copy()
    out[..., 3] = np.where(pt > 0, np.sqrt(p2 + mass * mass), 0.0)
    return out


def cluster(constituents: np.ndarray) -> np.ndarray:
    """Jets ``(n, k, 4)`` (four-momenta, absent slots 0, leading p_T first) from constituents
    ``(n, k, 4)``: in order of decreasing p_T each joins the first jet within ΔR < DELTA_R_MIN,
    repeated until no two jets are closer."""
    jets = constituents.copy()
    while True:
        pt, eta, phi = pt_eta_phi(np.where(jets[..., 3:] > 0, jets, [1.0, 0.0, 0.0, 1.0]))
        present = jets[..., 3] > 0
        order = np.argsort(-np.where(present, pt, -1.0), axis=1, kind="stable")
        jets = np.take_along_axis(jets, order[..., None], axis=1)
        present, eta, phi = (np.take_along_axis(a, order, axis=1) for a in (present, eta, phi))
        merged_any = False
        k = jets.shape[1]
        for i in range(1, k):
            for j in range(i):
                close = present[:, i] & present[:, j] & (_delta_r(eta[:, i], phi[:, i], eta[:, j], phi[:, j]) < DELTA_R_MIN)
                if close.any():
                    jets[close, j] += jets[close, i]
                    jets[close, i] = 0.0
                    present[close, i] = False
                    merged_any = True
        if not merged_any:
            return jets


class ZMuMuJets(DrellYan):
    """Z/γ* → μ⁺μ⁻ + 1–3 jets at 13 TeV: jets from the shower the Z recoils against."""

    name = "z_mumu_jets"
    description = ("Z/gamma* -> mu+ mu- + 1-3 jets at 13 TeV (embedded LO+shower MC, 9/13/17 features, "
                   "conditioned on the jet multiplicity)")
    lepton, lepton_mass, pt_min, eta_max = "mu", MUON_MASS, PT_MIN, ETA_MAX
    initial_efficiency = 0.05
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
    keep_partons = PARTONS_KEPT

    def true_jets(self, truth: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Clustered true jets ``(n, PARTONS_KEPT, 4)`` as (pT, η, φ, m), absent slots 0."""
        jets = cluster(_with_mass(truth["partons"], rng))
        present = jets[..., 3] > 0
        pt, eta, phi = pt_eta_phi(np.where(present[..., None], jets, [1.0, 0.0, 0.0, 1.0]))
        mass = np.sqrt(np.maximum(jets[..., 3] ** 2 - np.sum(jets[..., :3] ** 2, axis=-1), 0.0))
        return np.where(present[..., None], np.stack([pt, eta, phi, mass], axis=-1), 0.0)

    def reconstruct_jets(self, jets: np.ndarray, muons: np.ndarray,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Smeared jets ``(n, k, 4)`` that pass pT > JET_PT_MIN, |η| < JET_ETA_MAX and lie
        ΔR ≥ DELTA_R_MIN from both ``muons`` ``(n, 6)``, pT-ordered (absent slots 0), and their
        number."""
        present = jets[..., 0] > 0
        safe_pt = np.where(present, jets[..., 0], 1.0)
        scale = 1.0 + jet_resolution(safe_pt) * rng.standard_normal(safe_pt.shape)
        smeared = jets.copy()
        smeared[..., 0] *= scale
        smeared[..., 3] *= scale
        kept = present & (smeared[..., 0] > JET_PT_MIN) & (np.abs(smeared[..., 1]) < JET_ETA_MAX)
        for eta, phi in ((muons[:, 1], muons[:, 2]), (muons[:, 4], muons[:, 5])):
            kept &= _delta_r(smeared[..., 1], smeared[..., 2], eta[:, None], phi[:, None]) >= DELTA_R_MIN
        order = np.argsort(-np.where(kept, smeared[..., 0], -np.inf), axis=1, kind="stable")
        smeared = np.take_along_axis(np.where(kept[..., None], smeared, 0.0), order[..., None], axis=1)
        return smeared, kept.sum(axis=1)

    def detector(self, truth: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Accepted events ``(m, 19)``: muons as in z_mumu, 1 to MAX_JETS jets."""
        muons, keep = self.reconstruct_leptons(truth, rng)
        reco, n_jets = self.reconstruct_jets(self.true_jets(truth, rng), muons, rng)
        keep &= (n_jets > 0) & (n_jets <= MAX_JETS)
        return np.concatenate([muons[keep], n_jets[keep, None].astype(np.float64),
                               reco[keep, :MAX_JETS].reshape(-1, 4 * MAX_JETS)], axis=1)

    @staticmethod
    def separated(jets: np.ndarray, present: np.ndarray, muons: np.ndarray) -> np.ndarray:
        """Events ``(n,)`` whose present jets ``(n, MAX_JETS, 4)`` lie ΔR ≥ DELTA_R_MIN from each
        other and from both ``muons`` ``(n, 6)``."""
        eta, phi = jets[..., 1], jets[..., 2]
        close = np.zeros(present.shape, dtype=bool)
        for muon_eta, muon_phi in ((muons[:, 1], muons[:, 2]), (muons[:, 4], muons[:, 5])):
            close |= _delta_r(eta, phi, muon_eta[:, None], muon_phi[:, None]) < DELTA_R_MIN
        pair = _delta_r(eta[:, :, None], phi[:, :, None], eta[:, None, :], phi[:, None, :]) < DELTA_R_MIN
        pair &= present[:, :, None] & present[:, None, :] & ~np.eye(MAX_JETS, dtype=bool)
        return ~((close & present).any(axis=1) | pair.any(axis=(1, 2)))

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
              & physical_objects(pt, eta, phi, mass, SQRT_S))
        if selection:
            with np.errstate(invalid="ignore"):
                jet_ok = ~present | ((jets[..., 0] > JET_PT_MIN) & (np.abs(jets[..., 1]) < JET_ETA_MAX))
                ok &= ((n_jets >= 1) & jet_ok.all(axis=1) & (jets[:, 1:, 0] <= jets[:, :-1, 0]).all(axis=1)
                       & self.separated(jets, present, ev[:, :_N_MUON_COLUMNS]))
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
        """``(n, 17)`` and the one-hot multiplicity → ``(n, 19)``; φ_μ1 uniform from ``rng``, the
        muons in pT order (see :meth:`DrellYan.lepton_pair`)."""
        f = np.asarray(features, dtype=np.float64)
        muons = self.lepton_pair(f[:, :5], rng)   # the jets' φ refer to this first muon
        n_jets = 1 + np.argmax(conditions, axis=1)
        j = f[:, 5:].reshape(-1, MAX_JETS, 4)
        jets = np.stack([JET_PT_MIN + np.exp(j[..., 0]), j[..., 1],
                         _phi_from_artanh(j[..., 2], muons[:, 2:3]), np.maximum(np.expm1(j[..., 3]), 0.0)], axis=-1)
        present = np.arange(MAX_JETS) < n_jets[:, None]
        jets = np.where(present[..., None], jets, 0.0).reshape(len(f), -1)
        return pt_ordered(np.concatenate([muons, n_jets[:, None].astype(np.float64), jets], axis=1), 0, 3)

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
