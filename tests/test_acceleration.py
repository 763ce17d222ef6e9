"""Generation speed settings: precision, batch size from memory, compile, the chunk pipeline."""
import numpy as np
import pytest
import torch

from bayesgen.core.errors import ConfigError
from bayesgen.engine.acceleration import CPU_BATCH_SIZE, HostCopy, autocast, compile_networks, resolved_precision
from bayesgen.engine.config import GenerateConfig
from bayesgen.engine.generation import event_chunks, generate_events, resolve_batch_size
from bayesgen.engine.model import TrainedModel


@pytest.fixture(scope="module")
def model(trained_run):
    return TrainedModel.load(trained_run, "cpu")


def test_bad_settings_name_the_choices():
    with pytest.raises(ConfigError, match="unknown precision 'fp16'; choose from auto, fp32, bf16"):
        GenerateConfig(precision="fp16")
    with pytest.raises(ConfigError, match="unknown compile mode 'fast'"):
        GenerateConfig(compile="fast")


def test_precision_resolution_and_autocast():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolved_precision(cpu, "auto") == "fp32" and resolved_precision(cuda, "auto") == "bf16"
    assert resolved_precision(cpu, "bf16") == "bf16" and resolved_precision(cuda, "fp32") == "fp32"
    with autocast(cpu, "bf16"):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32


def test_bf16_changes_the_numbers_not_the_distribution(model):
    fp32, _ = generate_events(model, 4000, 4000, seed=5, sample_steps=10, precision="fp32")
    bf16, _ = generate_events(model, 4000, 4000, seed=5, sample_steps=10, precision="bf16")
    assert not np.array_equal(fp32.events, bf16.events)  # autocast really ran
    features = [model.process.to_features(e.events) for e in (fp32, bf16)]
    shift = np.abs(features[0].mean(0) - features[1].mean(0)) / features[0].std(0)
    assert shift.max() < 0.05


def test_cpu_batch_size_is_fixed_and_given_sizes_win(model):
    assert resolve_batch_size(model, None, 1, "fp32", 5, None) == CPU_BATCH_SIZE
    assert resolve_batch_size(model, 777, 1, "fp32", 5, None) == 777


def test_pipelined_chunks_match_chunks_made_alone(model):
    """Chunk k of a run equals chunk k generated on its own (shard k of 3), so the pipeline
    never pairs one chunk's features with another's seed."""
    pipelined = [c.events for c in event_chunks(model, 900, 300, seed=2, sample_steps=4)]
    alone = [next(iter(event_chunks(model, 900, 300, seed=2, sample_steps=4, shard=(k, 3)))).events
             for k in range(3)]
    assert len(pipelined) == 3
    for a, b in zip(pipelined, alone):
        np.testing.assert_array_equal(a, b)


def test_host_copy_on_cpu_is_the_tensor():
    tensor = torch.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(HostCopy.start(tensor).numpy(), tensor.numpy())


@pytest.mark.slow
def test_compiled_network_gives_the_same_events(trained_run):
    compiled = TrainedModel.load(trained_run, "cpu")
    compile_networks(compiled.sampler, "default")
    plain = TrainedModel.load(trained_run, "cpu")
    a, _ = generate_events(plain, 500, 500, seed=1, sample_steps=5)
    b, _ = generate_events(compiled, 500, 500, seed=1, sample_steps=5)
    np.testing.assert_allclose(a.events, b.events, rtol=1e-4, atol=1e-4)
