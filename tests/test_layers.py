"""The layers of DESIGN.md, enforced: every import of a package module points down.

::

    app          bayesgen/__init__.py, __main__.py, app/
    validation   validation/
    engine       engine/
    bayes        bayes/
    core         core/
    plugins      plugins/   (beside the stack: core and other plugins only)

A module may import its own layer and those below it; no layer imports a plugin by name (plugins
are reached through the registry); validation measures arrays, so it imports neither training,
generation, model loading nor the Bayesian layers. The walk reads every ``import`` statement,
those inside functions and under ``TYPE_CHECKING`` too, of every module of every package that
pyproject.toml ships.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
STACK = ("core", "bayes", "engine", "validation", "app")  #: bottom to top
PLUGINS = "plugins"
#: imports a layer may not make although they point down, with the reason
FORBIDDEN = {
    "validation": {
        "bayesgen.engine.training": "validation trains nothing",
        "bayesgen.engine.generation": "validation measures generated arrays; the app generates them",
        "bayesgen.engine.model": "validation measures arrays; it loads no model",
        "bayesgen.engine.likelihood": "validation measures arrays; a model's likelihood is the engine's",
        "bayesgen.bayes": "validation measures arrays; weight draws are the engine's",
    },
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    target: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}: {self.rule}"


def layer_of(module: str) -> str | None:
    """The layer of a dotted ``bayesgen`` module name; the package itself is the app's face."""
    parts = module.split(".")
    if parts[0] != "bayesgen":
        return None
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "app"
    return parts[1] if parts[1] in (*STACK, PLUGINS) else None


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``tree``, relative ones resolved against
    ``module``; ``from bayesgen import x`` names ``bayesgen.x``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if base == "bayesgen" else base) for alias in node.names]
    return list(dict.fromkeys(found))


def check_import(source_layer: str, target: str) -> str | None:
    """The rule an import of ``target`` from a module of ``source_layer`` breaks, or None."""
    target_layer = layer_of(target)
    if target_layer is None:
        return None if target.split(".")[0] != "bayesgen" else f"{target} lies in no layer"
    if source_layer == PLUGINS:
        if target_layer not in ("core", PLUGINS):
            return f"a plugin imports core (contracts, kinematics) and other plugins only, not {target_layer}"
        return None
    if target_layer == PLUGINS:
        return f"{source_layer} imports a plugin by name; plugins are reached through the registry"
    if STACK.index(target_layer) > STACK.index(source_layer):
        return f"upward: {source_layer} may import {', '.join(STACK[:STACK.index(source_layer) + 1])} only"
    for forbidden, why in FORBIDDEN.get(source_layer, {}).items():
        if target == forbidden or target.startswith(forbidden + "."):
            return why
    return None


def package_modules(root: Path) -> dict[str, Path]:
    """Dotted name → file of every module of the packages pyproject.toml lists."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    base = {name: Path(folder) for name, folder in config["package-dir"].items()}
    modules = {}
    for package in config["packages"]:
        top, _, rest = package.partition(".")
        folder = root / base[top] / Path(*rest.split(".")) if rest else root / base[top]
        for path in sorted(folder.glob("*.py")):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def violations(root: Path) -> list[Violation]:
    """Every import of a package module of ``root`` that breaks a rule of the layers."""
    found = []
    for module, path in package_modules(root).items():
        source_layer = layer_of(module)
        relative = str(path.relative_to(root))
        if source_layer is None:
            found.append(Violation(relative, 1, module, "the module lies in no layer"))
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imported_modules(tree, module, path.stem == "__init__"):
            rule = check_import(source_layer, target)
            if rule:
                found.append(Violation(relative, line, target, rule))
    return found


def test_every_import_points_down():
    found = violations(ROOT)
    assert not found, "imports against the layers (DESIGN.md):\n" + "\n".join(map(str, found))


def test_the_walk_reads_every_layer():
    layers = {layer_of(m) for m in package_modules(ROOT)}
    assert layers == {*STACK, PLUGINS}
    assert len(package_modules(ROOT)) > 60


# --- the test of the test: a small tree with one wrong import of each kind -------------------

PYPROJECT = """
[tool.setuptools]
package-dir = {"bayesgen" = "."}
packages = ["bayesgen", "bayesgen.core", "bayesgen.engine", "bayesgen.validation", "bayesgen.plugins",
            "bayesgen.extra"]
"""
MODULES = {
    "__init__.py": "from bayesgen.app.api import train\n",
    "core/__init__.py": "",
    "core/contract.py": "from bayesgen.core.errors import ConfigError\nfrom . import errors\n",
    "core/upward.py": "import numpy\n\ndef lazy():\n    from bayesgen.engine.io import AtomicFile\n",
    "core/relative_up.py": "from ..validation import metrics\n",
    "engine/__init__.py": "",
    "engine/names_plugin.py": "from bayesgen.plugins.samplers.ddpm import GaussianDiffusion\n",
    "engine/fine.py": "from bayesgen.bayes import bayesianize\nfrom bayesgen.core import registry\n",
    "validation/__init__.py": "",
    "validation/generates.py": "from bayesgen.engine.generation import generate_events\n",
    "validation/fine.py": "from bayesgen.engine.io import AtomicFile\n",
    "plugins/__init__.py": "",
    "plugins/measures.py": "from bayesgen.validation.metrics import wasserstein_1d\n",
    "plugins/fine.py": "from bayesgen.core.kinematics import wrap_phi\nfrom bayesgen.plugins import fine\n",
    "extra/__init__.py": "",
}


def test_a_wrong_import_of_each_kind_is_caught(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    for name, text in MODULES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = {(v.module, v.target): v for v in violations(tmp_path)}
    assert set(found) == {("core/upward.py", "bayesgen.engine.io"), ("core/relative_up.py", "bayesgen.validation"),
                          ("engine/names_plugin.py", "bayesgen.plugins.samplers.ddpm"),
                          ("validation/generates.py", "bayesgen.engine.generation"),
                          ("plugins/measures.py", "bayesgen.validation.metrics"),
                          ("extra/__init__.py", "bayesgen.extra")}
    assert str(found["core/upward.py", "bayesgen.engine.io"]) == (
        "core/upward.py:4 imports bayesgen.engine.io: upward: core may import core only")
    assert "by name" in found["engine/names_plugin.py", "bayesgen.plugins.samplers.ddpm"].rule
    assert "generates" in found["validation/generates.py", "bayesgen.engine.generation"].rule
    assert "core (contracts, kinematics) and other plugins only" in found["plugins/measures.py",
                                                                         "bayesgen.validation.metrics"].rule
    assert found["extra/__init__.py", "bayesgen.extra"].rule == "the module lies in no layer"
