"""Embedded Drell–Yan Z/γ* → μ⁺μ⁻ at √s = 13 TeV (generator: :mod:`.drell_yan`).

Detector: muons measured by tracker and spectrometer are bare (final-state photons are not
added); σ(pT)/pT = RES_CONST + RES_SLOPE·pT; acceptance pT > PT_MIN, |η| < ETA_MAX on both
muons. Event columns ``mu1_pt, mu1_eta, mu1_phi, mu2_pt, mu2_eta, mu2_phi`` (mu1 = leading pT).
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.hooks import hookimpl
from bayesgen.plugins.processes import drell_yan
from bayesgen.plugins.processes.drell_yan import (DrellYan, dilepton_binnings, dilepton_feature_names,
                                                  dilepton_quantities)

MUON_MASS = 0.1056584     #: muon mass (GeV)

# --- detector ---------------------------------------------------------------------------------
RES_CONST = 0.01              #: constant term of σ(pT)/pT
RES_SLOPE = 1e-4              #: slope of σ(pT)/pT per GeV
PT_MIN = 20.0                 #: muon pT threshold
ETA_MAX = 2.4                 #: muon |η| acceptance


def muon_resolution(pt: np.ndarray) -> np.ndarray:
    """Muon σ(pT)/pT = RES_CONST + RES_SLOPE·pT (tracker + muon system, no η dependence)."""
    return RES_CONST + RES_SLOPE * pt


def generate_truth(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` unsmeared Z → μμ events (keys ``system``, ``mu_minus``, ``mu_plus``, …), see
    :func:`bayesgen.plugins.processes.drell_yan.generate_truth`."""
    return drell_yan.generate_truth(n, rng, "mu", MUON_MASS)


class ZMuMu(DrellYan):
    """Drell–Yan Z/γ* → μ⁺μ⁻ at √s = 13 TeV with muon smearing and acceptance."""

    name = "z_mumu"
    description = "Drell-Yan Z/gamma* -> mu+ mu- at 13 TeV (embedded LO+ISR+FSR MC, 2 muons, 5 features)"
    lepton, lepton_mass, pt_min, eta_max = "mu", MUON_MASS, PT_MIN, ETA_MAX
    quantities = dilepton_quantities("mu")
    feature_names = dilepton_feature_names("mu")
    binnings = dilepton_binnings("mu", r"\mu", pt1=(20.0, 100.0, 40), pt2=(20.0, 80.0, 30),
                                 eta_max=2.4, eta_bins=24)

    def relative_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return muon_resolution(pt)


@hookimpl
def bayesgen_processes():
    return {"z_mumu": ZMuMu}
