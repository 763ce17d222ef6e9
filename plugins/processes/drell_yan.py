"""Embedded Drell–Yan pp → γ*/Z → ℓ⁺ℓ⁻ (+ ISR, + QED FSR) at √s = 13 TeV (vectorised NumPy).

Generation chain per event (GeV, radians, φ in (-π, π]; units and conventions of
:mod:`.lorentz`):

1. Born (:mod:`.luminosity`): q q̄ → γ*/Z → ℓ⁻ℓ⁺ at leading order for q = d u s c b with the
   full γ*/Z propagators and interference (:mod:`.electroweak`), GRV94 LO parton densities
   (:mod:`.pdf`) at μ_F = M, M in [m_low, m_high] (default 50–1000 GeV); gives M, y, the
   flavours and momentum fractions of the incoming partons, and cosθ* of the ℓ⁻ against the
   incoming quark, whose beam is drawn from the densities (so A_FB(M, y) and its dilution
   follow from the physics).
2. Initial-state QCD radiation (:mod:`.isr`): p_T-ordered backward evolution with running α_s,
   q → qg, g → qq̄ (and g → gg, q → gq once a leg has become a gluon), the O(α_s) matrix
   elements q q̄ → Zg and q g → Zq for the hardest emission, primordial k_⊥; the dilepton
   system recoils against the emissions.
3. Decay in the Collins–Soper frame of the recoiling system: z axis bisecting beam 1 and −beam 2
   in its rest frame, y ∝ beam 1 × beam 2, x = y × z; the ℓ⁻ at polar angle θ with
   cosθ = ±cosθ* (+ when the quark came from beam 1), φ uniform (the angular coefficients that
   ISR adds at O(α_s), A₀ … A₃, are not modelled).
4. Final-state QED radiation off both leptons (:mod:`.qed_fsr`), collinear with the lepton-mass
   logarithm, so M_ℓℓ has a radiative tail below the pole.
5. Detector (per subclass): the reconstructed lepton is the bare lepton, or the lepton plus the
   photons within ΔR < ``dress_cone`` (a calorimeter's view); Gaussian p_T smearing with
   σ/p_T = :meth:`DrellYan.relative_resolution`; acceptance p_T > pt_min, |η| < eta_max and
   |η| outside ``eta_crack`` on both leptons.

Event columns ``{l}1_pt, {l}1_eta, {l}1_phi, {l}2_pt, {l}2_eta, {l}2_phi`` (float64, lepton 1 =
leading pT). Features (5), chosen by the option ``features``:

* ``"mass"`` (default): u₁, η₁, asinh((M_ℓℓ − M_Z)/Γ_Z), η₂, asinh(δ/DELTA_WIDTH), with the
  pair mass in place of pT₂ (:mod:`.pair_mass`), so the Z peak is one coordinate, u₁ the logit
  of pT₁ within the window that pT order and the pT threshold leave it
  (:class:`.pair_mass.LeadingPtMap`), and δ (narrow about 0, tails to ±π) mapped like the mass
  (option ``delta_coordinate``: ``asinh``, or ``half_angle``, asinh(tan(δ/2)/(DELTA_WIDTH/2)),
  which moves δ = ±π, where the density is not zero, to ±∞);
* ``"leptons"``: log pT₁, η₁, log pT₂, η₂, artanh(δ/π);

each η by default as 2 artanh(η/η_max) (:class:`.pair_mass.EdgeMap`), so the acceptance's walls
lie at ±∞, and with ``mass`` features η₂ as the logit within the window that the acceptance and
the pT threshold leave it given η₁, M_ℓℓ and δ (:class:`.pair_mass.PartnerEtaMap`), so that the
wall |Δη| = Δη_max(M_ℓℓ, δ), where both leptons reach the threshold, lies at ±∞ too (option
``eta_coordinate``: ``window``, ``logit`` or ``eta``); δ = wrap(φ₂ − φ₁ − π) (rad); the global
φ is re-drawn uniformly on the way back, and a pair the network labels against the pT order is
relabelled (:func:`.pair_mass.pt_ordered`).
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from bayesgen.core.errors import ConfigError
from bayesgen.core.kinematics import dilepton_observables, wrap_phi
from bayesgen.core.process import Binning, Process, physical_objects, sample_accepted
from bayesgen.plugins.processes import isr, qed_fsr
from bayesgen.plugins.processes.electroweak import GAMMA_Z, M_Z
from bayesgen.plugins.processes.lorentz import pt_eta_phi
from bayesgen.plugins.processes.luminosity import SQRT_S, drell_yan_born
from bayesgen.plugins.processes.pair_mass import (DEFAULT_ETA_COORDINATE, DELTA_COORDINATES, ETA_COORDINATES,
                                                   FEATURE_MAPS, AsinhMap, EdgeMap, HalfAngleMap, LeadingPtMap,
                                                   PartnerEtaMap, check_feature_map, opening, pair_mass, partner_pt,
                                                   pt_ordered)

__all__ = ["SQRT_S", "M_Z", "GAMMA_Z", "M_LOW", "M_HIGH", "DrellYan", "generate_truth", "sigma_pb",
           "collins_soper_axes", "decay"]

M_LOW, M_HIGH = 50.0, 1000.0   #: default generated dilepton-mass window (GeV)
N_DILEPTON_FEATURES = 5
MASS_MAP = AsinhMap(M_Z, GAMMA_Z)   #: the pair mass's coordinate in the ``mass`` features (GeV)
DELTA_WIDTH = 0.1                  #: rad; the width of δ's peak in its ``mass``-feature coordinate
#: δ's coordinate in the ``mass`` features, by ``delta_coordinate``
DELTA_MAPS = {"asinh": AsinhMap(0.0, DELTA_WIDTH), "half_angle": HalfAngleMap(DELTA_WIDTH)}
#: events generated together (keeps the shower's arrays in cache); the largest batch of DrellYan.sample
CHUNK = 50_000

_DPHI_CLIP = 1.0 - 1e-7


def collins_soper_axes(system: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collins–Soper axes of ``system`` ``(n, 4)`` as lab four-vectors ``(n, 4)`` each: spacelike,
    unit (X² = −1), orthogonal to the system, so that in its rest frame they are the unit axes.
    With beam momenta p₁ = (0, 0, 1, 1), p₂ = (0, 0, −1, 1), A = P·p₁, B = P·p₂ (AB = m_T²):
    Z = (B p₁ − A p₂)/(2√(AB)) bisects beam 1 and −beam 2; Y = (P_y, −P_x, 0, 0)/Q_T is
    ∝ beam 1 × beam 2; X = Y × Z = −(P_x m_T/(M Q_T), P_y m_T/(M Q_T), P_z Q_T/(M m_T),
    E Q_T/(M m_T)), the form of (M√B/(2Q_T√A))(p₁ + (A/B)p₂ − (2A/M²)P) without its
    cancellation at small Q_T."""
    px, py, pz, e = system[:, 0], system[:, 1], system[:, 2], system[:, 3]
    m_t2 = e * e - pz * pz
    m_t = np.sqrt(m_t2)
    q_t = np.maximum(np.hypot(px, py), 1e-12)
    mass = np.sqrt(np.maximum(m_t2 - q_t * q_t, 0.0))
    zero = np.zeros(len(system))
    z_axis = np.stack([zero, zero, e / m_t, pz / m_t], axis=1)
    y_axis = np.stack([py / q_t, -px / q_t, zero, zero], axis=1)
    transverse, longitudinal = m_t / (mass * q_t), q_t / (mass * m_t)
    x_axis = -np.stack([px * transverse, py * transverse, pz * longitudinal, e * longitudinal], axis=1)
    return x_axis, y_axis, z_axis


