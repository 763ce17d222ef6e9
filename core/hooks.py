"""Hook specifications for the three kinds of plugin, in pluggy's style.

A plugin is a module (or object) registered under the entry-point group ``bayesgen``. It
implements one or more of the hooks below with the module-level :data:`hookimpl` marker::

    from bayesgen.core.hooks import hookimpl

    @hookimpl
    def bayesgen_processes():
        return {"w_munu": WMuNu}

Each hook returns a mapping from a plugin name to its factory. The first line of the
factory's docstring (or its ``description`` attribute) is what ``bayesgen plugins`` shows.
"""
from __future__ import annotations

from typing import Callable, Mapping

import pluggy

PROJECT = "bayesgen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bayesgen_processes() -> Mapping[str, Callable]:
    """Processes: name → class or factory returning a :class:`bayesgen.core.process.Process`."""


@hookspec
def bayesgen_backbones() -> Mapping[str, Callable]:
    """Backbones: name → ``factory(in_features, out_features=None, cond_features=0,
    feature_shape=None, **options)`` returning an ``nn.Module`` computing ``f(x, t, cond)`` of the
    shape of ``x`` (the contract: :mod:`bayesgen.core.backbone`)."""


@hookspec
def bayesgen_samplers() -> Mapping[str, Callable]:
    """Samplers: name → ``factory(make_network, n_features, **options)`` returning a
    :class:`bayesgen.core.sampler.Sampler`; ``make_network(in_features, out_features=None)``
    builds the configured backbone, as often as the sampler needs one."""
