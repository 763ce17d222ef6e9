"""Options: every key and value checked with a message that says the fix, plugin options against
the plugin's signature, plugin faults told apart from user mistakes, defaults per process."""
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from bayesgen.app.cli import describe_error, main
from bayesgen.core import registry
from bayesgen.core.backbone import BackboneInputs
from bayesgen.core.errors import ConfigError, PluginError
from bayesgen.core.hooks import hookimpl
from bayesgen.engine.config import CompareConfig, GenerateConfig, TrainConfig, build
from bayesgen.engine.model import build_process, build_sampler

TINY = ["--steps", "2", "--events", "512", "--batch-size", "256"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bayesgen: error: "), err
    return err[0]


def run_toml(tmp_path, capsys, text: str) -> str:
    config = tmp_path / "c.toml"
    config.write_text(text)
    assert main(["train", *TINY[2:], "--out", str(tmp_path / "run"), "--config", str(config)]) == 2
    assert not (tmp_path / "run").exists()
    return error_line(capsys)


@pytest.mark.parametrize("text,expected", [
    ("stesp = 30\n", "unknown option 'stesp' in"),                       # a top-level typo
    ("[train]\nbatch_sise = 30\n", "unknown option 'batch_sise' in [train] of"),
    ("[trian]\nsteps = 3\n", "unknown table [trian] in"),                  # a misspelled table
    ("[validate]\nsample_step = 3\n", "unknown option 'sample_step' in [validate]"),  # checked for train too
])
def test_unknown_toml_keys_anywhere_name_the_closest_valid_one(tmp_path, capsys, text, expected):
    line = run_toml(tmp_path, capsys, text)
    assert expected in line and "did you mean" in line
    typo = expected.split("'")[1] if "'" in expected else "trian"
    suggestion = line.split("did you mean '")[1].split("'")[0]
    assert suggestion in {"steps", "batch_size", "train", "sample_steps"} and suggestion != typo
    # followed, the suggestion works
    (tmp_path / "c.toml").write_text(text.replace(typo, suggestion).replace("30", "256"))
    assert main(["train", *TINY, "--out", str(tmp_path / "run"), "--config", str(tmp_path / "c.toml")]) == 0


@pytest.mark.parametrize("text,expected", [
    ('steps = "twenty"\n', "steps (option of TrainConfig) must be an integer, got 'twenty' (a string)"),
    ("[train]\nlr = true\n", "lr (option of TrainConfig) must be a number, got True (true or false)"),
    ("[train]\nbayesian = 1\n", "bayesian (option of TrainConfig) must be true or false, got 1"),
    ("[train]\nprocess_options = 3\n", "process_options (option of TrainConfig) must be a table, got 3"),
    ("[train]\nsteps = 2.5\n", "steps (option of TrainConfig) must be an integer, got 2.5"),
])
def test_ill_typed_values_name_the_key_and_the_type(tmp_path, capsys, text, expected):
    line = run_toml(tmp_path, capsys, text)
    assert expected in line
    assert not any(word in line for word in ("TypeError", "not supported between", "IndexError", "KeyError"))


def test_a_number_for_a_float_and_a_path_for_out_are_fine(tmp_path):
    config = build(TrainConfig, {"lr": 1, "out": tmp_path / "run"})
    assert config.lr == 1 and config.out == str(tmp_path / "run")
    assert build(GenerateConfig, {"sample_steps": None}).sample_steps is None


@pytest.mark.parametrize("table,text,expected", [
    ("sampler_options", "timestep = 10", "unknown option 'timestep' for the sampler 'ddpm' (did you mean 'timesteps'?)"),
    ("backbone_options", "widht = 16", "unknown option 'widht' for the backbone 'mlp' (did you mean 'width'?)"),
    ("backbone_options", 'width = "wide"', "width (option of the backbone 'mlp') must be an integer, got 'wide'"),
    ("process_options", "top_fractio = 0.2", "unknown option 'top_fractio' for the process 'z_mumu'"),
    ("bayes_options", 'prior_std = "one"', "prior_std (option of the bayes 'bayesianize') must be a number"),
    ("backbone_options", "cond_features = 3", "unknown option 'cond_features' for the backbone 'mlp'"),
])
def test_plugin_options_are_checked_against_the_signature(tmp_path, capsys, table, text, expected):
    flags = ["--bayesian"] if table == "bayes_options" else []
    config = tmp_path / "c.toml"
    config.write_text(f"[train.{table}]\n{text}\n")
    assert main(["train", *TINY, *flags, "--out", str(tmp_path / "run"), "--config", str(config)]) == 2
    assert expected in error_line(capsys)


def test_a_missing_required_option_is_the_users_to_give(tmp_path, capsys):
    assert main(["train", "--process", "lhe_file", "--out", str(tmp_path / "run")]) == 2
    assert error_line(capsys).endswith("the process 'lhe_file' needs the option(s) path; give them in "
                                       "[train.process_options] of the --config file")


def test_plugin_signatures_accept_their_own_options():
    sampler = build_sampler(TrainConfig(sampler="ddpm", sampler_options={"timesteps": 20, "schedule": "cosine"},
                                        backbone_options={"width": 8, "depth": 1, "embed_dim": 8}), 5)
    assert sampler.diffusion.timesteps == 20
    unet = TrainConfig(process="jet_images", backbone="unet",
                       backbone_options={"channels": 8, "channel_mults": [1, 2], "groups": 4})  # a list for a tuple
    assert build_sampler(unet, 3 * 32 * 32, BackboneInputs(2, (3, 32, 32))) is not None


class Clumsy:
    """A sampler whose author made a mistake: it fails inside its own constructor."""

    def __init__(self, make_network, n_features, depth: int = 2):
        [][depth]  # noqa: B018 - the plugin's own bug


@pytest.fixture
def clumsy_plugin():
    plugin = SimpleNamespace(bayesgen_samplers=hookimpl(lambda: {"clumsy": Clumsy}))
    registry.registry().manager.register(plugin, name="test-clumsy")
    yield "clumsy"
    registry.registry().manager.unregister(plugin)


def test_a_fault_inside_a_plugin_is_reported_as_the_plugins(tmp_path, capsys, clumsy_plugin, monkeypatch):
    args = ["train", "--sampler", clumsy_plugin, *TINY, "--out", str(tmp_path / "run")]
    assert main(args) == 2
    line = error_line(capsys)
    assert ("the sampler 'clumsy' failed while being built with options {}: IndexError: list index out of range "
            "(a fault in the sampler 'clumsy', not in your options; BAYESGEN_DEBUG=1 shows the traceback)") in line
    with pytest.raises(PluginError) as error:
        build_sampler(TrainConfig(sampler=clumsy_plugin), 5)
    assert isinstance(error.value.__cause__, IndexError)  # the traceback is kept for BAYESGEN_DEBUG
    monkeypatch.setenv("BAYESGEN_DEBUG", "1")
    with pytest.raises(PluginError):
        main(args)
    # a user's typo in its options is still the user's
    with pytest.raises(ConfigError, match=r"unknown option 'deep' for the sampler 'clumsy' \(did you mean 'depth'"):
        build_sampler(TrainConfig(sampler=clumsy_plugin, sampler_options={"deep": 3}), 5)


def test_bugs_are_labelled_as_bugs_never_as_input_problems():
    try:
        [][0]
    except IndexError as error:
        line = describe_error(error)
    assert line.startswith("internal error: IndexError in ") and "a bug, not a problem with your input" in line
    assert describe_error(ConfigError("--steps must be positive")) == "--steps must be positive"
    assert describe_error(FileNotFoundError(2, "No such file", "x.root")) == "[Errno 2] No such file: 'x.root'"


def test_help_shows_every_default_and_no_internals():
    for command in ("train", "generate", "validate", "compare"):
        result = subprocess.run([sys.executable, "-m", "bayesgen", command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "MISSING" not in result.stdout and "dataclasses" not in result.stdout
        assert "random seed (default:" in " ".join(result.stdout.split()), command
        assert "--threads" in result.stdout
    train_help = " ".join(subprocess.run([sys.executable, "-m", "bayesgen", "train", "--help"],
                                         capture_output=True, text=True).stdout.split())
    for flag, default in [("--ema-decay", "0.999"), ("--warmup-steps", "100"), ("--weight-decay", "0.0"),
                          ("--checkpoint-every", "500")]:
        assert flag in train_help and f"(default: {default})" in train_help.split(flag, 2)[2][:200]
    assert "Each sampler brings its recipe" in train_help and "a process may set its own defaults" in train_help


def test_training_options_from_flags(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[train.backbone_options]\nwidth = 8\ndepth = 1\n")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--config", str(config), "--ema-decay", "0.9",
                 "--warmup-steps", "1", "--weight-decay", "0.01", "--checkpoint-every", "1", "--threads", "1"]) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=True)["config"]
    assert (saved["ema_decay"], saved["warmup_steps"], saved["weight_decay"], saved["checkpoint_every"]) == \
        (0.9, 1, 0.01, 1)


def test_threads_option_sets_torchs_threads():
    before = torch.get_num_threads()
    try:
        from bayesgen.app.api import configure

        configure(GenerateConfig, {"threads": 1})
        assert torch.get_num_threads() == 1
        with pytest.raises(ConfigError, match="--threads must be positive"):
            configure(GenerateConfig, {"threads": 0})
    finally:
        torch.set_num_threads(before)


def test_processes_bring_their_own_training_defaults_and_options_override_them():
    cloud = build(TrainConfig, {"process": "ecal_cloud"})
    assert (cloud.backbone, cloud.batch_size, cloud.events, cloud.steps) == ("transformer", 64, 20_000, 2000)
    assert cloud.backbone_options == {"width": 64, "depth": 2, "heads": 4, "fourier_features": 32}
    assert cloud.sampler_options == {"schedule": "cosine", "prediction": "v"}
    # the TOML or a flag wins, key by key for plugin options; another plugin gets none of them
    mine = build(TrainConfig, {"process": "ecal_cloud", "backbone_options": {"width": 32}}, {"steps": 7})
    assert mine.backbone_options == {"width": 32, "depth": 2, "heads": 4, "fourier_features": 32} and mine.steps == 7
    flat = build(TrainConfig, {"process": "ecal_cloud", "backbone": "mlp", "sampler": "cfm"})
    recipe = registry.get_sampler("cfm").training_defaults  # the mlp gets the sampler's recipe, not the transformer's options
    assert flat.backbone_options == recipe.get("backbone_options", {}).get("mlp", {})
    assert flat.sampler_options == recipe.get("sampler_options", {}) and flat.batch_size == 64
    assert build(TrainConfig, {}).batch_size == TrainConfig().batch_size == 1024  # z_mumu keeps the global ones
    compare = build(CompareConfig, {"process": "jet_images", "samplers": "ddpm,cfm"})
    assert (compare.backbone, compare.train_events, compare.batch_size) == ("unet", 20_000, 32)
    assert compare.sampler_options == {"ddpm": {"schedule": "cosine", "prediction": "v"}}
    # a compare label that names its sampler gets that sampler's defaults
    labelled = build(CompareConfig, {"process": "jet_images", "samplers": "ddpm_learned_sigma",
                                     "sampler_options": {"ddpm_learned_sigma": {"sampler": "ddpm", "learn_sigma": True}}})
    assert labelled.sampler_options == {"ddpm_learned_sigma": {"schedule": "cosine", "prediction": "v",
                                                               "sampler": "ddpm", "learn_sigma": True}}


RECIPE = {"steps": 123, "lr": 4e-4, "batch_size": 2048, "warmup_steps": 7, "ema_decay": 0.99,
          "backbone_options": {"mlp": {"width": 48, "depth": 5}, "transformer": {"heads": 2}},
          "sampler_options": {"timesteps": 300, "schedule": "cosine"}}


def test_a_sampler_recipe_lies_under_the_process_defaults_and_the_users_options(monkeypatch, tmp_path):
    from bayesgen.plugins.samplers.cfm import ConditionalFlowMatching
    from bayesgen.plugins.samplers.ddpm import DDPM

    monkeypatch.setattr(DDPM, "training_defaults", RECIPE)
    plain = build(TrainConfig, {"sampler": "ddpm"})
    assert (plain.steps, plain.lr, plain.batch_size, plain.warmup_steps, plain.ema_decay) == (123, 4e-4, 2048, 7, 0.99)
    assert plain.backbone_options == {"width": 48, "depth": 5}
    assert plain.sampler_options == {"timesteps": 300, "schedule": "cosine"}
    assert build(TrainConfig, {"sampler": "cfm"}).lr == TrainConfig.lr   # another sampler's recipe
    # the process's defaults win over the recipe, key by key in plugin options
    cloud = build(TrainConfig, {"process": "ecal_cloud", "sampler": "ddpm"})
    assert (cloud.steps, cloud.batch_size, cloud.lr) == (2000, 64, 4e-4)
    assert cloud.backbone_options == {"width": 64, "depth": 2, "heads": 4, "fourier_features": 32}
    assert cloud.sampler_options == {"timesteps": 300, "schedule": "cosine", "prediction": "v"}
    # the user's options win over both
    mine = build(TrainConfig, {"sampler": "ddpm", "sampler_options": {"schedule": "linear"}}, {"lr": 1e-2})
    assert mine.sampler_options == {"timesteps": 300, "schedule": "linear"} and mine.lr == 1e-2
    # compare trains each sampler with its own recipe unless an option is given for all
    compare = build(CompareConfig, {"samplers": "ddpm,cfm"})
    assert compare.steps is None
    ddpm, cfm = (compare.training(sampler=name, out=str(tmp_path / name)) for name in ("ddpm", "cfm"))
    assert (ddpm.steps, ddpm.lr, ddpm.sampler_options) == (123, 4e-4, RECIPE["sampler_options"])
    assert cfm.steps == ConditionalFlowMatching.training_defaults.get("steps", TrainConfig.steps)
    shared = build(CompareConfig, {"samplers": "ddpm,cfm", "steps": 50, "backbone_options": {"width": 8}})
    ddpm = shared.training(sampler="ddpm", out=str(tmp_path / "ddpm"))
    assert (ddpm.steps, ddpm.lr, ddpm.backbone_options) == (50, 4e-4, {"width": 8, "depth": 5})
    # a recipe naming an unknown option is the plugin's fault
    monkeypatch.setattr(DDPM, "training_defaults", {"stpes": 3})
    with pytest.raises(PluginError, match="sampler plugin 'ddpm' declares training defaults for unknown option"):
        build(TrainConfig, {})


def test_plugins_lists_each_sampler_recipe(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines() + [""]
    for name in ("ddpm", "cfm", "inn"):
        recipe = registry.get_sampler(name).training_defaults
        line = lines[[i for i, text in enumerate(lines) if text.strip().startswith(name)][0] + 1]
        assert bool(recipe) == ("training defaults: " in line), name
        assert all(f"{key} = " in line for key in recipe)


@pytest.mark.parametrize("process", ["ecal_cloud", "jet_images", "cloud_file"])
def test_declared_training_defaults_build_valid_models(process):
    config = build(TrainConfig, {"process": process})
    if process == "cloud_file":
        return  # its target's, checked with ecal_cloud (building it needs a file)
    target = build_process(config)
    sampler = build_sampler(config, target.n_features, BackboneInputs.of(target))
    assert sum(p.numel() for p in sampler.parameters()) < 300_000  # sized for a CPU


def test_plugins_lists_each_process_training_defaults(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cloud = lines[[i for i, line in enumerate(lines) if line.strip().startswith("ecal_cloud")][0] + 1]
    assert "training defaults: backbone = transformer, batch_size = 64" in cloud


def test_compare_sampler_options_must_be_per_sampler():
    with pytest.raises(ConfigError, match=r"one table per compared sampler \(ddpm,cfm\).*got 'timesteps'"):
        build(CompareConfig, {"samplers": "ddpm,cfm", "sampler_options": {"timesteps": 10}})
