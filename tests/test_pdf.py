"""The shipped GRV94 LO parton densities: sum rules by numerical integration, the interpolation
grid against the analytic form, and the flavour bookkeeping."""
import numpy as np
import pytest
from scipy import integrate

from bayesgen.plugins.processes import pdf

SCALES = [1.0, 10.0, 8315.0, 1e5]   # GeV², from the input region to beyond the Z pole


def _integral(function, q2):
    """∫₀¹ dx function(x, Q²) over the fitted range, split at decades for quad's accuracy."""
    edges = [1e-8, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0]
    return sum(integrate.quad(lambda x: function(x, q2), lo, hi, limit=200)[0] for lo, hi in zip(edges, edges[1:]))


def _component(name):
    return lambda x, q2: pdf.grv94_components(x, q2)[name]


@pytest.mark.parametrize("q2", SCALES)
def test_valence_number_sum_rules(q2):
    # ∫ u_v dx = 2, ∫ d_v dx = 1 (the fit holds them to ~0.5 %)
    u_valence = _integral(lambda x, q: _component("uv")(x, q) / x, q2)
    d_valence = _integral(lambda x, q: _component("dv")(x, q) / x, q2)
    assert u_valence == pytest.approx(2.0, abs=0.01)
    assert d_valence == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("q2", SCALES)
def test_momentum_sum_rule(q2):
    # n_f = 3 in GRV94's evolution: u_v + d_v + 2(ū + d̄ + s̄) + g carry the momentum
    def momentum(x, q):
        c = pdf.grv94_components(x, q)
        return c["uv"] + c["dv"] + 2.0 * c["udb"] + 2.0 * c["sb"] + c["gl"]
    assert _integral(momentum, q2) == pytest.approx(1.0, abs=0.005)


def test_flavour_densities_are_built_from_the_components():
    x, q2 = np.array([1e-4, 0.01, 0.2, 0.6]), 100.0
    c = pdf.grv94_components(x, q2)
    f = pdf.parton_densities(x, q2)
    ubar, dbar = 0.5 * (c["udb"] - c["del"]), 0.5 * (c["udb"] + c["del"])
    np.testing.assert_allclose(f[:, pdf.FLAVOURS.index("u")] - f[:, pdf.FLAVOURS.index("ubar")], c["uv"])
    np.testing.assert_allclose(f[:, pdf.FLAVOURS.index("d")] - f[:, pdf.FLAVOURS.index("dbar")], c["dv"])
    np.testing.assert_allclose(f[:, pdf.FLAVOURS.index("dbar")] - f[:, pdf.FLAVOURS.index("ubar")], c["del"])
    np.testing.assert_allclose(f[:, pdf.FLAVOURS.index("ubar")], ubar)
    np.testing.assert_allclose(f[:, pdf.FLAVOURS.index("dbar")], dbar)
    assert (f >= 0).all()
    # d̄ > ū at moderate x (the Gottfried-sum asymmetry built into GRV94)
    assert (c["del"][1:3] > 0).all()
    np.testing.assert_array_equal(pdf.flavour_index(np.array([0, 1, 5, -1, -5])), [0, 1, 5, 6, 10])


def test_heavy_quarks_start_at_their_thresholds():
    x = np.full(3, 0.01)
    below_charm, between, above = pdf.parton_densities(x, np.array([1.5, 10.0, 100.0])).T[[4, 5]].T
    assert below_charm[0] == 0.0 and below_charm[1] == 0.0           # c, b at Q² = 1.5 GeV²
    assert between[0] > 0.0 and between[1] == 0.0                    # c on, b off at 10 GeV²
    assert above[0] > 0.0 and above[1] > 0.0


def test_lookup_grid_matches_the_analytic_form():
    rng = np.random.default_rng(0)
    x = 10 ** rng.uniform(-5, np.log10(0.8), 20_000)
    q2 = 10 ** rng.uniform(0.5, 5.9, 20_000)
    exact = pdf.parton_densities(x, q2)
    for column in (0, 1, 2, 3, 6, 7):                                 # g, d, u, s, d̄, ū
        approx = pdf.interpolated(column, x, q2)
        relative = np.abs(approx / exact[:, column] - 1)[exact[:, column] > 1e-3]
        assert np.percentile(relative, 99) < 3e-3 and relative.max() < 0.02, pdf.FLAVOURS[column]
    quarks = pdf.interpolated(pdf.ALL_QUARKS, x, q2)
    np.testing.assert_allclose(quarks, exact[:, 1:].sum(axis=1), rtol=0.02)
