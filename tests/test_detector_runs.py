"""Detector-level processes train and validate end to end through the CLI, with small budgets:
ECAL point clouds with the transformer, jet images with the U-Net."""
import json

import pytest

from bayesgen.app.cli import main

CLOUD = """
[train.process_options]
n_points = 24
[train.backbone_options]
width = 16
depth = 1
heads = 2
fourier_features = 8
"""

IMAGES = """
[train.process_options]
size = 32
[train.backbone_options]
channels = 8
channel_mults = [1, 2]
attention_below = 16
embed_dim = 16
groups = 4
"""


def run(tmp_path, process, sampler, backbone, toml, *extra):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    out = tmp_path / "run"
    assert main(["train", "--process", process, "--sampler", sampler, "--backbone", backbone, "--steps", "4",
                 "--batch-size", "32", "--events", "256", "--out", str(out), "--config", str(config), *extra]) == 0
    return out


@pytest.mark.parametrize("sampler", ["ddpm", "cfm"])
def test_point_clouds_with_the_transformer(tmp_path, sampler):
    out = run(tmp_path, "ecal_cloud", sampler, "transformer", CLOUD)
    assert main(["validate", str(out), "--events", "200", "--sample-steps", "2"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert {"et_sum", "n_hits"} <= set(metrics["observables"])
    # four training steps leave the clouds far from the truth, and every figure says by how much
    # against its truth-vs-truth reference (measured: EMD 260 (cfm) against 186 ± 6 between truth
    # halves; E_T-sum W1 2.6 (cfm) and 7 (ddpm) × its floor; classifier AUC 10–12 σ above 0.5).
    # ddpm's clipped x̂₀ keeps its clouds inside the training range, where the pairwise EMD, dominated
    # by the spread between clouds, cannot tell them from the truth (195 ± 7); it must not beat it.
    event = metrics["event_metrics"]
    spread = 3 * (event["emd_stderr"] + event["emd_truth_vs_truth_stderr"])
    if sampler == "cfm":
        assert event["emd_mean"] > event["emd_truth_vs_truth"] + spread
    assert event["emd_mean"] > event["emd_truth_vs_truth"] - spread
    et_sum = metrics["observables"]["et_sum"]
    assert et_sum["n_truth"] == et_sum["n_generated"] == 200 and et_sum["w1_over_floor"] > 2
    assert metrics["classifier"]["auc_pull"] > 5
    assert (out / "report" / "examples.png").stat().st_size > 0


def test_bayesian_images_with_the_unet(tmp_path):
    out = run(tmp_path, "jet_images", "ddpm", "unet", IMAGES, "--bayesian")
    assert main(["validate", str(out), "--events", "200", "--draws", "2", "--sample-steps", "2"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert set(metrics["event_metrics"]) >= {"track", "ecal", "hcal"}
    # a four-step model is nowhere near the truth, and its band must not pretend otherwise
    # (measured: 0 of 22 E_T-sum bins covered, classifier AUC 12 σ above 0.5)
    band = metrics["observables"]["ecal_sum"]
    assert band["n_truth"] == 200 and band["n_generated"] == 400  # two members of 200
    assert band["coverage_bins"] >= 10 and band["coverage_1sigma"] <= 0.2
    assert metrics["classifier"]["auc_pull"] > 5
    assert (out / "report" / "examples.png").stat().st_size > 0


def test_inn_refuses_structured_backbones_but_takes_flat_clouds(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(CLOUD)
    assert main(["train", "--process", "ecal_cloud", "--sampler", "inn", "--backbone", "transformer",
                 "--steps", "2", "--events", "64", "--batch-size", "32", "--out", str(tmp_path / "x"),
                 "--config", str(config)]) == 2
    assert "needs whole point clouds" in capsys.readouterr().err
    flat = "[train.process_options]\nn_points = 24\n[train.backbone_options]\nwidth = 16\ndepth = 1\n"
    out = run(tmp_path, "ecal_cloud", "inn", "mlp", flat)
    assert main(["generate", str(out), "--events", "50", "--out", str(tmp_path / "clouds.npz")]) == 0
