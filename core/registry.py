"""The one plugin manager: discovers processes, backbones and samplers through entry points."""
from __future__ import annotations

import difflib
import importlib.metadata
import warnings
from dataclasses import dataclass, field
from typing import Callable

import pluggy

from bayesgen.core import hooks
from bayesgen.core.errors import UnknownPluginError

KINDS = ("processes", "backbones", "samplers")


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that could not be loaded."""

    name: str
    error: str


def describe(factory: Callable) -> str:
    """One-line description of a plugin factory: its ``description``, else the first paragraph of
    its docstring joined into one line."""
    text = getattr(factory, "description", None) or (factory.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in text.splitlines()).replace("``", "")


@dataclass
class Registry:
    """Plugins of every kind, gathered from a :class:`pluggy.PluginManager`."""

    manager: pluggy.PluginManager
    failures: list[PluginFailure] = field(default_factory=list)

    @classmethod
    def from_entry_points(cls, group: str = hooks.PROJECT) -> "Registry":
        """Load every entry point of ``group``; a failing one is recorded, not fatal."""
        manager = pluggy.PluginManager(hooks.PROJECT)
        manager.add_hookspecs(hooks)
        failures = []
        seen: set[str] = set()  # modules already registered (a package may be found twice on sys.path)
        for entry_point in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if entry_point.value in seen:
                continue
            seen.add(entry_point.value)
            name = entry_point.name
            if manager.has_plugin(name):
                name = f"{entry_point.dist.name if entry_point.dist else entry_point.value}:{name}"
                warnings.warn(f"entry-point name {entry_point.name!r} is used by two packages; "
                              f"registering {entry_point.value} as {name!r}", stacklevel=2)
            try:
                manager.register(entry_point.load(), name=name)
            except Exception as error:  # noqa: BLE001 - a broken plugin must not stop the rest
                failures.append(PluginFailure(entry_point.name, f"{type(error).__name__}: {error}"))
        return cls(manager, failures)

    def plugins(self, kind: str) -> dict[str, Callable]:
        """Name → factory for one kind (``processes``, ``backbones`` or ``samplers``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; known kinds: {', '.join(KINDS)}")
        found: dict[str, Callable] = {}
        owners: dict[str, str] = {}
        for implementation in getattr(self.manager.hook, f"bayesgen_{kind}").get_hookimpls():
            for name, factory in (implementation.function() or {}).items():
                if name in owners:
                    warnings.warn(f"{kind[:-1] if kind != 'processes' else 'process'} {name!r} is provided by "
                                  f"both {owners[name]!r} and {implementation.plugin_name!r}; using the first",
                                  stacklevel=2)
                    continue
                found[name], owners[name] = factory, implementation.plugin_name
        return dict(sorted(found.items()))

    def get(self, kind: str, name: str) -> Callable:
        """The factory called ``name``; :class:`UnknownPluginError` lists the known ones."""
        known = self.plugins(kind)
        if name in known:
            return known[name]
        singular = kind[:-1] if kind != "processes" else "process"
        message = f"unknown {singular} {name!r}; known: {', '.join(known) or 'none'}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        failed = [f.name for f in self.failures]
        if failed:
            message += f"; plugins that failed to load: {', '.join(failed)}"
        raise UnknownPluginError(message)


_registry: Registry | None = None


def registry(refresh: bool = False) -> Registry:
    """The shared registry, built on first use; ``refresh`` re-reads the entry points."""
    global _registry
    if _registry is None or refresh:
        importlib.invalidate_caches()
        _registry = Registry.from_entry_points()
    return _registry


def get_process(name: str, **options):
    """Instantiate the process called ``name``."""
    return registry().get("processes", name)(**options)


def get_backbone(name: str) -> Callable:
    """The backbone factory called ``name``."""
    return registry().get("backbones", name)


def get_sampler(name: str) -> Callable:
    """The sampler factory called ``name``."""
    return registry().get("samplers", name)
