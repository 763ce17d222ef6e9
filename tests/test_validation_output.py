"""What validation hands a physicist: hist objects, a ROOT file of TH1Ds with errors, plots in
HEP style with √s, event counts and a log scale where the truth spans decades."""
import hist
import numpy as np
import pytest
import uproot

from bayesgen.core.process import Binning
from bayesgen.core.registry import get_process
from bayesgen.validation.histfile import root_entries, root_title, sample_histograms, write_root
from bayesgen.validation.histogram import BandHistogram, Histogram
from bayesgen.validation.plots import LOG_RANGE, energy_label, observable_figure, spans_decades

EDGES = np.linspace(0.0, 10.0, 21)


def weighted_sample(seed=0, n=5_000):
    """Exponential values (some beyond the range, some below it) with weights in [0.5, 2)."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.exponential(2.0, n), [-1.0, -0.5]])
    return values, rng.uniform(0.5, 2.0, len(values))


def test_to_hist_equals_hist_filled_with_the_same_events():
    values, weights = weighted_sample()
    ours = Histogram.fill(values, EDGES, weights).to_hist("x", "x [GeV]")
    theirs = hist.Hist(hist.axis.Regular(20, 0.0, 10.0, name="x", label="x [GeV]"), storage=hist.storage.Weight())
    theirs.fill(values, weight=weights)
    assert ours.axes == theirs.axes
    np.testing.assert_allclose(ours.values(flow=True), theirs.values(flow=True), rtol=1e-12)
    np.testing.assert_allclose(ours.variances(flow=True), theirs.variances(flow=True), rtol=1e-12)
    assert ours.sum(flow=True).value == pytest.approx(weights.sum())  # the Histogram's total
    variable = Histogram.fill(values, [0.0, 1.0, 3.0, 10.0], weights).to_hist()
    assert isinstance(variable.axes[0], hist.axis.Variable)
    np.testing.assert_allclose(variable.axes[0].edges, [0.0, 1.0, 3.0, 10.0])


def test_root_file_holds_th1ds_with_the_histograms_counts_errors_and_band(tmp_path):
    values, weights = weighted_sample()
    truth = Histogram.fill(values, EDGES, weights)
    draws = [Histogram.fill(weighted_sample(seed)[0], EDGES) for seed in (1, 2, 3)]
    band = BandHistogram.from_histograms(draws)
    pooled = Histogram.fill(np.concatenate([weighted_sample(seed)[0] for seed in (1, 2, 3)]), EDGES)
    samples = sample_histograms("pt", r"$p_{T,\mu}$ [GeV]", truth, pooled, band)
    path = write_root(tmp_path / "histograms.root", root_entries({"pt": samples}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["histograms.root"]  # no temporary left
    with uproot.open(path) as file:
        assert {k.split(";")[0] for k, c in file.classnames().items() if c == "TH1D"} == {
            "truth/pt", "generated/pt", "band_mean/pt", "band_sigma_pred/pt"}
        read = file["truth/pt"]
        np.testing.assert_allclose(read.values(), truth.counts)
        np.testing.assert_allclose(read.errors(), np.sqrt(truth.sumw2))  # sumw2, not √counts
        np.testing.assert_allclose(read.values(flow=True)[[0, -1]], [truth.underflow[0], truth.overflow[0]])
        np.testing.assert_allclose(read.axis().edges(), EDGES)
        assert read.axis().member("fTitle") == "p_{T,#mu} [GeV]"
        np.testing.assert_allclose(file["generated/pt"].values(), pooled.counts)
        np.testing.assert_allclose(file["band_mean/pt"].values(), band.mean)
        np.testing.assert_allclose(file["band_mean/pt"].errors(), band.density_error)
        np.testing.assert_allclose(file["band_sigma_pred/pt"].values(), band.sigma_pred)
        back = file["truth/pt"].to_hist()  # the same histogram, its axis named as ROOT names it
        np.testing.assert_allclose(back.values(flow=True), samples["truth"].values(flow=True))
        np.testing.assert_allclose(back.variances(flow=True), samples["truth"].variances(flow=True))
        assert samples["truth"].axes[0].name == "pt" and read.member("fTitle") == "pt: truth"
    assert root_title(r"$\Delta\phi_{\mu\mu}$ [rad]") == "#Delta#phi_{#mu#mu} [rad]"


def test_compare_puts_each_models_samples_under_its_name():
    h = {"pt": {"truth": "t", "generated": "g", "band_mean": "b"}}
    assert root_entries(h, "ddpm (run 2)") == {"truth/pt": "t", "ddpm_run_2/generated/pt": "g",
                                               "ddpm_run_2/band_mean/pt": "b"}


def test_log_scale_where_the_truth_spans_decades():
    falling = Histogram.fill(np.random.default_rng(1).exponential(0.5, 50_000), EDGES)
    flat = Histogram.fill(np.random.default_rng(1).uniform(0, 10, 50_000), EDGES)
    assert spans_decades(falling) and not spans_decades(flat)
    assert not spans_decades(Histogram.fill([1.0], EDGES))  # one filled bin spans nothing
    # the threshold: densities 1 and LOG_RANGE are within it, 1 and 1.01 × LOG_RANGE are not
    assert not spans_decades(Histogram.fill(np.repeat([0.5, 1.5], [1, int(LOG_RANGE)]), EDGES))
    assert spans_decades(Histogram.fill(np.repeat([0.5, 1.5], [1, int(1.01 * LOG_RANGE)]), EDGES))
    # z_mumu (truth densities spanning, largest / smallest bin: Δφ 210, M_μμ with its radiative tail
    # 410, η 1.8): the back-to-back Δφ and the mass with its tail on a log scale, the flat η not
    process = get_process("z_mumu")
    observables = process.observables(process.sample(20_000, seed=4))
    scales = {}
    for name in ("dphi_mumu", "m_mumu", "mu1_eta"):
        binning = process.binnings[name]
        truth = Histogram.fill(observables[name], binning.edges)
        figure = observable_figure(binning, truth, {"model": truth}, process.name, n_generated=20_000)
        scales[name] = figure.axes[0].get_yscale()
    assert scales == {"dphi_mumu": "log", "m_mumu": "log", "mu1_eta": "linear"}


def test_a_long_legend_goes_below_the_panels_without_covering_them():
    values, _ = weighted_sample()
    binning = Binning(0.0, 10.0, 20, r"$p_T$ [GeV]")
    truth = Histogram.fill(values[:3_000], binning.edges)
    few = {"inn": Histogram.fill(values, binning.edges)}
    many = {f"a_long_row_name_of_a_study_{i}": Histogram.fill(values[i:], binning.edges) for i in range(8)}
    inside = observable_figure(binning, truth, few, "z_mumu", logy=False)
    assert inside.axes[0].get_legend() is not None and not inside.legends
    below = observable_figure(binning, truth, many, "z_mumu", logy=False)
    assert below.axes[0].get_legend() is None and len(below.legends) == 1
    assert below.get_size_inches()[1] > inside.get_size_inches()[1]
    below.canvas.draw()
    renderer = below.canvas.get_renderer()
    box = below.legends[0].get_window_extent(renderer)
    figure_box = below.bbox
    assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 and figure_box.y0 <= box.y0
    for panel in below.axes:
        assert box.y1 < panel.get_tightbbox(renderer).y0, "the legend covers a panel"
    texts = [t.get_text() for t in below.legends[0].get_texts()]
    assert len(texts) == 9 and texts[8] == f"a_long_row_name_of_a_study_7, {len(values) - 7:,} events"


def test_title_and_legend_give_sqrt_s_and_the_event_counts():
    values, _ = weighted_sample()
    binning = Binning(0.0, 10.0, 20, r"$p_T$ [GeV]")
    truth = Histogram.fill(values[:3_000], binning.edges)
    single = Histogram.fill(values, binning.edges)
    band = BandHistogram.from_histograms([Histogram.fill(weighted_sample(s, 1_000)[0], binning.edges)
                                          for s in (1, 2)])
    figure = observable_figure(binning, truth, {"ddpm": single, "cfm": band}, "z_mumu", n_generated=5_002,
                               sqrt_s=13_000.0, logy=False)
    ax = figure.axes[0]
    assert ax.get_title(loc="left") == "z_mumu" and ax.get_title(loc="right") == "√s = 13 TeV"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("truth, 3,000 events") and "5,002 generated" in legend[0]
    assert legend[1] == "ddpm, 5,002 events"
    assert legend[2].startswith("cfm, mean ± σ") and "2 draws, 2,004 events" in legend[2]
    assert ax.get_yscale() == "linear"
    assert energy_label(900.0) == "√s = 900 GeV" and energy_label(None) == ""
    assert get_process("h_zz_4mu").sqrt_s == get_process("ecal_cloud").sqrt_s == 13_000.0