def decay(system: np.ndarray, cos_theta: np.ndarray, rng: np.random.Generator,
          lepton_mass: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ℓ⁻, ℓ⁺ lab four-momenta ``(n, 4)`` of the two-body decay of ``system`` with the ℓ⁻ at
    Collins–Soper polar angle arccos(``cos_theta``) (z axis towards beam 1) and uniform φ_CS:
    ℓ∓ = P/2 ± p* D, D = sinθ cosφ X + sinθ sinφ Y + cosθ Z; also returns φ_CS."""
    mass2 = system[:, 3] ** 2 - np.sum(system[:, :3] ** 2, axis=1)
    phi = rng.uniform(-np.pi, np.pi, len(system))
    sin = np.sqrt(np.maximum(1.0 - cos_theta * cos_theta, 0.0))
    x, y, z = collins_soper_axes(system)
    p_star = np.sqrt(np.maximum(0.25 * mass2 - lepton_mass**2, 0.0))
    direction = (p_star * sin * np.cos(phi))[:, None] * x + (p_star * sin * np.sin(phi))[:, None] * y \
        + (p_star * cos_theta)[:, None] * z
    half = 0.5 * system
    return half + direction, half - direction, phi


def _truth_chunk(n: int, rng: np.random.Generator, lepton: str, lepton_mass: float, m_low: float,
                 m_high: float, keep_partons: int) -> dict[str, np.ndarray]:
    born = drell_yan_born(m_low, m_high).sample(n, rng)
    shower = isr.shower(born["x"], born["flavour"], rng, me=isr.VECTOR, keep=keep_partons)
    system = shower.final_state
    minus, plus, phi_cs = decay(system, born["cos_theta_beam"], rng, lepton_mass)
    fsr = qed_fsr.radiate(minus, plus, lepton_mass, rng)
    truth = {"system": system, f"{lepton}_minus": fsr.minus, f"{lepton}_plus": fsr.plus,
             "photons": fsr.photons, "n_photons": fsr.n_photons,
             "photon_z": fsr.z, "photon_emitter": fsr.emitter, "phi_cs": phi_cs, "n_emissions": shower.n_emissions,
             "first_rho": shower.first_rho, **born}
    if keep_partons:
        truth["partons"] = shower.partons
    return truth


def generate_truth(n: int, rng: np.random.Generator, lepton: str, lepton_mass: float,
                   m_low: float = M_LOW, m_high: float = M_HIGH, keep_partons: int = 0) -> dict[str, np.ndarray]:
    """``n`` events before the detector, as arrays over events (four-momenta ``(n, 4)``, lab):

    ``system`` (the recoiling γ*/Z), ``{lepton}_minus``, ``{lepton}_plus`` (after FSR),
    ``photons`` ``(n, MAX_PHOTONS, 4)`` and ``n_photons``, ``photon_z`` and ``photon_emitter``
    (per photon: z of the splitting, 0 for ℓ⁻ / 1 for ℓ⁺, −1 absent), ``phi_cs``,
    ``n_emissions`` and ``first_rho`` of the ISR, the Born ``mass``, ``y``, ``x`` ``(n, 2)``,
    ``flavour`` ``(n, 2)``, ``quark_beam``, ``cos_theta_star``, ``cos_theta_beam``, and with
    ``keep_partons`` the first emitted ``partons`` ``(n, keep_partons, 4)``."""
    chunks = [_truth_chunk(min(CHUNK, n - start), rng, lepton, lepton_mass, m_low, m_high, keep_partons)
              for start in range(0, max(n, 1), CHUNK)]
    if len(chunks) == 1:
        return chunks[0]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def sigma_pb(m_low: float = M_LOW, m_high: float = M_HIGH) -> float:
    """LO σ(pp → γ*/Z → ℓ⁺ℓ⁻) in pb for one lepton flavour, m_low < M_ℓℓ < m_high (Born level)."""
    return drell_yan_born(m_low, m_high).sigma_pb()


# --- naming helpers for subclasses ------------------------------------------------------------

def dilepton_quantities(lep: str) -> tuple[str, ...]:
    """Event columns ``{lep}1_pt … {lep}2_phi``."""
    return tuple(f"{lep}{i}_{v}" for i in (1, 2) for v in ("pt", "eta", "phi"))


def dilepton_feature_names(lep: str, features: str = FEATURE_MAPS[0], eta_coordinate: str | None = None,
                           delta_coordinate: str = DELTA_COORDINATES[0]) -> tuple[str, ...]:
    """Names of the five dilepton features of the map ``features`` (see :data:`FEATURE_MAPS`)
    with η as ``eta_coordinate`` (by default the map's, :data:`DEFAULT_ETA_COORDINATE`) and,
    with ``mass`` features, δ as ``delta_coordinate`` give them."""
    eta_coordinate = eta_coordinate or DEFAULT_ETA_COORDINATE[features]
    eta = "" if eta_coordinate == "eta" else "logit_"
    if features == "mass":
        partner = "window_" if eta_coordinate == "window" else eta
        delta = "asinh_dphi" if delta_coordinate == "asinh" else "asinh_tan_half_dphi"
        return (f"log_{lep}1_pt", f"{eta}{lep}1_eta", f"asinh_m_{lep}{lep}", f"{partner}{lep}2_eta", delta)
    return (f"log_{lep}1_pt", f"{eta}{lep}1_eta", f"log_{lep}2_pt", f"{eta}{lep}2_eta", "artanh_dphi")


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
    b[f"m_{pair}"] = Binning(60.0, 120.0, 120, rf"$M_{{{ptex}}}$ [GeV]")
    b[f"pt_{pair}"] = Binning(0.0, 100.0, 50, rf"$p_{{T,{ptex}}}$ [GeV]")
    b[f"y_{pair}"] = Binning(-2.4, 2.4, 24, rf"$y_{{{ptex}}}$")
    b[f"dphi_{pair}"] = Binning(0.0, np.pi, 32, rf"$\Delta\phi_{{{ptex}}}$ [rad]")
    b[f"dr_{pair}"] = Binning(0.0, 6.0, 30, rf"$\Delta R_{{{ptex}}}$")
    return b


class DrellYan(Process):
    """Drell–Yan γ*/Z → ℓ⁺ℓ⁻ with lepton reconstruction, smearing and acceptance (abstract over
    the lepton).

    Subclasses set ``lepton`` (column prefix), ``lepton_mass``, ``pt_min``, ``eta_max``,
    optionally ``eta_crack = (lo, hi)`` (rejected |η| band) and ``dress_cone`` (default ΔR of
    the photons added to a reconstructed lepton; 0 = bare), the usual :class:`Process`
    attributes (see :func:`dilepton_quantities` and friends) and :meth:`relative_resolution`.
    Options: ``m_low``, ``m_high`` (generated M_ℓℓ window, GeV), ``dress_cone``, ``features``
    (the network's feature map, one of :data:`FEATURE_MAPS`; a subclass's own features follow
    the first N_DILEPTON_FEATURES), ``eta_coordinate`` (one of :data:`ETA_COORDINATES`; by
    default the feature map's, :data:`DEFAULT_ETA_COORDINATE`: with ``mass`` η₂ in its window,
    :class:`.pair_mass.PartnerEtaMap`, with ``leptons`` each η as the logit within ±eta_max),
    ``delta_coordinate`` (``mass`` features only; one of :data:`DELTA_COORDINATES`).
    """

    lepton: str
    lepton_mass: float
    pt_min: float
    eta_max: float
    eta_crack: tuple[float, float] | None = None
    dress_cone: float = 0.0
    sqrt_s = SQRT_S
    keep_partons = 0               #: emitted partons kept in the truth (for jets)
    initial_efficiency = 0.4       #: first guess of the acceptance, sizes the first batch

    def __init__(self, m_low: float = M_LOW, m_high: float = M_HIGH, dress_cone: float | None = None,
                 features: str = FEATURE_MAPS[0], eta_coordinate: str | None = None,
                 delta_coordinate: str | None = None):
        self.features = check_feature_map(features)
        eta_coordinate = eta_coordinate or DEFAULT_ETA_COORDINATE[self.features]
        self.eta_coordinate = check_feature_map(eta_coordinate, "eta_coordinate", ETA_COORDINATES)
        if eta_coordinate == "window" and features != "mass":
            raise ConfigError(f"eta_coordinate = 'window' places η₂ by the pair's mass: it needs features = 'mass', "
                              f"got {features!r}")
        if delta_coordinate is not None and features != "mass":
            raise ConfigError(f"delta_coordinate sets δ's coordinate in the 'mass' features; with {features!r} "
                              "δ is artanh(δ/π), unbounded already")
        self.delta_coordinate = check_feature_map(delta_coordinate or DELTA_COORDINATES[0], "delta_coordinate",
                                                  DELTA_COORDINATES)
        self.feature_names = (*dilepton_feature_names(self.lepton, features, eta_coordinate, self.delta_coordinate),
                              *type(self).feature_names[N_DILEPTON_FEATURES:])
        if not 0.0 < m_low < m_high < SQRT_S:
            raise ConfigError(f"need 0 < m_low < m_high < {SQRT_S:g} GeV, got m_low={m_low}, m_high={m_high}")
        if dress_cone is not None and not 0.0 <= dress_cone < 1.0:
            raise ConfigError(f"dress_cone must be in [0, 1), got {dress_cone}")
        self.m_low, self.m_high = float(m_low), float(m_high)
        if dress_cone is not None:
            self.dress_cone = float(dress_cone)

    def portable_options(self, options: dict) -> dict:
        """The options with the feature map made explicit, so a run keeps its map when the
        default changes."""
        mapped = {"features": self.features, "eta_coordinate": self.eta_coordinate}
        if self.features == "mass":
            mapped["delta_coordinate"] = self.delta_coordinate
        return {**options, **mapped}

    def sigma_pb(self) -> float:
        """LO cross-section of the generated process (before the detector), pb."""
        return sigma_pb(self.m_low, self.m_high)

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

    def generate_truth(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """See :func:`generate_truth`."""
        return generate_truth(n, rng, self.lepton, self.lepton_mass, self.m_low, self.m_high, self.keep_partons)

    def lepton_momenta(self, truth: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The reconstructed ℓ⁻, ℓ⁺ four-momenta ``(n, 4)`` before smearing: bare, or with the
        photons within ΔR < ``dress_cone`` of the nearer lepton added."""
        leptons = [truth[f"{self.lepton}_minus"].copy(), truth[f"{self.lepton}_plus"].copy()]
        if self.dress_cone <= 0.0:
            return leptons
        event, slot = np.nonzero(truth["photons"][..., 3] > 0)
        photons = truth["photons"][event, slot]
        _, eta_g, phi_g = pt_eta_phi(photons)
        distances = []
        for lepton in leptons:
            _, eta, phi = pt_eta_phi(lepton[event])
            distances.append(np.hypot(eta_g - eta, wrap_phi(phi_g - phi)))
        nearer = distances[1] < distances[0]
        for i, lepton in enumerate(leptons):
            own = (nearer == bool(i)) & (distances[i] < self.dress_cone)
            np.add.at(lepton, event[own], photons[own])
        return leptons

    def reconstruct_leptons(self, truth: dict[str, np.ndarray],
                            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Smeared, pT-ordered leptons ``(n, 6)`` of every event and the acceptance ``(n,)``."""
        cols = []
        for momentum in self.lepton_momenta(truth):
            pt, eta, phi = pt_eta_phi(momentum)
            cols.append((self.smear_pt(pt, eta, rng), eta, phi))
        (pt_a, eta_a, phi_a), (pt_b, eta_b, phi_b) = cols
        keep = self.accepted(pt_a, eta_a) & self.accepted(pt_b, eta_b)
        a = np.stack([pt_a, eta_a, phi_a], axis=-1)
        b = np.stack([pt_b, eta_b, phi_b], axis=-1)
        lead_a = (a[:, 0] >= b[:, 0])[:, None]
        return np.concatenate([np.where(lead_a, a, b), np.where(lead_a, b, a)], axis=-1), keep

    def detector(self, truth: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Reconstruct, smear, apply acceptance, order by pT: accepted events ``(m, 6)``."""
        leptons, keep = self.reconstruct_leptons(truth, rng)
        return leptons[keep]

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` accepted events ``(n, 6)`` float64, reproducible for ``seed``."""
        return sample_accepted(n, seed, lambda batch, rng: self.detector(self.generate_truth(batch, rng), rng), 6,
                               self.initial_efficiency, CHUNK)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 6)`` → ``(n, 5)``: with ``mass`` features u₁ (the logit of pT₁ in its window), η₁,
        asinh((M_ℓℓ − M_Z)/Γ_Z), η₂, δ as :attr:`delta_map` gives it, with ``leptons`` log pT₁, η₁, log pT₂, η₂,
        artanh(δ/π) (|δ/π| clipped to 1 − 1e-7); δ = wrap(φ₂ − φ₁ − π) (≈ 0 back to back); each η as
        :attr:`eta_map` gives it."""
        ev = np.asarray(events, dtype=np.float64)
        delta = wrap_phi(ev[:, 5] - ev[:, 2] - np.pi)
        if self.features == "mass":
            o = opening(ev[:, 1], ev[:, 4], delta)
            mass = pair_mass(ev[:, 0], ev[:, 3], o)
            first = LeadingPtMap(self.pt_min).forward(ev[:, 0], mass, o)
            second, angle = MASS_MAP.forward(mass), self.delta_map.forward(delta)
        else:
            first, second = np.log(ev[:, 0]), np.log(ev[:, 3])
            angle = np.arctanh(np.clip(delta / np.pi, -_DPHI_CLIP, _DPHI_CLIP))
        eta = self.eta_map.forward(ev[:, [1, 4]]) if self.eta_map else ev[:, [1, 4]]
        if self.eta_coordinate == "window":
            eta[:, 1] = self.partner_eta_map.forward(ev[:, 4], ev[:, 1], mass, delta)
        return np.stack([first, eta[:, 0], second, eta[:, 1], angle], axis=-1)

    @property
    def eta_map(self) -> EdgeMap | None:
        """The map of each lepton's η to its feature (None: η itself); with ``window`` the
        leader's, the partner's being :attr:`partner_eta_map`."""
        return None if self.eta_coordinate == "eta" else EdgeMap(self.eta_max)

    @property
    def delta_map(self) -> AsinhMap | HalfAngleMap:
        """δ's coordinate in the ``mass`` features."""
        return DELTA_MAPS[self.delta_coordinate]

    @property
    def partner_eta_map(self) -> PartnerEtaMap:
        """The partner's η within its window, given the leader's η, M_ℓℓ and δ."""
        return PartnerEtaMap(self.pt_min, self.eta_max)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 5)`` → ``(n, 6)``, the leptons in pT order (see :meth:`lepton_pair`)."""
        return pt_ordered(self.lepton_pair(features, rng), 0, 3)

    def lepton_pair(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, 5)`` → ``(n, 6)`` as the features give them: φ₁ uniform in (-π, π] from ``rng``,
        φ₂ = wrap(φ₁ + π + δ); with ``mass`` features pT₂ follows from M_ℓℓ
        (:func:`~.pair_mass.partner_pt`). A model may put pT₂ above pT₁; :meth:`from_features`
        then swaps the two (:func:`~.pair_mass.pt_ordered`)."""
        f = np.array(features, dtype=np.float64)
        window = self.eta_coordinate == "window"
        if self.eta_map:
            edge_mapped = [1] if window else [1, 3]
            f[:, edge_mapped] = self.eta_map.inverse(f[:, edge_mapped])
        phi1 = np.pi - rng.uniform(0.0, 2.0 * np.pi, len(f))
        with np.errstate(over="ignore", invalid="ignore"):
            if self.features == "mass":
                delta, mass = self.delta_map.inverse(f[:, 4]), MASS_MAP.inverse(f[:, 2])
                if window:
                    f[:, 3] = self.partner_eta_map.inverse(f[:, 3], f[:, 1], mass, delta)
                o = opening(f[:, 1], f[:, 3], delta)
                pt1 = LeadingPtMap(self.pt_min).inverse(f[:, 0], mass, o)
                pt2 = partner_pt(mass, pt1, o)
            else:
                delta, pt1, pt2 = np.pi * np.tanh(f[:, 4]), np.exp(f[:, 0]), np.exp(f[:, 2])
            phi2 = wrap_phi(phi1 + np.pi + delta)
        return np.stack([pt1, f[:, 1], phi1, pt2, f[:, 3], phi2], axis=-1)

    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Every :attr:`binnings` key → values ``(n,)``."""
        ev = np.asarray(events, dtype=np.float64)
        obs = {q: ev[:, i] for i, q in enumerate(self.quantities)}
        pair = dilepton_observables(*ev.T, mass=self.lepton_mass)
        p = self.lepton * 2
        obs.update({f"m_{p}": pair["mll"], f"pt_{p}": pair["ptll"], f"y_{p}": pair["yll"],
                    f"dphi_{p}": pair["dphi"], f"dr_{p}": pair["dr"]})
        return obs
