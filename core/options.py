"""Options checked against what they are for, before anything is built.

A name that is not an option gets the closest valid spelling; a value of the wrong type names
its key and the type expected. The same checks serve the config dataclasses (types from their
annotations) and plugin factories (names and types from their signatures).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import numbers
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bayesgen.core.errors import ConfigError


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_names(names: Iterable[str], known: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` for the first of ``names`` not in ``known``, with the closest
    valid name and the full list."""
    known = sorted(known)
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown option {name!r} {where}{did_you_mean(name, known)}; "
                              f"valid: {', '.join(known) or 'none'}")


_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping)
_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
          list: "a list", tuple: "a list", dict: "a table"}


def describe_type(annotation: Any) -> str:
    """Words for a type annotation: ``int | None`` → ``an integer or none``."""
    if annotation is type(None) or annotation is None:
        return "none"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        return "a list" + (f" ({describe_type(args[0])} each)" if args and args[0] is not Any else "")
    if origin in _MAPPINGS or annotation in _MAPPINGS:
        return "a table"
    if isinstance(annotation, type) and issubclass(annotation, os.PathLike):
        return "a path"
    return _WORDS.get(annotation) or getattr(annotation, "__name__", str(annotation))


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (as TOML or Python code would give it: an integer
    for a float, a string for a path, a list for a tuple); unknown annotations accept anything."""
    if annotation is Any or isinstance(annotation, (str, typing.TypeVar)):
        return True
    if annotation is type(None) or annotation is None:
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if isinstance(annotation, type) and issubclass(annotation, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is ...) else Any
        return all(matches(v, item) for v in value)
    if origin in _MAPPINGS or annotation in _MAPPINGS:
        return isinstance(value, Mapping)
    if origin is collections.abc.Callable or annotation is Callable:
        return callable(value)
    return True


def check_value(key: str, value: Any, annotation: Any, where: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``value`` does not fit ``annotation``."""
    if not matches(value, annotation):
        raise ConfigError(f"{key} {where} must be {describe_type(annotation)}, got {value!r} ({_WORDS.get(type(value), type(value).__name__)})")


def type_hints(target: Any) -> dict[str, Any]:
    """Evaluated annotations of a dataclass, function or class constructor (none if they
    cannot be evaluated, e.g. a name imported only for type checkers)."""
    try:
        return typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    except Exception:  # noqa: BLE001 - a plugin's annotations are its own business
        return {}


def check_fields(config: Any) -> None:
    """Check every field of a config dataclass against its annotation; a path given for a
    string option (``out``) becomes that string."""
    hints = type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, os.PathLike) and matches("", hints.get(f.name)):
            setattr(config, f.name, value := os.fspath(value))
        if f.name in hints:
            check_value(f.name, value, hints[f.name], f"(option of {type(config).__name__})")


def check_plugin_options(label: str, factory: Callable, options: Mapping[str, Any],
                         supplied: Iterable[str] = (), positional: int = 0, table: str = "") -> None:
    """Check a plugin's options against the signature of its ``factory`` before calling it:
    every name must be one of its keyword parameters (other than the ``positional`` leading ones
    and the ``supplied`` ones that core passes), every required one given (in ``table`` of the
    user's TOML), every value must fit its annotation."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    supplied = set(supplied)
    valid = {p.name: p for p in parameters[positional:]
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in supplied}
    check_names(options, valid, f"for {label}")
    missing = [name for name, p in valid.items() if p.default is p.empty and name not in options]
    if missing:
        raise ConfigError(f"{label} needs the option(s) {', '.join(missing)}"
                          + (f"; give them in {table} of the --config file" if table else ""))
    hints = type_hints(factory)
    for name, value in options.items():
        if name in hints:
            check_value(name, value, hints[name], f"(option of {label})")
