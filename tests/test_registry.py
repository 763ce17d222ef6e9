"""Plugin discovery through entry points, errors for unknown names, broken plugins."""
import subprocess
import sys

import pytest

import bayesgen
from bayesgen.app.cli import main
from bayesgen.core import registry
from bayesgen.core.errors import UnknownPluginError


def test_builtin_plugins_of_each_kind_are_found():
    reg = registry.registry(refresh=True)
    assert "z_mumu" in reg.plugins("processes")
    assert "mlp" in reg.plugins("backbones")
    assert "ddpm" in reg.plugins("samplers")
    assert reg.failures == []


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(UnknownPluginError) as error:
        bayesgen.get_process("z_mumuu")
    message = str(error.value)
    assert "unknown process 'z_mumuu'" in message
    assert "known: " in message and "z_mumu" in message
    assert "did you mean 'z_mumu'" in message
    with pytest.raises(UnknownPluginError, match="unknown sampler 'gan'; known: .*ddpm"):
        bayesgen.get_sampler("gan")
    with pytest.raises(UnknownPluginError, match="unknown backbone"):
        bayesgen.get_backbone("resnet")


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="known kinds"):
        registry.registry().plugins("widgets")


def test_third_party_process_is_picked_up_by_python_api(third_party_plugin):
    process = bayesgen.get_process("toy_gauss")
    assert process.sample(10, seed=1).shape == (10, 2)
    reg = registry.registry()
    failures = {f.name: f.error for f in reg.failures}
    assert "brokenplug" in failures and "missing dependency frobnicate" in failures["brokenplug"]
    assert "z_mumu" in reg.plugins("processes"), "a broken plugin must not stop the others"


def test_third_party_process_is_listed_by_cli(third_party_plugin, capsys):
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "toy_gauss" in captured.out and "third-party test process" in captured.out
    assert "failed to load plugin 'brokenplug'" in captured.err


def test_console_script_lists_third_party_plugin(third_party_plugin):
    result = subprocess.run([sys.executable, "-m", "bayesgen", "plugins"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "toy_gauss" in result.stdout and "z_mumu" in result.stdout and "ddpm" in result.stdout


def test_third_party_process_trains_through_cli(third_party_plugin, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--process", "toy_gauss", "--steps", "5", "--events", "512",
                 "--batch-size", "128", "--out", str(run)]) == 0
    assert (run / "checkpoint.pt").is_file()


def test_clashing_plugin_names_are_reported(third_party_plugin):
    (third_party_plugin / "clashplug.py").write_text(
        "from bayesgen.core.hooks import hookimpl\n"
        "from toyplug import ToyGauss\n"
        "@hookimpl\ndef bayesgen_processes():\n    return {'toy_gauss': ToyGauss}\n")
    info = third_party_plugin / "clashplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clashplug\nVersion: 0.1\n")
    (third_party_plugin / "clashmlp.py").write_text("")
    (info / "entry_points.txt").write_text("[bayesgen]\nclashplug = clashplug\nmlp = clashmlp\n")
    with pytest.warns(UserWarning, match="entry-point name 'mlp' is used by two packages"):
        reg = registry.registry(refresh=True)
    assert "mlp" in reg.plugins("backbones"), "the built-in backbone must survive a clash"
    with pytest.warns(UserWarning, match="process 'toy_gauss' is provided by both"):
        reg.plugins("processes")
