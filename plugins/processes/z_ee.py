"""Embedded Drell–Yan Z/γ* → e⁺e⁻ at √s = 13 TeV (generator: :mod:`.drell_yan`).

Detector: an electron is reconstructed from its calorimeter cluster, so it is dressed with the
final-state photons within ΔR < DRESS_CONE (option ``dress_cone``; 0 gives bare electrons); the
calorimeter resolution σ/E = S/√E ⊕ C (S = RES_STOCHASTIC √GeV, C = RES_CONST,
⊕ = sum in quadrature) evaluated at E → pT and applied to pT (η-independent; at the Z peak
≈ 1.65 % against 1.45 % for muons); acceptance pT > PT_MIN, |η| < ETA_MAX outside the
barrel–endcap crack ETA_CRACK on both electrons.
Event columns ``e1_pt, e1_eta, e1_phi, e2_pt, e2_eta, e2_phi`` (e1 = leading pT).
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.hooks import hookimpl
from bayesgen.plugins.processes import drell_yan
from bayesgen.plugins.processes.drell_yan import (
    DrellYan, dilepton_binnings, dilepton_feature_names, dilepton_quantities)

ELECTRON_MASS = 0.51099895e-3  #: electron mass (GeV)

# --- detector ---------------------------------------------------------------------------------
RES_STOCHASTIC = 0.10          #: S of σ/E = S/√E ⊕ C (E in GeV)
RES_CONST = 0.007              #: C of σ/E = S/√E ⊕ C
PT_MIN = 25.0                  #: electron pT threshold
ETA_MAX = 2.5                  #: electron |η| acceptance
ETA_CRACK = (1.4442, 1.566)    #: rejected barrel–endcap transition in |η|
DRESS_CONE = 0.1               #: ΔR within which photons join the electron's cluster


def electron_resolution(pt: np.ndarray) -> np.ndarray:
    """σ(pT)/pT = √(S²/pT + C²)."""
    return np.sqrt(RES_STOCHASTIC**2 / pt + RES_CONST**2)


def generate_truth(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` unsmeared Z → ee events (keys ``system``, ``e_minus``, ``e_plus``, ``photons``, …)."""
    return drell_yan.generate_truth(n, rng, "e", ELECTRON_MASS)


class ZEE(DrellYan):
    """Drell–Yan Z/γ* → e⁺e⁻ at √s = 13 TeV with calorimeter smearing, acceptance and crack."""

    name = "z_ee"
    description = "Drell-Yan Z/gamma* -> e+ e- at 13 TeV (embedded LO+ISR+FSR MC, 2 electrons, 5 features)"
    lepton, lepton_mass, pt_min, eta_max = "e", ELECTRON_MASS, PT_MIN, ETA_MAX
    eta_crack = ETA_CRACK
    dress_cone = DRESS_CONE
    initial_efficiency = 0.45
    quantities = dilepton_quantities("e")
    feature_names = dilepton_feature_names("e")
    binnings = dilepton_binnings("e", "e", pt1=(25.0, 100.0, 30), pt2=(25.0, 75.0, 25),
                                 eta_max=2.5, eta_bins=25)

    def relative_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return electron_resolution(pt)


@hookimpl
def bayesgen_processes():
    return {"z_ee": ZEE}
