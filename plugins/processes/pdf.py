"""Proton parton densities at leading order: the GRV94 LO parametrisation.

Source: M. Glück, E. Reya, A. Vogt, "Dynamical parton distributions of the proton and small-x
physics", Z. Phys. C67 (1995) 433 (DO-TH 94/24, DESY 94-206), LO set, in its published analytic
form: with s = ln[ln(Q²/Λ²)/ln(μ²/Λ²)], μ² = 0.23 GeV², Λ = 0.2322 GeV,

* valence-like (u_v, d_v, Δ = d̄ − ū):  x f = N x^a (1 + A x^b + x (B + C √x)) (1 − x)^D;
* sea-like (ū + d̄, gluon):  x f = [x^a (A + B x + C x²) ln^b(1/x)
  + s^α exp(−E + √(E′ s^β ln(1/x)))] (1 − x)^D;
* strange, charm, bottom sea:  x f = (s − s_th)^α / ln^a(1/x) (1 + A √x + B x) (1 − x)^D
  exp(−E + √(E′ s^β ln(1/x))) for s > s_th, else 0,

each coefficient a polynomial in s (or √s). The paper fits Q² from 0.4 to 10⁶ GeV² and x from
10⁻⁵ to 1, with n_f = 3 light flavours in the evolution: u_v + d_v + 2(ū + d̄ + s̄) + g carry
the proton's momentum. The charm and bottom seas (thresholds s_th = 0.888 and 1.351, i.e.
Q² ≈ 1.8 and 14.6 GeV²) are the ones distributed with this set by PYTHIA 6 (PYGRVL) and ThePEG
(GRV94L); they come on top of the n_f = 3 momentum sum. The coefficients below were checked
against those two implementations and against the GRV group's own LO routine.

Flavour index of the returned arrays (:data:`FLAVOURS`): 0 = g, 1…5 = d u s c b,
6…10 = d̄ ū s̄ c̄ b̄. Every function returns x·f(x, Q²), the momentum density.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: names of the eleven parton densities, in index order
FLAVOURS = ("g", "d", "u", "s", "c", "b", "dbar", "ubar", "sbar", "cbar", "bbar")
N_FLAVOURS = len(FLAVOURS)
GLUON = 0
X_MIN, X_MAX = 1e-5, 1.0          #: x range of the fit
Q2_MIN, Q2_MAX = 0.4, 1e6          #: Q² range of the fit (GeV²)

_MU2 = 0.23                        #: input scale μ² (GeV²)
_LAMBDA2 = 0.2322**2               #: Λ² of the LO evolution variable (GeV²)
S_CHARM, S_BOTTOM = 0.888, 1.351   #: thresholds of the c and b seas in s


def flavour_index(code: np.ndarray) -> np.ndarray:
    """Array index of signed flavour codes (0 gluon, ±1…±5 for d u s c b and antiquarks)."""
    code = np.asarray(code)
    return np.where(code >= 0, code, 5 - code)


def evolution_variable(q2: np.ndarray) -> np.ndarray:
    """GRV's s = ln[ln(Q²/Λ²)/ln(μ²/Λ²)]."""
    return np.log(np.log(q2 / _LAMBDA2) / np.log(_MU2 / _LAMBDA2))


def scale_of(s: np.ndarray) -> np.ndarray:
    """Q² (GeV²) at GRV's evolution variable s (inverse of :func:`evolution_variable`)."""
    return _LAMBDA2 * np.exp(np.log(_MU2 / _LAMBDA2) * np.exp(s))


def _valence(x, n, a, b, big_a, big_b, big_c, big_d):
    return n * x**a * (1.0 + big_a * x**b + x * (big_b + big_c * np.sqrt(x))) * (1.0 - x) ** big_d


def _sea(x, s, lx, alpha, beta, a, b, big_a, big_b, big_c, big_d, big_e, big_e1):
    return ((x**a * (big_a + x * (big_b + x * big_c)) * lx**b
             + s**alpha * np.exp(-big_e + np.sqrt(big_e1 * s**beta * lx))) * (1.0 - x) ** big_d)


def _heavy_sea(x, s, lx, s_th, alpha, beta, a, big_a, big_b, big_d, big_e, big_e1):
    above = s > s_th
    ds = np.where(above, s - s_th, 0.0)
    value = (ds**alpha / lx**a * (1.0 + big_a * np.sqrt(x) + big_b * x) * (1.0 - x) ** big_d
             * np.exp(-big_e + np.sqrt(big_e1 * s**beta * lx)))
    return np.where(above, value, 0.0)


