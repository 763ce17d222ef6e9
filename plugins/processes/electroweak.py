"""Electroweak inputs and the leading-order q q̄ → γ*/Z → ℓ⁻ℓ⁺ partonic cross-section.

Couplings of fermion f to the Z: g_V = T₃ − 2Q sin²θ_W, g_A = T₃; with the running-width
propagator ratio χ(ŝ) = κ ŝ/(ŝ − M_Z² + i ŝΓ_Z/M_Z), κ = 1/(4 sin²θ_W cos²θ_W),

    dσ̂/dcosθ* = (πα²/2ŝ)(1/N_c) [S(ŝ)(1 + cos²θ*) + 2A(ŝ) cosθ*],
    S = Q_q²Q_ℓ² + 2Q_qQ_ℓ g_V^q g_V^ℓ Re χ + (g_V^q² + g_A^q²)(g_V^ℓ² + g_A^ℓ²)|χ|²,
    A = 2Q_qQ_ℓ g_A^q g_A^ℓ Re χ + 4 g_V^q g_A^q g_V^ℓ g_A^ℓ |χ|²,

θ* the angle between the incoming quark and the ℓ⁻ in the dilepton rest frame; hence
σ̂ = 4πα²S/(3N_cŝ) and the partonic forward–backward asymmetry A_FB = 3A/(4S). Inputs (PDG):
M_Z, Γ_Z, the effective leptonic weak mixing angle; α at M_Z, held fixed.
"""
from __future__ import annotations

import numpy as np

M_Z = 91.1876              #: Z pole mass (GeV)
GAMMA_Z = 2.4952           #: Z total width (GeV)
SIN2_THETA_W = 0.23122     #: effective weak mixing angle sin²θ_eff (PDG)
ALPHA_EM = 1.0 / 128.9     #: α(M_Z), fixed for all dilepton masses
N_C = 3                    #: quark colours
GEV2_TO_PB = 0.3893794e9   #: (ħc)² in pb GeV²

#: (charge, T₃) of the charged lepton and of up- and down-type quarks
LEPTON = (-1.0, -0.5)
UP = (2.0 / 3.0, 0.5)
DOWN = (-1.0 / 3.0, -0.5)


def couplings(fermion: tuple[float, float], sin2: float = SIN2_THETA_W) -> tuple[float, float]:
    """(g_V, g_A) = (T₃ − 2Q sin²θ_W, T₃) of a fermion given as (Q, T₃)."""
    charge, t3 = fermion
    return t3 - 2.0 * charge * sin2, t3


def propagator(s_hat: np.ndarray, sin2: float = SIN2_THETA_W) -> tuple[np.ndarray, np.ndarray]:
    """(Re χ, |χ|²) of the Z relative to the photon at ŝ (running width)."""
    kappa = 1.0 / (4.0 * sin2 * (1.0 - sin2))
    re_den = s_hat - M_Z**2
    im_den = s_hat * GAMMA_Z / M_Z
    den = re_den * re_den + im_den * im_den
    return kappa * s_hat * re_den / den, kappa * kappa * s_hat * s_hat / den


def angular_coefficients(s_hat: np.ndarray, quark: tuple[float, float],
                         sin2: float = SIN2_THETA_W) -> tuple[np.ndarray, np.ndarray]:
    """(S, A) of the module docstring for quark type ``quark`` (:data:`UP` or :data:`DOWN`)."""
    re_chi, abs2_chi = propagator(s_hat, sin2)
    (qq, _), (ql, _) = quark, LEPTON
    vq, aq = couplings(quark, sin2)
    vl, al = couplings(LEPTON, sin2)
    sym = (qq * qq * ql * ql + 2.0 * qq * ql * vq * vl * re_chi
           + (vq * vq + aq * aq) * (vl * vl + al * al) * abs2_chi)
    anti = 2.0 * qq * ql * aq * al * re_chi + 4.0 * vq * aq * vl * al * abs2_chi
    return sym, anti


def sigma_hat_pb(s_hat: np.ndarray, quark: tuple[float, float]) -> np.ndarray:
    """σ̂(q q̄ → γ*/Z → ℓ⁺ℓ⁻) in pb at ŝ, averaged over quark colours."""
    sym, _ = angular_coefficients(s_hat, quark)
    return 4.0 * np.pi * ALPHA_EM**2 * sym / (3.0 * N_C * s_hat) * GEV2_TO_PB


def forward_backward(s_hat: np.ndarray, quark: tuple[float, float]) -> np.ndarray:
    """Partonic A_FB = 3A/(4S) at ŝ: the asymmetry of cosθ* about the quark direction."""
    sym, anti = angular_coefficients(s_hat, quark)
    return 0.75 * anti / sym
