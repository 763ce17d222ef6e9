"""DistributedDataParallel training: two CPU processes with the gloo backend under torchrun."""
import json
import socket
import subprocess
import sys

import numpy as np
import torch

from bayesgen.app.cli import main
from bayesgen.engine.checkpoint import load_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*arguments: str) -> subprocess.CompletedProcess:
    """``bayesgen ARGUMENTS`` in two local processes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "bayesgen", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def test_two_process_training_stays_in_sync(tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text("[train]\ncheckpoint_every = 6\n[train.backbone_options]\nwidth = 16\ndepth = 1\n")
    result = torchrun("train", "--distributed", "--sampler", "cfm", "--steps", "12", "--events", "4096",
                      "--batch-size", "512", "--device", "cpu", "--out", str(run), "--config", str(config))
    assert result.returncode == 0, result.stderr[-2000:]  # includes the ranks' weight-sync check
    state = load_checkpoint(run)
    assert state["step"] == 12 and all(torch.isfinite(torch.tensor(state["history"]["loss"])))
    assert json.loads((run / "config.json").read_text())["distributed"] is True


def test_distributed_without_launcher_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["train", "--distributed", "--steps", "2", "--out", str(tmp_path / "r")]) == 2
    assert "--distributed needs a launcher: run `torchrun" in capsys.readouterr().err


def test_sharded_generation_equals_a_single_process(trained_run, tmp_path, capsys):
    from bayesgen.engine.io import read_events

    single = tmp_path / "single.npz"
    options = ["--events", "1000", "--batch-size", "150", "--sample-steps", "3", "--seed", "9",
               "--device", "cpu"]
    assert main(["generate", str(trained_run), *options, "--out", str(single)]) == 0
    count = [line for line in capsys.readouterr().err.splitlines() if "outside the process's support" in line]
    sharded = tmp_path / "sharded.npz"
    result = torchrun("generate", str(trained_run), "--distributed", *options, "--out", str(sharded))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(count) == 1 and count[0] in result.stderr, "the ranks' counts of events drawn again must add up"
    a, b = read_events(single), read_events(sharded)
    assert sorted(a) == sorted(b)
    for name in a:
        assert len(b[name]) == 1000
        np.testing.assert_array_equal(a[name], b[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded.npz", "single.npz"], "parts left behind"