def grv94_components(x: np.ndarray, q2: np.ndarray) -> dict[str, np.ndarray]:
    """The published GRV94 LO combinations, each x·f: ``uv``, ``dv``, ``del`` (d̄ − ū),
    ``udb`` (ū + d̄), ``sb`` (s = s̄), ``gl``, plus ``cb`` and ``bb`` (c = c̄, b = b̄).
    ``x`` and ``q2`` broadcast; x in (0, 1), Q² > Λ²."""
    x, q2 = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(q2, dtype=np.float64))
    s = evolution_variable(q2)
    ds, s2 = np.sqrt(s), s * s
    s3 = s2 * s
    lx = np.log(1.0 / x)
    return {
        "uv": _valence(x, 2.284 + 0.802 * s + 0.055 * s2, 0.590 - 0.024 * s, 0.131 + 0.063 * s,
                       -0.449 - 0.138 * s - 0.076 * s2, 0.213 + 2.669 * s - 0.728 * s2,
                       8.854 - 9.135 * s + 1.979 * s2, 2.997 + 0.753 * s - 0.076 * s2),
        "dv": _valence(x, 0.371 + 0.083 * s + 0.039 * s2, 0.376, 0.486 + 0.062 * s,
                       -0.509 + 3.310 * s - 1.248 * s2, 12.41 - 10.52 * s + 2.267 * s2,
                       6.373 - 6.208 * s + 1.418 * s2, 3.691 + 0.799 * s - 0.071 * s2),
        "del": _valence(x, 0.082 + 0.014 * s + 0.008 * s2, 0.409 - 0.005 * s, 0.799 + 0.071 * s,
                        -38.07 + 36.13 * s - 0.656 * s2, 90.31 - 74.15 * s + 7.645 * s2, 0.0,
                        7.486 + 1.217 * s - 0.159 * s2),
        "udb": _sea(x, s, lx, 1.451, 0.271, 0.410 - 0.232 * s, 0.534 - 0.457 * s, 0.890 - 0.140 * s,
                    -0.981, 0.320 + 0.683 * s, 4.752 + 1.164 * s + 0.286 * s2, 4.119 + 1.713 * s,
                    0.682 + 2.978 * s),
        "sb": _heavy_sea(x, s, lx, 0.0, 0.914, 0.577, 1.798 - 0.596 * s,
                         -5.548 + 3.669 * ds - 0.616 * s, 18.92 - 16.73 * ds + 5.168 * s,
                         6.379 - 0.350 * s + 0.142 * s2, 3.981 + 1.638 * s, 6.402),
        "cb": _heavy_sea(x, s, lx, S_CHARM, 1.01, 0.37, 0.0, 0.0, 4.24 - 0.804 * s,
                         3.46 - 1.076 * s, 4.61 + 1.49 * s, 2.555 + 1.961 * s),
        "bb": _heavy_sea(x, s, lx, S_BOTTOM, 1.00, 0.51, 0.0, 0.0, 1.848, 2.929 + 1.396 * s,
                         4.71 + 1.514 * s, 4.02 + 1.239 * s),
        "gl": _sea(x, s, lx, 0.524, 1.088, 1.742 - 0.930 * s, -0.399 * s2, 7.486 - 2.185 * s,
                   16.69 - 22.74 * s + 5.779 * s2, -25.59 + 29.71 * s - 7.296 * s2,
                   2.792 + 2.215 * s + 0.422 * s2 - 0.104 * s3, 0.807 + 2.005 * s, 3.841 + 0.316 * s),
    }


