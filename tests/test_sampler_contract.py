"""Every registered sampler against the contract core relies on (``bayesgen/core/sampler.py``,
:func:`check_sampler`): each parameter registered once, shapes and reproducibility, the EMA of
weights following its formula, and ``--compile`` reaching the modules that sampling actually
calls; samplers that break one rule each are named with that rule."""
import pytest
import torch
from torch import nn

from bayesgen.core import registry
from bayesgen.core.backbone import BackboneInputs
from bayesgen.core.errors import ContractError
from bayesgen.core.sampler import check_sampler
from bayesgen.engine.acceleration import compile_networks
from bayesgen.engine.config import TrainConfig
from bayesgen.engine.model import build_sampler
from bayesgen.engine.training import ExponentialMovingAverage

SAMPLERS = sorted(registry.registry().plugins("samplers"))
N_FEATURES = 5
SMALL = {"ddpm": {"timesteps": 20}, "cfm": {"steps": 3}}


def small_sampler(name: str, bayesian: bool = False, networks: list | None = None):
    """A small ``name`` sampler; every network ``make_network`` built is appended to ``networks``."""
    config = TrainConfig(sampler=name, bayesian=bayesian, backbone_options={"width": 16, "depth": 1},
                         sampler_options=SMALL.get(name, {}))
    torch.manual_seed(0)
    sampler = build_sampler(config, N_FEATURES)
    if networks is not None:
        backbone = registry.get_backbone(config.backbone)
        networks.extend(m for m in sampler.modules() if type(m) is backbone)
    return sampler


def test_the_registry_holds_the_built_in_samplers():
    assert {"ddpm", "cfm", "inn", "ar"} <= set(SAMPLERS)


@pytest.mark.parametrize("bayesian", [False, True])
@pytest.mark.parametrize("name", SAMPLERS)
def test_every_registered_sampler_meets_its_contract(name, bayesian):
    for n_conditions in (0, 3):
        config = TrainConfig(sampler=name, bayesian=bayesian, backbone_options={"width": 16, "depth": 1},
                             sampler_options=SMALL.get(name, {}))
        torch.manual_seed(0)
        check_sampler(build_sampler(config, N_FEATURES, BackboneInputs(n_conditions)), f"the sampler {name!r}",
                      n_conditions)


def broken(kind: str):
    """A small ddpm sampler with one rule broken."""
    sampler = small_sampler("ddpm")
    if kind == "outside":
        sampler.extra = nn.Linear(2, 2)
    elif kind == "twice":
        sampler.alias = sampler.network
    elif kind == "slots":
        sampler.sampling_networks = lambda: [(sampler, "n_features")]
    elif kind == "global noise":
        sample = sampler.sample
        sampler.sample = lambda n, cond=None, steps=None, solver=None, generator=None: sample(n, cond, steps, solver)
    return sampler


@pytest.mark.parametrize("kind,rule", [
    ("outside", "every parameter must lie in network, where --bayesian and the checkpoints find it"),
    ("twice", "a tensor is registered under two names (the EMA of weights would average it twice)"),
    ("slots", "sampling_networks names DDPM.n_features, which is no module of the sampler"),
    ("global noise", "sample must draw from the generator only (the same state, the same events)"),
])
def test_a_broken_sampler_is_named_with_the_rule(kind, rule):
    check_sampler(small_sampler("ddpm"), "the sampler 'ddpm'")
    with pytest.raises(ContractError) as error:
        check_sampler(broken(kind), "the sampler 'broken'")
    assert str(error.value) == f"the sampler 'broken' breaks the sampler contract: {rule}"


@pytest.mark.parametrize("bayesian", [False, True])
@pytest.mark.parametrize("name", SAMPLERS)
def test_every_tensor_is_registered_once(name, bayesian):
    sampler = small_sampler(name, bayesian)
    state = sampler.state_dict()
    pointers = [t.data_ptr() for t in state.values() if t.numel()]
    assert len(pointers) == len(set(pointers)), "a tensor appears under two names in state_dict"
    n_parameters = sum(1 for k in state if any(k == n for n, _ in sampler.named_parameters()))
    assert n_parameters == len(list(sampler.parameters())) > 0
    assert {id(p) for p in sampler.network.parameters()} == {id(p) for p in sampler.parameters()}


