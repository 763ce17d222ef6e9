"""Initial-state QCD radiation: a p_T-ordered backward-evolution parton shower on arrays.

The model is the p_T-ordered initial-state shower of Sjöstrand & Skands (Eur. Phys. J. C39
(2005) 129) with the first-emission matrix-element corrections of Miu & Sjöstrand (Phys. Lett.
B449 (1999) 313), reduced to what a colour-singlet final state (γ*/Z, H) needs, and run for all
events at once with the veto algorithm.

Evolution. Starting from a Born configuration (momentum fractions x₁, x₂ of the partons from
beams 1 (+z) and 2 (−z), flavours, ŝ = x₁x₂s), each incoming parton is evolved backwards in the
scale ρ = p²_⊥,evol = (1 − z)Q², Q² = −t the virtuality of the space-like parton, with

    dP = (α_s(ρ̃)/2π) (dρ/ρ) ρ²/ρ̃² dz P_{a←b}(z) · x′f_b(x′, ρ̃) / (x f_a(x, ρ̃)),
    x′ = x/z,  ρ̃ = ρ + ρ₀,

for the branchings q ← q (gluon emitted, P = C_F(1 + z²)/(1 − z)), q ← g (antiquark emitted,
P = T_R(z² + (1 − z)²)), g ← g (P = 2C_A[z/(1 − z) + (1 − z)/z + z(1 − z)]) and g ← q (quark
emitted, P = C_F(1 + (1 − z)²)/z), x′f from :mod:`.pdf`, one-loop running
α_s(μ²) = 1/(b₀ ln(μ²/Λ²)), b₀ = (33 − 2n_f)/12π, n_f = 5, and the soft region regularised as in
PYTHIA 8: α_s and the densities at ρ̃ = ρ + ρ₀, the rate damped by ρ²/ρ̃² (ρ₀ = RHO_0).
Emissions are ordered in ρ from the kinematic maximum down to RHO_MIN. The veto algorithm draws
trial scales ρ̃ from an overestimate that is constant within bands of ρ̃ (BAND_EDGES), with
three channels per leg (:class:`_Tables`): the flavour-keeping branching's 1/(1 − z) end
(P ≤ 2C/(1 − z) times a bound on the density ratio), and two ∝ dz/z · x′f(x′)/x f(x) channels
that draw x′ from an upper envelope of the new parton's density (gluon: q ← g and the 1/z end
of g ← g; Σ quarks: g ← q), P_gg being split into its two soft ends. A trial is kept with the
ratio of true to overestimated density. Heavy-quark legs (c, b) stop evolving at
HEAVY_FACTOR × their threshold in the GRV94 densities.

Kinematics (Catani–Seymour initial–initial dipole, the recoil taken by the whole final state):
a branching on leg a at (ρ, z) with spectator b of the current system ŝ gives p_a → p_a/z,
ŝ → ŝ/z, v = ρz/((1 − z)ŝ) ≤ 1 − z, the emitted parton k = α p_a + β p_b + k_⊥ with
α = x_a(1 − z − v)/z, β = v x_b, k_⊥² = v(1 − z − v)ŝ/z, φ uniform, and every final-state
momentum (boson, earlier emissions) transformed by the Λ mapping p_a + p_b onto p_a/z + p_b − k
(:func:`.lorentz.map_momenta`). So t̂ = −ρ/(1 − z) is the invariant of the emission with the
parton it came from and û = M² − ŝ/z − t̂.

Matrix-element correction. The first emission starts at the kinematic limit ("power shower")
and is reweighted to the exact O(α_s) matrix element of the process summed over both legs:
for a vector boson (q q̄ → V g, q g → V q)
    R_qq̄ = (t̂² + û² + 2M²ŝ)/(ŝ² + M⁴) ≤ 1,   R_qg = (ŝ² + t̂² + 2M²û)/((ŝ − M²)² + M⁴) ≤ 2.62,
for a scalar from gluons (g g → H g, q g → H q; m_t → ∞)
    R_gg = (M⁸ + ŝ⁴ + t̂⁴ + û⁴)/(M⁸ + ŝ⁴ + (ŝ − M²)⁴) ≤ 1,   R_gq = (ŝ² + û²)/(ŝ² + (ŝ − M²)²) ≤ 1,
with ŝ the new partonic energy. Later emissions are plain shower. The q ← g overestimate of a
vector boson's first emission is raised to cover P_qg R_qg, by the largest
(z² + (1 − z)²) R_qg within the band's ρ (:func:`qg_enhancement`; ≤ 2, → 1 for ρ ≪ M²).

Primordial k_⊥: at the end each incoming parton receives a Gaussian transverse momentum of
width PRIMORDIAL_KT per component; the final state takes the recoil (boost at fixed mass and
rapidity). Parameters and their origin are documented at their definitions.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bayesgen.plugins.processes import pdf
from bayesgen.plugins.processes.lorentz import map_momenta, transverse_kick
from bayesgen.plugins.processes.luminosity import E_BEAM, SQRT_S

C_F, C_A, T_R = 4.0 / 3.0, 3.0, 0.5
N_F = 5
B0 = (33.0 - 2.0 * N_F) / (12.0 * np.pi)
M_Z = 91.1876
#: α_s(M_Z) of the shower, one-loop running: PYTHIA 8's SpaceShower:alphaSvalue (Monash 2013
#: tune, Skands, Carrazza, Rojo, Eur. Phys. J. C74 (2014) 3024), fitted to the Z p_T spectrum.
ALPHA_S_MZ = 0.1365
LAMBDA2 = M_Z**2 * np.exp(-1.0 / (B0 * ALPHA_S_MZ))   #: one-loop Λ² ≈ (0.225 GeV)²
#: ρ₀ = p²_⊥0 of the soft regularisation (GeV²): PYTHIA 8's SpaceShower:pT0Ref = 2 GeV
#: (ecmPow = 0, so no energy scaling).
RHO_0 = 2.0**2
#: evolution cutoff in ρ (GeV²), p_⊥evol ≈ 2.8 GeV. PYTHIA 8 evolves down to 0.2 GeV
#: (SpaceShower:pTmin), but with the damping ρ/ρ̃ the emissions below 2.8 GeV move the
#: quantiles of p_T(ℓℓ) by less than 1 % (10 %, 25 %, 50 %: 3.09/5.86/12.3 GeV either way, 2×10⁵
#: events) while costing a fifth of the shower's time; the primordial k_⊥ covers that region.
RHO_MIN = 8.0
#: Gaussian width per transverse component of each incoming parton's primordial k_⊥ (GeV);
#: PYTHIA 8's BeamRemnants:primordialKThard (Monash 2013).
PRIMORDIAL_KT = 1.8
#: heavy-quark legs stop at this multiple of the GRV94 threshold Q² (where c, b densities start)
HEAVY_FACTOR = 1.5
X_CAP = 0.999                #: largest momentum fraction a backward step may reach
_MARGIN = 1.02               #: safety factor on the tabulated density bounds
_COMPACT = 0.25              #: drop finished events once they are this fraction of the rest
VECTOR, SCALAR = "vector", "scalar"

#: lower edges in ρ̃ = ρ + ρ₀ (GeV²) of the bands within which the overestimate is constant
BAND_EDGES = np.array([RHO_MIN + RHO_0, 40.0, 200.0, 2e3, 3e4])
#: largest damping ρ/ρ̃ (true rate over the α_s(ρ̃) dρ̃/ρ̃ overestimate) within each band
BAND_DAMPING = np.append((BAND_EDGES[1:] - RHO_0) / BAND_EDGES[1:], 1.0)
#: ρ at each band's lower edge (at least RHO_MIN), and the largest ρ within each band
BAND_RHO_LOW = np.maximum(BAND_EDGES - RHO_0, RHO_MIN)
BAND_RHO_TOP = np.append(BAND_EDGES[1:] - RHO_0, SQRT_S**2)
BAND_LOG_LOG = np.log(np.log(BAND_EDGES / LAMBDA2))   #: ln ln(ρ̃/Λ²) at each band's lower edge
#: P/overestimate of each channel as a cubic in z, coefficient of z^k in row k; column
#: slot + 3·(leg is a gluon): q ← q (1 + z²)/2, q ← g z² + (1 − z)², (unused), then the gluon's
#: 1/(1 − z) end z(1 + (1 − z)²/2), its 1/z end (1 − z)(1 + z²/2), g ← q (1 + (1 − z)²)/2
_SHAPES = np.array([[0.5, 1.0, 0.0, 0.0, 1.0, 1.0],
                    [0.0, -2.0, 0.0, 1.5, -1.0, -1.0],
                    [0.5, 2.0, 0.0, -1.0, 0.5, 0.5],
                    [0.0, 0.0, 0.0, 0.5, -0.5, 0.0]])
#: density envelopes drawn from, (column, p) for x′f(x′)/x′^p: gluon ∝ dz/z, gluon flat in z, Σq ∝ dz/z
_ENVELOPES = ((pdf.GLUON, 0), (pdf.GLUON, 1), (pdf.ALL_QUARKS, 0))
_N_LOG = 480                 #: cells of the ln x′ grid of the density envelopes
_LOG_LO, _LOG_HI = np.log(pdf.X_MIN), np.log(X_CAP)
_LOG_STEP = (_LOG_HI - _LOG_LO) / _N_LOG
_CODES = np.array([0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5])   #: signed code of each flavour index


def alpha_s(mu2: np.ndarray) -> np.ndarray:
    """One-loop α_s at scale² μ² (GeV²)."""
    return 1.0 / (B0 * np.log(mu2 / LAMBDA2))


def _heavy_thresholds() -> np.ndarray:
    s_thr = np.array([0, 0, 0, 0, pdf.S_CHARM, pdf.S_BOTTOM, 0, 0, 0, pdf.S_CHARM, pdf.S_BOTTOM])
    return np.where(s_thr > 0, HEAVY_FACTOR * pdf.scale_of(s_thr), 0.0)


#: ρ̃ below which a leg of each flavour index stops evolving (0 for g, u, d, s)
HEAVY_THRESHOLD = _heavy_thresholds()


@lru_cache(maxsize=1)
def _qg_table() -> tuple[np.ndarray, np.ndarray]:
    """ln r nodes and max of g(z, r′) = (z² + (1 − z)²) R_qg over z and r′ ≤ r (kinematic
    limit r′ ≤ (1 − z)²/z), r = ρ/M², ŝ′ = M²/z, t̂ = −ρ/(1 − z), in units of M²."""
    log_r = np.linspace(np.log(1e-7), np.log(1e3), 161)
    z = np.concatenate([np.geomspace(1e-5, 0.5, 1000), 1 - np.geomspace(0.5, 1e-7, 1000)[1:]])
    r = np.minimum(np.exp(log_r)[:, None], (1 - z) ** 2 / z)
    s, t = 1 / z, -r / (1 - z)
    u = 1 - s - t
    g = (z * z + (1 - z) ** 2) * (s * s + t * t + 2 * u) / ((s - 1) ** 2 + 1)
    return log_r, np.maximum.accumulate(np.maximum(g.max(axis=1), 1.0))


def qg_enhancement(rho_max: np.ndarray, mass2: np.ndarray) -> np.ndarray:
    """Bound on (z² + (1 − z)²) R_qg for ρ ≤ ``rho_max`` (≥ 1, at most 2), from a table
    read at the next node up."""
    log_r, bound = _qg_table()
    position = np.ceil((np.log(rho_max / mass2) - log_r[0]) * (1.0 / (log_r[1] - log_r[0])))
    return bound[np.clip(position, 0, len(log_r) - 1).astype(np.intp)] * 1.01


def z_max(rho: np.ndarray, s_hat: np.ndarray) -> np.ndarray:
    """Largest z with v ≤ 1 − z, i.e. (1 − z)² ŝ/z ≥ ρ: 1 + r/2 − √(r + r²/4), r = ρ/ŝ."""
    r = rho / s_hat
    return 1.0 + 0.5 * r - np.sqrt(r + 0.25 * r * r)


@dataclass(frozen=True)
class _Tables:
    """Bounds of the overestimate, per band b of ρ̃ (all hold for the interpolated densities of
    :mod:`.pdf` anywhere in the band, above a heavy leg's cutoff, times _MARGIN):

    * ``kept`` ``(b, 11, N_x)``: max over x′ ≥ x of x′f_a(x′)/(x f_a(x)), at x node;
    * ``floor`` ``(b, 11, N_x)``: min of x f_a(x) over the x cell and the band;
    * ``envelope`` ``(b, 3, _N_LOG)``: max of x′f_c(x′)/x′^p on each cell of a grid uniform in
      ln x′, for (c, p) in _ENVELOPES; ``above`` ``(b, 3, _N_LOG + 1)``: its integral ∫ d ln x′
      from each node up to ln X_CAP;
    * for the inverse of ``above`` (:func:`_draw_log_x`), per row r = (b, column): ``keys``
      ``(r, _N_LOG + 1)`` = −ln ``above``, increasing; ``guide`` ``(r, G)``: the last node whose
      key is ≤ the row's first key + i·``guide_step``, a step below the keys' smallest spacing,
      so that a search started there moves by at most one node (Chen & Asau's guide table).
    """

    kept: np.ndarray
    floor: np.ndarray
    envelope: np.ndarray
    above: np.ndarray
    keys: np.ndarray
    guide: np.ndarray
    guide_step: float

    @property
    def envelope_flat(self) -> np.ndarray:
        return self.envelope.reshape(-1)

    @property
    def above_flat(self) -> np.ndarray:
        return self.above.reshape(-1)


@lru_cache(maxsize=1)
def tables() -> _Tables:
    """Build the :class:`_Tables` from the density grid (a fraction of a second, once)."""
    table = pdf.lookup_table()                                     # (12, N_x, N_Q)
    log_q2 = np.log(pdf.grid_q2())
    q_lo, q_hi = table[:, :, :-1], table[:, :, 1:]                  # Q cells
    suffix = np.maximum.accumulate(table[:, ::-1, :], axis=1)[:, ::-1, :]
    num = np.maximum(suffix[:, :, 1:], suffix[:, :, :-1])
    low = np.minimum(q_lo, q_hi)
    low = np.minimum(low, np.concatenate([low[:, 1:], low[:, -1:]], axis=1))   # x cells
    # envelope grid in ln x′: the densities at its nodes and at every density-grid node inside
    log_nodes = np.linspace(_LOG_LO, _LOG_HI, _N_LOG + 1)
    grid_log_x = np.log(pdf.grid_x())
    cell_of_grid = np.floor((grid_log_x - _LOG_LO) / _LOG_STEP).astype(int)
    n_bands = len(BAND_EDGES)
    upper = np.append(BAND_EDGES[1:], np.exp(log_q2[-1]))
    kept = np.zeros((n_bands, pdf.N_FLAVOURS, table.shape[1]))
    floor = np.zeros_like(kept)
    envelope = np.zeros((n_bands, len(_ENVELOPES), _N_LOG))
    for band, (lo, hi) in enumerate(zip(BAND_EDGES, upper)):
        q_cells = (log_q2[1:] >= np.log(lo)) & (log_q2[:-1] <= np.log(hi))
        q_nodes = np.flatnonzero(np.append(q_cells, False) | np.append(False, q_cells))
        for f in range(pdf.N_FLAVOURS):
            cells = q_cells & (log_q2[1:] >= np.log(max(lo, HEAVY_THRESHOLD[f])))
            if not cells.any():
                continue
            d = low[f][:, cells]
            kept[band, f] = np.where(d > 0, num[f][:, cells] / np.where(d > 0, d, 1.0), 0.0).max(axis=1)
            floor[band, f] = d.min(axis=1)
        at_nodes = pdf.GridPosition(np.exp(log_nodes)[:, None].repeat(q_nodes.size, 1),
                                    np.broadcast_to(log_q2[q_nodes], (_N_LOG + 1, q_nodes.size)))
        inside = (cell_of_grid >= 0) & (cell_of_grid < _N_LOG)
        for k, (column, power) in enumerate(_ENVELOPES):
            values = at_nodes.values(column).max(axis=1)
            cell_max = np.maximum(values[:-1], values[1:])
            np.maximum.at(cell_max, cell_of_grid[inside], table[column][inside][:, q_nodes].max(axis=1))
            envelope[band, k] = cell_max * np.exp(-power * log_nodes[:-1])
    envelope *= _MARGIN
    above = np.concatenate([np.cumsum((envelope * _LOG_STEP)[..., ::-1], axis=-1)[..., ::-1],
                            np.zeros((n_bands, len(_ENVELOPES), 1))], axis=-1)
    keys = -np.log(np.maximum(above, 1e-300)).reshape(-1, _N_LOG + 1)
    return _Tables(_MARGIN * kept, floor / _MARGIN, envelope, above, keys, *_guide(keys))


def _guide(keys: np.ndarray) -> tuple[np.ndarray, float]:
    """Guide table of the rows of ``keys`` (see :class:`_Tables`) and its step."""
    spacing = np.diff(keys[:, :-1], axis=1).min()       # the last node (no mass above) is never a start
    if not spacing > 0:
        raise RuntimeError("an envelope cell without mass: the guide table needs increasing keys")
    step = 0.8 * spacing
    levels = keys[:, :1] + step * np.arange(int(np.ceil((keys[:, -2] - keys[:, 0]).max() / step)) + 1)
    guide = np.stack([np.searchsorted(row, level, side="right") - 1 for row, level in zip(keys, levels)])
    return np.minimum(guide, _N_LOG - 1).astype(np.int16), step


def _lookup(array: np.ndarray, band: np.ndarray, second: np.ndarray, last: np.ndarray) -> np.ndarray:
    """``array[band, second, last]`` for a C-contiguous 3-d table."""
    _, n2, n3 = array.shape
    return array.reshape(-1).take((band * n2 + second) * n3 + last)


class _EnvelopePosition:
    """Where ln x′ falls on the envelope grid: cell and the part of the cell above it."""

    __slots__ = ("cell", "partial")

    def __init__(self, log_x: np.ndarray):
        position = np.clip((log_x - _LOG_LO) * (1.0 / _LOG_STEP), 0.0, _N_LOG)
        self.cell = np.minimum(position.astype(np.intp), _N_LOG - 1)
        self.partial = np.maximum(self.cell + 1 - position, 0.0) * _LOG_STEP

    def mass_above(self, band: np.ndarray, column: np.ndarray | int) -> np.ndarray:
        """∫ d ln x′ envelope ``column`` from the point up to ln X_CAP."""
        t = tables()
        row = band * len(_ENVELOPES) + column
        i = row * _N_LOG + self.cell
        return t.above_flat.take(i + row + 1) + t.envelope_flat.take(i) * self.partial


def _draw_log_x(band: np.ndarray, column: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln x′ with ∫ from it to ln X_CAP of the envelope equal to ``mass``, and its envelope."""
    t = tables()
    row = band * len(_ENVELOPES) + column
    key, keys, start = -np.log(mass), t.keys.reshape(-1), row * (_N_LOG + 1)
    n_guide = t.guide.shape[1]
    bucket = np.clip((key - keys.take(start)) * (1.0 / t.guide_step), 0, n_guide - 1).astype(np.intp)
    node = t.guide.reshape(-1).take(row * n_guide + bucket)          # the last node with above ≥ mass
    node -= keys.take(start + node) > key                              # rounding of the bucket
    node += keys.take(start + node + 1) <= key
    cell = np.clip(node, 0, _N_LOG - 1)
    height = t.envelope_flat.take(row * _N_LOG + cell)
    below = t.above_flat.take(row * (_N_LOG + 1) + cell + 1)
    return _LOG_LO + (cell + 1) * _LOG_STEP - (mass - below) / height, height


@dataclass
class ShowerResult:
    """Output of :func:`shower` for ``n`` events.

    ``final_state`` ``(n, 4)``: the colour singlet's momentum; ``partons`` ``(n, keep, 4)``: the
    first ``keep`` emitted partons (zeros where fewer), in emission order; ``n_emissions``;
    ``first_rho`` (ρ of the first emission, 0 if none); ``x`` and ``flavour`` ``(n, 2)`` of the
    incoming partons after evolution.
    """

    final_state: np.ndarray
    partons: np.ndarray
    n_emissions: np.ndarray
    first_rho: np.ndarray
    x: np.ndarray
    flavour: np.ndarray


class _State:
    """Evolution state of the events still showering: two matrices with the events on their
    last axis, ``real`` (float64) and ``whole`` (intp), whose rows are exposed as named views, so
    that dropping finished events is one copy per matrix. Per-leg fields have two rows (0: beam 1,
    1: beam 2): ``x``, ``lx`` = ln x, ``l1x`` = ln(1 − x), ``lh`` = ln((1 − x)/(1 − z_hi)) in the
    current band, ``fl`` the band's floor of x f(x), ``f`` (flavour index), ``node`` (x node of the
    density grid). ``scale`` is ρ̃ of the last trial and ``log_log`` = ln ln(ρ̃/Λ²); ``cumulative``
    holds the band's overestimated rates per unit α_s dρ̃/ρ̃ of the six channels, three per leg
    (flavour kept ∝ 1/(1 − z); new gluon from the envelope; new quark from the envelope), summed
    up to each channel (its last row, ``total``, is their sum); ``boson`` the colour singlet's
    four-momentum (rows px, py, pz, E); ``partons`` ``(n, keep, 4)`` or None."""

    REAL = (("x", 2), ("lx", 2), ("l1x", 2), ("lh", 2), ("fl", 2), ("s_hat", 1), ("scale", 1),
            ("log_log", 1), ("log_z_hi", 1), ("first_rho", 1), ("cumulative", 6), ("boson", 4))
    WHOLE = (("index", 1), ("f", 2), ("node", 2), ("band", 1), ("n_emissions", 1))

    def __init__(self, real: np.ndarray, whole: np.ndarray, partons: np.ndarray | None):
        self.real, self.whole, self.partons = real, whole, partons
        for matrix, fields in ((real, self.REAL), (whole, self.WHOLE)):
            row = 0
            for name, width in fields:
                setattr(self, name, matrix[row] if width == 1 else matrix[row:row + width])
                row += width
        self.total = self.cumulative[-1]

    @classmethod
    def start(cls, x: np.ndarray, flavour_index: np.ndarray, scale: np.ndarray, keep: int) -> "_State":
        """Born configurations ``x``, ``flavour_index`` ``(n, 2)`` at the first trial scale ρ̃."""
        n = len(x)
        st = cls(np.zeros((sum(w for _, w in cls.REAL), n)),
                 np.zeros((sum(w for _, w in cls.WHOLE), n), dtype=np.intp), np.zeros((n, keep, 4)) if keep else None)
        st.index[:] = np.arange(n)
        st.f[:] = flavour_index.T
        st.set_leg(slice(None), x.T.ravel())
        st.s_hat[:] = x[:, 0] * x[:, 1] * SQRT_S**2
        st.scale[:] = scale
        st.log_log[:] = np.log(np.log(scale * (1.0 / LAMBDA2)))
        st.band[:] = np.searchsorted(BAND_EDGES, scale, side="right") - 1
        st.boson[2], st.boson[3] = E_BEAM * (x[:, 0] - x[:, 1]), E_BEAM * (x[:, 0] + x[:, 1])
        return st

    def subset(self, keep: np.ndarray) -> "_State":
        """The events ``keep`` (indices)."""
        return _State(np.take(self.real, keep, axis=1), np.take(self.whole, keep, axis=1),
                      None if self.partons is None else self.partons[keep])

    def leg_index(self, leg1: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Flat index into a per-leg field (two rows) of leg 1 (``leg1``, else leg 0) of ``rows``."""
        return leg1 * self.real.shape[1] + rows

    def set_leg(self, legs: np.ndarray | slice, x: np.ndarray) -> None:
        """Momentum fraction at the flat per-leg index ``legs`` and its logarithms and node."""
        log_x, log_1mx = np.log(x), np.log1p(-x)
        for name, value in (("x", x), ("lx", log_x), ("l1x", log_1mx), ("node", pdf.x_node_of_logit(log_x - log_1mx))):
            getattr(self, name).reshape(-1)[legs] = value


def _at(pair: np.ndarray, legs: np.ndarray) -> np.ndarray:
    """Values of a per-leg field ``(2, m)`` at the flat indices ``legs`` (:meth:`_State.leg_index`)."""
    return pair.reshape(-1).take(legs)


def _first_qg_boost(band: np.ndarray, s_hat: np.ndarray) -> np.ndarray:
    """Factor on the q ← g overestimate of a vector boson's first emission in ``band``
    (:func:`qg_enhancement` at the band's largest ρ; ŝ = M² before the first emission)."""
    return qg_enhancement(BAND_RHO_TOP[band], s_hat)


def _update_rates(st: _State, rows: np.ndarray, me: str | None) -> None:
    """Overestimated rates of the events ``rows`` in their current band (both legs at once, as
    ``(2, k)`` arrays); z ranges up to z_hi = z_max at the band's lowest ρ."""
    t = tables()
    band, s_hat = st.band.take(rows), st.s_hat.take(rows)
    z_hi = z_max(BAND_RHO_LOW.take(band), s_hat)
    log_z_hi, log_1mz = np.log(z_hi), np.log1p(-z_hi)
    st.log_z_hi[rows] = log_z_hi
    norm = BAND_DAMPING.take(band) * (1.0 / (2.0 * np.pi))
    q_to_g = np.full(rows.size, T_R)
    if me == VECTOR:                # first emission: q ← g raised to cover R_qg in this band
        first = np.flatnonzero(st.n_emissions.take(rows) == 0)
        q_to_g[first] *= _first_qg_boost(band.take(first), s_hat.take(first))
    legs = st.leg_index(np.array([[False], [True]]), rows)
    f = _at(st.f, legs)
    gluon = f == pdf.GLUON
    base = (band * pdf.N_FLAVOURS + f) * t.kept.shape[-1] + _at(st.node, legs)
    floor = t.floor.reshape(-1).take(base)
    per_floor = norm / np.where(floor > 0, floor, np.inf)
    log_hi = np.maximum(_at(st.l1x, legs) - log_1mz, 0.0)
    log_x = _at(st.lx, legs) - log_z_hi                       # from x′ = x/z_hi
    quark_to_gluon = q_to_g * _at(st.x, legs)
    kept = (2.0 * C_F + (2.0 * C_A - 2.0 * C_F) * gluon) * log_hi * t.kept.reshape(-1).take(base) * norm
    new_gluon = ((quark_to_gluon + gluon * (2.0 * C_A - quark_to_gluon)) * per_floor
                 * _EnvelopePosition(log_x).mass_above(band, 1 - gluon))
    new_quark = np.zeros(legs.shape)
    g = np.flatnonzero(gluon)                                  # flat index into the (2, k) arrays
    new_quark.reshape(-1)[g] = ((2.0 * C_F) * per_floor.reshape(-1).take(g)
                                * _EnvelopePosition(log_x.reshape(-1).take(g)).mass_above(band.take(g % rows.size), 2))
    cumulative = np.zeros(rows.size)
    for i, rate in enumerate((kept[0], new_gluon[0], new_quark[0], kept[1], new_gluon[1], new_quark[1])):
        cumulative += rate
        st.cumulative[i][rows] = cumulative
    st.lh.reshape(-1)[legs], st.fl.reshape(-1)[legs] = log_hi, floor


def _matrix_element_weight(me: str, changed: np.ndarray, s_new: np.ndarray,
                           t: np.ndarray, mass2: np.ndarray) -> np.ndarray:
    """First-emission correction R = |M|²/Σ_legs shower (module docstring), t = t̂."""
    u = mass2 - s_new - t
    if me == VECTOR:
        kept = (t * t + u * u + 2.0 * mass2 * s_new) / (s_new * s_new + mass2 * mass2)
        swapped = (s_new * s_new + t * t + 2.0 * mass2 * u) / ((s_new - mass2) ** 2 + mass2 * mass2)
    else:
        m8, s4 = mass2**4, s_new**4
        kept = (m8 + s4 + t**4 + u**4) / (m8 + s4 + (s_new - mass2) ** 4)
        swapped = (s_new * s_new + u * u) / (s_new * s_new + (s_new - mass2) ** 2)
    return kept + changed * (swapped - kept)


def shower(x: np.ndarray, flavour: np.ndarray, rng: np.random.Generator, me: str | None = VECTOR,
           keep: int = 0, rho_start: np.ndarray | None = None,
           primordial_kt: float = PRIMORDIAL_KT) -> ShowerResult:
    """Evolve ``n`` Born configurations (``x``, ``flavour`` ``(n, 2)``: signed codes, 0 = g).

    ``me``: :data:`VECTOR`, :data:`SCALAR` or ``None`` (no matrix-element correction).
    ``rho_start``: first ρ ``(n,)``; by default the kinematic limit max over legs of
    (1 − x_a)² x_b s with a correction, ŝ without. ``keep``: number of emitted partons returned.
    """
    x = np.array(x, dtype=np.float64)
    flavour = np.array(flavour, dtype=np.int64)
    n = len(x)
    if rho_start is None:
        rho_start = (np.maximum((1 - x[:, 0]) ** 2 * x[:, 1], (1 - x[:, 1]) ** 2 * x[:, 0]) * SQRT_S**2
                     if me is not None else x[:, 0] * x[:, 1] * SQRT_S**2)
    scale = np.array(np.broadcast_to(rho_start, (n,)), dtype=np.float64) + RHO_0
    st = _State.start(x, pdf.flavour_index(flavour), scale, keep)
    out = ShowerResult(np.zeros((n, 4)), np.zeros((n, keep, 4)), np.zeros(n, dtype=np.int64), np.zeros(n), x, flavour)
    alive = st.band >= 0
    _update_rates(st, np.flatnonzero(alive), me)
    while True:
        dead = ~alive
        if dead.all():
            _store(out, st, slice(None))
            break
        if dead.sum() > _COMPACT * len(dead):
            _store(out, st, np.flatnonzero(dead))
            st, alive = st.subset(np.flatnonzero(alive)), alive[alive]
        _next_scale(st, alive, rng, me)
        alive &= st.band >= 0
        if alive.any():
            _trial(st, alive, rng, me, keep)
    if primordial_kt > 0:
        _primordial_kick(out, rng, primordial_kt, keep)
    return out


def _next_scale(st: _State, alive: np.ndarray, rng: np.random.Generator, me: str | None) -> None:
    """Trial scales ρ̃ < current from the overestimate (module docstring): with rate
    C α_s(ρ̃) dρ̃/ρ̃ and α_s = 1/(b₀ ln(ρ̃/Λ²)), ln ln(ρ̃′/Λ²) = ln ln(ρ̃/Λ²) + (b₀/C) ln u.
    A trial below its band's lower edge restarts there with the next band's rates (band −1 when
    the evolution has ended). Computed for every row; only ``alive`` ones change band."""
    rows = slice(None)
    while True:
        everyone = isinstance(rows, slice)
        total = np.maximum(st.total if everyone else st.total.take(rows), 1e-12)
        log_log = (st.log_log if everyone else st.log_log.take(rows)) + np.log(rng.random(total.size)) * (B0 / total)
        scale = LAMBDA2 * np.exp(np.exp(log_log))
        st.log_log[rows], st.scale[rows] = log_log, scale
        crossed = scale < BAND_EDGES.take(st.band if everyone else st.band.take(rows))
        rows = np.flatnonzero(crossed & alive) if everyone else rows[crossed]
        if not rows.size:
            return
        band = st.band.take(rows)
        st.scale[rows], st.log_log[rows] = BAND_EDGES.take(band), BAND_LOG_LOG.take(band)
        band -= 1
        st.band[rows] = band
        rows = rows[band >= 0]
        _update_rates(st, rows, me)


def _store(out: ShowerResult, st: _State, rows: np.ndarray | slice) -> None:
    """Copy the events ``rows`` (indices, or all) into ``out``."""
    i = st.index[rows]
    out.final_state[i] = st.boson[:, rows].T
    out.x[i] = st.x[:, rows].T
    out.flavour[i] = _CODES.take(st.f[:, rows].T)
    out.n_emissions[i], out.first_rho[i] = st.n_emissions[rows], st.first_rho[rows]
    if st.partons is not None:
        out.partons[i] = st.partons[rows]


def _trial(st: _State, alive: np.ndarray, rng: np.random.Generator, me: str | None, keep: int) -> None:
    """One trial branching of every ``alive`` event at its new scale ``st.scale`` (computed for
    all rows, so that no column is gathered; the others are masked out).

    Channel 0 of a leg: z ∝ 1/(1 − z) on (x, z_hi); weight (1 + z²)/2 (q ← q) or
    z + z(1 − z)²/2 (the 1/(1 − z) end of P_gg/2C_A), times the density ratio over ``kept``.
    Channels 1, 2: x′ = x/z drawn from a density envelope E: q ← g flat in z (E = x′g/x′;
    weight z² + (1 − z)²), the 1/z end of g ← g (E = x′g; weight (1 − z)(1 + z²/2)), g ← q
    (E = Σ x′q; weight (1 + (1 − z)²)/2), times x′f(x′)/(x′^p E(x′)) and ``floor``/x f(x).
    The density ratio over its bound and the matrix-element correction are ≤ 1 (but for the
    q g → Vq correction, up to 2.62), so they are only evaluated for the candidates that pass
    the splitting-function weight (all first q ← g, g ← q trials of a vector boson)."""
    m = alive.size
    u = rng.random((3, m))
    pick = u[0] * st.total
    channel = (pick >= st.cumulative[0]).astype(np.intp)
    for edge in st.cumulative[1:-1]:
        channel += pick >= edge
    leg1 = channel >= 3
    legs = st.leg_index(leg1, np.arange(m))
    slot = channel - 3 * leg1
    f_old = _at(st.f, legs)
    gluon = f_old == pdf.GLUON
    # channel 0: 1 − z = (1 − x) exp(−u ln((1 − x)/(1 − z_hi)))
    omz = np.exp(_at(st.l1x, legs) - u[1] * _at(st.lh, legs))
    z = 1.0 - omz
    height = np.zeros(m)
    # channels 1, 2: ln x′ from the envelope between ln(x/z_hi) and ln X_CAP
    hard = np.flatnonzero((slot > 0) & alive)
    if hard.size:
        slot_h, band = slot.take(hard), st.band.take(hard)
        column = 2 * (slot_h == 2) + (slot_h == 1) * ~gluon.take(hard)
        log_x = _at(st.lx, legs.take(hard))
        mass = u[1].take(hard) * _EnvelopePosition(log_x - st.log_z_hi.take(hard)).mass_above(band, column)
        log_x_new, height[hard] = _draw_log_x(band, column, mass)
        z_hard = np.exp(log_x - log_x_new)
        z[hard], omz[hard] = z_hard, 1.0 - z_hard
    kind = slot + 3 * gluon
    shape = _SHAPES[3].take(kind)
    for coefficients in _SHAPES[2::-1]:                 # Horner
        shape = shape * z + coefficients.take(kind)
    weight = shape * (1.0 - RHO_0 / st.scale) / BAND_DAMPING.take(st.band)
    candidate = u[2] < weight
    if me == VECTOR:                 # R_qg of a first emission reaches 2.62: decided in _accept
        candidate |= (st.n_emissions == 0) & (slot == 1 + gluon)
    c = np.flatnonzero(alive & candidate)
    if c.size:
        _accept(st, c, *(v.take(c) for v in (legs, slot, f_old, z, omz, height, u[2], weight)), rng, me, keep)


def _accept(st: _State, c: np.ndarray, legs: np.ndarray, slot: np.ndarray, f_old: np.ndarray, z: np.ndarray,
            omz: np.ndarray, height: np.ndarray, u: np.ndarray, weight: np.ndarray, rng: np.random.Generator,
            me: str | None, keep: int) -> None:
    """Accept the candidates ``c`` (flat leg index, channel slot, old flavour, z, 1 − z, envelope
    height of the hard channels) when ``u`` < ``weight`` · R · (density ratio)/bound, R the first
    emission's matrix-element correction."""
    t = tables()
    gluon, soft_end = f_old == pdf.GLUON, slot == 0
    changed = slot == 1 + gluon              # q ← g (quark, slot 1) and g ← q (gluon, slot 2)
    flat = changed & ~gluon                  # q ← g: its envelope is x′g/x′
    band, scale, s_hat = st.band.take(c), st.scale.take(c), st.s_hat.take(c)
    rho = scale - RHO_0
    x = _at(st.x, legs)
    x_new = x / z
    # z ≤ z_max(ρ) ⇔ (1 − z)² ŝ ≥ ρ z
    ok = (omz > 0.0) & (omz * omz * s_hat >= rho * z) & (x_new < X_CAP) & (scale >= HEAVY_THRESHOLD.take(f_old))
    if me is not None:
        f = np.flatnonzero((st.n_emissions.take(c) == 0) & ok)
        weight[f] *= _matrix_element_weight(me, changed[f], s_hat[f] / z[f], -rho[f] / omz[f], s_hat[f])
        if me == VECTOR:                                   # its q ← g overestimate was raised
            q = f[flat[f]]
            weight[q] /= _first_qg_boost(band[q], s_hat[q])
    # the density ratio at ρ̃ against the channel's bound: ``kept`` (channel 0) or envelope/floor
    new_column = soft_end * f_old + (slot == 2) * pdf.ALL_QUARKS          # else the gluon (0)
    position = pdf.GridPosition(np.stack([x_new, x]), np.log(scale))
    new_density, old_density = position.values(np.stack([new_column, f_old]))
    envelope = height * (1.0 + flat * (x_new - 1.0))
    bound = (_lookup(t.kept, band, f_old, _at(st.node, legs)) * soft_end
             + envelope / np.maximum(_at(st.fl, legs), 1e-300) * ~soft_end)
    ratio = new_density / np.maximum(old_density * bound, 1e-300)
    a = np.flatnonzero(ok & (u < weight * ratio))
    if a.size:
        _branch(st, c.take(a), legs.take(a), z.take(a), rho.take(a), changed.take(a), f_old.take(a), x_new.take(a),
                rng, keep)
        _update_rates(st, c.take(a), me)


def _recoil(p: tuple[np.ndarray, ...], old_z: np.ndarray, old_e: np.ndarray, new: tuple[np.ndarray, ...],
            mass2: np.ndarray) -> np.ndarray:
    """:func:`.lorentz.map_momenta` for the initial–initial dipole, whose old total
    (0, 0, old_z, old_e) has no p_T: Λp = p − 2(T·p/T²) T + 2(K̃·p/K²) K, T = K + K̃,
    K = ``new`` (T and K share p_x, p_y), K² = K̃² = ``mass2``; ``p`` the components (px, py, pz, E) each ``(k,)`` or
    ``(k, j)``, ``new`` those of K ``(k,)``; returns ``(4, k)`` or ``(4, k, j)``."""
    kx, ky, kz, ke = new
    tz, te = kz + old_z, ke + old_e
    a = 2.0 / (te * te - kx * kx - ky * ky - tz * tz)
    b = 2.0 / mass2
    if p[0].ndim == 2:
        kx, ky, kz, ke, tz, te, old_z, old_e, a, b = (v[:, None] for v in (kx, ky, kz, ke, tz, te, old_z, old_e, a, b))
    px, py, pz, pe = p
    ta = a * (te * pe - kx * px - ky * py - tz * pz)
    kb = b * (old_e * pe - old_z * pz)
    return np.stack([px - ta * kx + kb * kx, py - ta * ky + kb * ky, pz - ta * tz + kb * kz, pe - ta * te + kb * ke])


def _branch(st: _State, a: np.ndarray, legs: np.ndarray, z: np.ndarray, rho: np.ndarray, changed: np.ndarray,
            f_old: np.ndarray, x_new: np.ndarray, rng: np.random.Generator, keep: int) -> None:
    """Apply the accepted branchings of the events ``a`` (flat leg index ``legs``): kinematics,
    recoil, new flavours."""
    s_hat = st.s_hat.take(a)
    leg1 = legs >= st.s_hat.size                          # flat index past the first row: beam 2
    x_leg, x_other = _at(st.x, legs), _at(st.x, legs + st.s_hat.size * (1 - 2 * leg1))
    v = rho * z / ((1.0 - z) * s_hat)
    kt = np.sqrt(np.maximum(v * (1.0 - z - v) * s_hat / z, 0.0))
    alpha, beta = x_leg * (1.0 - z - v) / z, v * x_other
    sign = 1.0 - 2.0 * leg1
    phi = rng.uniform(-np.pi, np.pi, a.size)
    kx, ky = kt * np.cos(phi), kt * np.sin(phi)
    kz, ke = sign * E_BEAM * (alpha - beta), E_BEAM * (alpha + beta)
    old_z, old_e = sign * E_BEAM * (x_leg - x_other), E_BEAM * (x_leg + x_other)
    new = (-kx, -ky, sign * E_BEAM * (x_new - x_other) - kz, E_BEAM * (x_new + x_other) - ke)
    for component, value in zip(st.boson, _recoil(st.boson.take(a, axis=1), old_z, old_e, new, s_hat)):
        component[a] = value
    n_em = st.n_emissions.take(a)
    if keep:
        partons = np.moveaxis(_recoil(np.moveaxis(st.partons[a], -1, 0), old_z, old_e, new, s_hat), 0, -1)
        slot = np.flatnonzero(n_em < keep)
        partons[slot, n_em[slot]] = np.stack([kx, ky, kz, ke], axis=1)[slot]
        st.partons[a] = partons
    st.first_rho[a] += (n_em == 0) * rho
    st.n_emissions[a] = n_em + 1
    st.s_hat[a] = s_hat / z
    gluon = f_old == pdf.GLUON
    f_new = f_old * ~(changed & ~gluon)                   # q ← g: the new parton is the gluon (0)
    g = np.flatnonzero(changed & gluon)
    if g.size:                       # g ← q: the quark flavour by its density at x′
        position = pdf.GridPosition(x_new[g, None], np.log(rho[g, None] + RHO_0))
        cumulative = np.cumsum(position.values(np.arange(1, 11)), axis=1)
        f_new[g] = 1 + np.sum(rng.random((g.size, 1)) * cumulative[:, -1:] > cumulative, axis=1)
    st.f.reshape(-1)[legs] = f_new
    st.set_leg(legs, x_new)


def _primordial_kick(out: ShowerResult, rng: np.random.Generator, width: float, keep: int) -> None:
    """Give each incoming parton a Gaussian k_⊥; the final state takes the sum at fixed mass and
    rapidity."""
    n = len(out.x)
    k = rng.normal(0.0, width, (n, 2)) + rng.normal(0.0, width, (n, 2))
    zero = np.zeros(n)
    total = np.stack([zero, zero, E_BEAM * (out.x[:, 0] - out.x[:, 1]), E_BEAM * (out.x[:, 0] + out.x[:, 1])], axis=1)
    kicked = transverse_kick(total, k[:, 0], k[:, 1])
    out.final_state[:] = map_momenta(out.final_state, total, kicked)
    if keep:
        out.partons[:] = map_momenta(out.partons, total, kicked)