def parton_densities(x: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """x·f for every flavour, shape ``broadcast(x, q2).shape + (11,)`` in :data:`FLAVOURS` order:
    ū = (udb − del)/2, d̄ = (udb + del)/2, u = u_v + ū, d = d_v + d̄, s = s̄, c = c̄, b = b̄."""
    c = grv94_components(x, q2)
    ubar, dbar = 0.5 * (c["udb"] - c["del"]), 0.5 * (c["udb"] + c["del"])
    return np.stack([c["gl"], c["dv"] + dbar, c["uv"] + ubar, c["sb"], c["cb"], c["bb"],
                     dbar, ubar, c["sb"], c["cb"], c["bb"]], axis=-1)


# --- fast lookup -----------------------------------------------------------------------------
# Bilinear interpolation of x·f on a grid uniform in ξ = ln(x/(1 − x)) (resolves both the small-x
# rise and the (1 − x)^D fall) and in ln Q². The last column holds Σ_quarks x·f.
_XI_LO, _XI_HI, _N_XI = np.log(X_MIN / (1 - X_MIN)), np.log(0.9995 / 0.0005), 640
_LQ_LO, _LQ_HI, _N_LQ = np.log(0.5), np.log(Q2_MAX), 81
ALL_QUARKS = N_FLAVOURS            #: column of the lookup table holding the sum over quarks


@lru_cache(maxsize=1)
def lookup_table() -> np.ndarray:
    """x·f on the interpolation grid, ``(12, _N_XI, _N_LQ)`` (11 flavours, then Σ quarks)."""
    xi = np.linspace(_XI_LO, _XI_HI, _N_XI)
    x = 1.0 / (1.0 + np.exp(-xi))
    q2 = np.exp(np.linspace(_LQ_LO, _LQ_HI, _N_LQ))
    f = parton_densities(x[:, None], q2[None, :])                 # (N_XI, N_LQ, 11)
    table = np.concatenate([f, f[..., 1:].sum(axis=-1, keepdims=True)], axis=-1)
    return np.ascontiguousarray(np.moveaxis(table, -1, 0))


@lru_cache(maxsize=1)
def _corner_table() -> np.ndarray:
    """The four corners (x node, Q² node) (i, j), (i, j + 1), (i + 1, j), (i + 1, j + 1) of each
    cell of :func:`lookup_table`, ``(12 · _N_XI · _N_LQ, 4)`` in its flat order (the last x and Q²
    nodes are zero-filled, never read), so an interpolation reads one row."""
    table = lookup_table()
    corners = np.zeros(table.shape + (4,))
    corners[:, :-1, :-1] = np.stack([table[:, :-1, :-1], table[:, :-1, 1:], table[:, 1:, :-1], table[:, 1:, 1:]],
                                    axis=-1)
    return corners.reshape(-1, 4)


def grid_x() -> np.ndarray:
    """x nodes of :func:`lookup_table` ``(_N_XI,)``."""
    return 1.0 / (1.0 + np.exp(-np.linspace(_XI_LO, _XI_HI, _N_XI)))


def grid_q2() -> np.ndarray:
    """Q² nodes of :func:`lookup_table` ``(_N_LQ,)``."""
    return np.exp(np.linspace(_LQ_LO, _LQ_HI, _N_LQ))


class GridPosition:
    """Where points (x, Q²) fall on the lookup grid: flat corner index and weights, reusable for
    several flavours (see :meth:`values`)."""

    __slots__ = ("base", "wx", "wq")

    def __init__(self, x: np.ndarray, log_q2: np.ndarray):
        fx = (np.log(x) - np.log1p(-x) - _XI_LO) * ((_N_XI - 1) / (_XI_HI - _XI_LO))
        fq = (log_q2 - _LQ_LO) * ((_N_LQ - 1) / (_LQ_HI - _LQ_LO))
        np.clip(fx, 0.0, _N_XI - 1.000001, out=fx)
        np.clip(fq, 0.0, _N_LQ - 1.000001, out=fq)
        ix, iq = fx.astype(np.intp), fq.astype(np.intp)
        self.wx, self.wq = fx - ix, fq - iq
        self.base = ix * _N_LQ + iq

    def values(self, column: np.ndarray | int) -> np.ndarray:
        """x·f of table column(s) ``column`` (flavour index, or :data:`ALL_QUARKS`) at the points."""
        corners = _corner_table().take(self.base + np.asarray(column) * (_N_XI * _N_LQ), axis=0)
        f00, f01, f10, f11 = np.moveaxis(corners, -1, 0)
        lo = f00 + self.wq * (f01 - f00)
        hi = f10 + self.wq * (f11 - f10)
        return lo + self.wx * (hi - lo)


def x_node_of_logit(xi: np.ndarray) -> np.ndarray:
    """Index of the grid node at or below ξ = ln(x/(1 − x)) ``(n,)``."""
    f = (xi - _XI_LO) * ((_N_XI - 1) / (_XI_HI - _XI_LO))
    return np.clip(f, 0.0, _N_XI - 1.000001).astype(np.intp)


def x_node(x: np.ndarray) -> np.ndarray:
    """Index of the grid node at or below x ``(n,)``."""
    return x_node_of_logit(np.log(x) - np.log1p(-x))


def interpolated(column: np.ndarray | int, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """x·f of ``column`` at (x, Q²) from the lookup grid (relative accuracy ~10⁻³ where x·f is
    not vanishing; x beyond 0.9995 reads the last node)."""
    return GridPosition(np.asarray(x, dtype=np.float64), np.log(q2)).values(column)
