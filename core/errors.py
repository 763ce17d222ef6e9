"""Exceptions raised for bad input; the CLI prints each as one line."""


class BayesgenError(Exception):
    """Base class for every error the user can fix."""


class UnknownPluginError(BayesgenError, KeyError):
    """A process, backbone or sampler name that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(BayesgenError, ValueError):
    """Event data that cannot be used (non-finite values, wrong shape)."""


class RunError(BayesgenError):
    """A run directory or checkpoint that cannot be used."""


class ConfigError(BayesgenError, ValueError):
    """An option with an invalid value."""


class PluginError(BayesgenError):
    """A plugin that failed on its own: a fault in the plugin, not in the user's options."""


class ContractError(PluginError):
    """A plugin that breaks the contract of its base class (:mod:`bayesgen.core.process`,
    :mod:`bayesgen.core.sampler`, :mod:`bayesgen.core.backbone`); the message names the plugin
    and the rule."""
