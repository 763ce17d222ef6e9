"""The training loop: checkpoints, resume, reproducibility, refusal to overwrite."""
import dataclasses
import re
import shutil

import numpy as np
import pytest
import torch

from bayesgen.core.errors import ConfigError, RunError
from bayesgen.core.seeding import derive_seed
from bayesgen.engine.checkpoint import load_checkpoint, save_checkpoint
from bayesgen.engine.generation import generate_events
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import BatchStream, learning_rate, train


def test_checkpoint_loads_with_weights_only(trained_run):
    state = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 300
    assert set(state) >= {"config", "model", "ema", "optimizer", "preprocessing", "history"}
    assert state["config"]["process"] == "z_mumu"
    assert len(state["history"]["loss"]) > 0
    assert state["train_seconds"] > 0 and state["train_cpu_seconds"] > 0   # wall and CPU time of the loop
    assert sorted(p.name for p in trained_run.iterdir()) == ["checkpoint.pt", "config.json"], \
        "temporary checkpoint or lock left behind"


def test_ema_differs_from_live_weights(trained_run):
    state = load_checkpoint(trained_run)
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"]
               if state["model"][k].is_floating_point())


def test_resume_matches_an_uninterrupted_run(tmp_path, tiny_config, monkeypatch):
    straight = train(tiny_config(tmp_path / "straight", steps=30, checkpoint_every=10), progress=False)
    interrupted = tiny_config(tmp_path / "resumed", steps=30, checkpoint_every=10)

    def save_then_crash(run_dir, state):
        save_checkpoint(run_dir, state)
        if state["step"] == 10:
            raise KeyboardInterrupt  # killed right after the first checkpoint

    monkeypatch.setattr("bayesgen.engine.training.save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "resumed")["step"] == 10
    train(dataclasses.replace(interrupted, resume=True), progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(tmp_path / "resumed")
    assert b["step"] == 30
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"


def test_same_seed_same_weights_other_seed_differs(tmp_path, tiny_config):
    runs = [train(tiny_config(tmp_path / name, steps=5, seed=seed), progress=False)
            for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    states = [load_checkpoint(r)["model"] for r in runs]
    name = next(iter(states[0]))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0]), name


def test_existing_run_is_not_overwritten(trained_run, tiny_config):
    before = (trained_run / "checkpoint.pt").read_bytes()
    with pytest.raises(RunError, match="already holds a trained run; pass --resume"):
        train(tiny_config(trained_run), progress=False)
    assert (trained_run / "checkpoint.pt").read_bytes() == before


def test_resume_refuses_changed_settings(trained_run, tiny_config):
    with pytest.raises(ConfigError, match="cannot resume .* different sampler_options"):
        train(tiny_config(trained_run, resume=True, sampler_options={"timesteps": 70},
                          backbone_options={"width": 64, "depth": 2}), progress=False)


def test_resume_without_checkpoint_names_the_problem(tmp_path, tiny_config):
    with pytest.raises(RunError, match="run directory not found"):
        train(tiny_config(tmp_path / "nothing", resume=True), progress=False)


def test_batches_cover_each_epoch_once():
    stream = BatchStream(n_events=100, batch_size=20, seed=0, device=torch.device("cpu"))
    epoch = torch.cat([stream.indices(step) for step in range(5)])
    assert sorted(epoch.tolist()) == list(range(100))
    assert not torch.equal(stream.indices(5), stream.indices(0))
    assert torch.equal(BatchStream(100, 20, 0, torch.device("cpu")).indices(7), stream.indices(7))
    with pytest.raises(ConfigError, match="exceeds the 100 training events"):
        BatchStream(100, 200, 0, torch.device("cpu"))


def test_learning_rate_warms_up_then_decays(tiny_config, tmp_path):
    config = tiny_config(tmp_path, steps=1000, lr=1e-3, warmup_steps=100)
    rates = [learning_rate(config, step) for step in range(1000)]
    assert rates[0] < rates[50] < rates[99] == pytest.approx(1e-3)
    assert rates[500] < rates[100] and rates[-1] < 1e-5


def test_wall_time_estimate_comes_from_the_steps_after_the_first(monkeypatch):
    from bayesgen.engine.training import WallTimeEstimate, duration

    clock = iter([100.0, 101.0, 102.0])  # after steps 1, 2, 3; step 1's warm-up is not counted
    monkeypatch.setattr("bayesgen.engine.training.time.perf_counter", lambda: next(clock))
    estimate = WallTimeEstimate(0, 1001, torch.device("cpu"))
    assert estimate.update(1) is None and estimate.update(2) is None  # 1 s timed: too little yet
    assert estimate.update(3) == ("expected wall time: 17 min for the remaining 998 steps "
                                  "(1 s/step on cpu, timed over 2 steps)")
    assert (duration(42.4), duration(3725), duration(2 * 86400)) == ("42 s", "1 h 2 min", "48 h 0 min")


def test_train_prints_the_expected_wall_time_once(tmp_path, capsys):
    from bayesgen.app.cli import main

    config = tmp_path / "c.toml"
    config.write_text("[train.backbone_options]\nwidth = 8\ndepth = 1\n")
    assert main(["train", "--steps", "30", "--events", "512", "--batch-size", "64", "--out", str(tmp_path / "r"),
                 "--config", str(config)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "expected wall time" in line]
    assert len(lines) == 1 and re.search(r"for the remaining \d+ steps \([\d.e-]+ s/step on cpu, timed over \d+ steps\)",
                                         lines[0])


def test_run_stores_the_range_of_its_training_features(trained_run):
    state = load_checkpoint(trained_run)
    model = TrainedModel.load(trained_run, "cpu")
    events = model.process.sample(state["config"]["events"], seed=derive_seed(state["config"]["seed"], "train-data"))
    features = model.preprocessor.forward(events)
    np.testing.assert_allclose(state["feature_range"].numpy(), [features.min(0), features.max(0)], rtol=1e-6)
    torch.testing.assert_close(model.sampler.feature_range, state["feature_range"])


def test_a_run_without_a_stored_range_still_loads_and_generates(trained_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    state = load_checkpoint(old)
    del state["feature_range"], state["format"]
    save_checkpoint(old, state)
    model = TrainedModel.load(old, "cpu")
    assert model.sampler.feature_range is None
    chunk, _ = generate_events(model, 200, 100, seed=0, sample_steps=10)
    assert model.process.support(chunk.events).all()


def test_training_range_is_pooled_per_channel_for_structured_features():
    from bayesgen.engine.preprocessing import feature_range

    features = np.array([[0.0, 5.0, -1.0, 2.0], [1.0, -3.0, 0.5, 2.5]])
    low, high = feature_range(features)
    np.testing.assert_array_equal(low, [0.0, -3.0, -1.0, 2.0])
    np.testing.assert_array_equal(high, [1.0, 5.0, 0.5, 2.5])
    low, high = feature_range(features, channels=np.array([0, 1, 0, 1]))  # (point, channel) flattened
    np.testing.assert_array_equal(low, [-1.0, -3.0, -1.0, -3.0])
    np.testing.assert_array_equal(high, [1.0, 5.0, 1.0, 5.0])