@pytest.mark.parametrize("bayesian", [False, True])
@pytest.mark.parametrize("name", SAMPLERS)
def test_two_optimiser_steps_move_the_ema_by_its_formula(name, bayesian):
    """θ̄ ← d θ̄ + (1 − d) θ after each step k, with the warm-up d = min(decay, (1 + k)/(10 + k)):
    d = 0.1, then 2/11. A tensor registered twice is interpolated twice (d² instead of d)."""
    sampler = small_sampler(name, bayesian)
    ema = ExponentialMovingAverage(sampler, decay=0.999)
    optimizer = torch.optim.AdamW(sampler.parameters(), lr=1e-2)
    expected = {k: v.clone() for k, v in sampler.state_dict().items()}
    generator = torch.Generator().manual_seed(1)
    for step in range(2):
        loss = sampler.loss(torch.randn(64, N_FEATURES, generator=generator), generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(sampler, step)
        decay = min(0.999, (1 + step) / (10 + step))
        for key, value in sampler.state_dict().items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value
    moved = 0
    for key, value in ema.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=key)
        moved += not torch.equal(value, sampler.state_dict()[key])
    assert moved > 0


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_gradient_step_lowers_the_loss_on_the_same_batch(name):
    """Every parameter is in the loss's graph, and its gradient points uphill (the output layers
    start at zero, so the others' gradients may vanish at the first step)."""
    sampler = small_sampler(name)
    x = torch.randn(256, N_FEATURES, generator=torch.Generator().manual_seed(2))
    before = sampler.loss(x, generator=torch.Generator().manual_seed(0))
    before.backward()
    assert all(p.grad is not None for p in sampler.parameters())
    with torch.no_grad():
        for p in sampler.parameters():
            p -= 1e-3 * p.grad
    after = sampler.loss(x, generator=torch.Generator().manual_seed(0))  # the same noise
    assert after.item() < before.item()


class CountingCompiled(nn.Module):
    """Stands in for torch.compile's OptimizedModule: counts the calls that pass through it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("name", SAMPLERS)
def test_compile_reaches_every_network_that_sampling_calls(name, monkeypatch):
    networks: list[nn.Module] = []
    sampler = small_sampler(name, networks=networks).eval()
    wrapped: list[CountingCompiled] = []
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: wrapped.append(CountingCompiled(module))
                        or wrapped[-1])
    calls = [0]
    for network in networks:
        network.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    compile_networks(sampler, "default")
    assert wrapped, "--compile compiled nothing"
    x = sampler.sample(8, generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, N_FEATURES)
    assert calls[0] > 0
    assert sum(w.calls for w in wrapped) == calls[0], "some network calls bypass the compiled modules"
    assert all(w.calls > 0 for w in wrapped), "a compiled module is never called"
    compile_networks(sampler, "none")
    assert len(wrapped) == len(sampler.sampling_networks())


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLERS)
def test_real_compile_is_called_and_changes_no_event(name):
    """With torch.compile itself (about 30 s per sampler on a CPU): the compiled modules are the
    ones sampling calls, and the events are those of the eager sampler."""
    from torch._dynamo.eval_frame import OptimizedModule

    sampler = small_sampler(name).eval()
    eager = sampler.sample(64, generator=torch.Generator().manual_seed(0))
    compile_networks(sampler, "default")
    compiled = [m for m in sampler.modules() if isinstance(m, OptimizedModule)]
    calls = [0]
    for module in compiled:
        module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    again = sampler.sample(64, generator=torch.Generator().manual_seed(0))
    assert len(compiled) == len(sampler.sampling_networks()) and calls[0] > 0
    torch.testing.assert_close(again, eager, rtol=1e-4, atol=1e-4)
