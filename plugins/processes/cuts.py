"""Event-level selections: expressions on branches, e.g. ``Type == 'GG' and Q1 * Q2 < 0``, and
event identities (run and event numbers) for splitting and de-duplicating.

An expression is parsed with :mod:`ast` and evaluated node by node over the arrays of one
chunk; nothing is handed to ``eval``. Allowed: branch names (Python identifiers), numbers,
strings, ``True``/``False``; ``+ - * / // % **``; comparisons (chained ones too, ``20 < pt1 < 100``),
``in`` / ``not in`` a list of constants; ``and``, ``or``, ``not`` (element by element; ``&``, ``|``,
``~`` too); and the functions in :data:`FUNCTIONS`. Branches must hold one value per event
(numbers or strings).
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import awkward as ak
import numpy as np

from bayesgen.core.errors import ConfigError, DataError

#: functions a cut may call, applied element by element
FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs, "sqrt": np.sqrt, "log": np.log, "exp": np.exp, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "arcsinh": np.arcsinh,
    "arctan2": np.arctan2, "hypot": np.hypot}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: np.logical_not, ast.Invert: np.logical_not}


class Cut:
    """A parsed selection ``expression``; :attr:`branches` are the names it reads."""

    def __init__(self, expression: str, where: str = "cut"):
        self.expression, self.where = expression, where
        if not isinstance(expression, str):
            raise ConfigError(f"{where} must be an expression in a string, e.g. \"Type == 'GG'\", "
                              f"got {expression!r}")
        try:
            self.tree = ast.parse(expression.strip(), mode="eval").body
        except SyntaxError as error:
            raise ConfigError(f"{where} = {expression!r} is not a valid expression: {error.msg}") from None
        self.branches: list[str] = []
        self._check(self.tree)

    def _refuse(self, node: ast.AST, what: str) -> ConfigError:
        return ConfigError(f"{self.where} = {self.expression!r}: {what} ({ast.unparse(node)!r}) is not allowed; "
                           "use branch names, numbers, strings, arithmetic, comparisons, and/or/not, "
                           f"`in [...]` and the functions {', '.join(FUNCTIONS)}")

    def _check(self, node: ast.AST) -> None:
        """Accept only the node types that :meth:`_value` evaluates; collect the branch names."""
        if isinstance(node, ast.Name):
            if node.id not in self.branches:
                self.branches.append(node.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (bool, int, float, str)):
                raise self._refuse(node, "this constant")
        elif isinstance(node, ast.BoolOp | ast.BinOp | ast.UnaryOp):
            operators = {ast.BoolOp: (ast.And, ast.Or), ast.BinOp: tuple(_BINARY), ast.UnaryOp: tuple(_UNARY)}
            if not isinstance(node.op, operators[type(node)]):
                raise self._refuse(node, f"the operator {type(node.op).__name__}")
            for child in ([node.left, node.right] if isinstance(node, ast.BinOp) else
                          [node.operand] if isinstance(node, ast.UnaryOp) else node.values):
                self._check(child)
        elif isinstance(node, ast.Compare):
            self._check(node.left)
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, ast.In | ast.NotIn):
                    if not (isinstance(right, ast.List | ast.Tuple | ast.Set)
                            and all(isinstance(e, ast.Constant) for e in right.elts)):
                        raise self._refuse(right, "`in` takes a list of constants; this")
                elif type(op) in _COMPARE:
                    self._check(right)
                else:
                    raise self._refuse(node, f"the comparison {type(op).__name__}")
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords:
                raise self._refuse(node, "this call")
            for argument in node.args:
                self._check(argument)
        else:
            raise self._refuse(node, f"a {type(node).__name__}")

    def mask(self, arrays: Mapping[str, Any], n: int) -> np.ndarray:
        """Which of the ``n`` events ``(n,)`` pass, from the chunk's ``arrays`` (branch → (n,))."""
        with np.errstate(all="ignore"):
            result = self._value(self.tree, arrays)
        if isinstance(result, (bool, np.bool_)):
            return np.full(n, bool(result))
        result = np.asarray(ak.to_numpy(result) if isinstance(result, ak.Array) else result)
        if result.dtype != bool:
            raise ConfigError(f"{self.where} = {self.expression!r} gives {result.dtype} values, not true/false; "
                              "write a condition, e.g. a comparison")
        return result

    def _value(self, node: ast.AST, arrays: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Name):
            return arrays[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            values = [self._value(v, arrays) for v in node.values]
            result = values[0]
            for value in values[1:]:
                result = combine(result, value)
            return result
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._value(node.left, arrays), self._value(node.right, arrays))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._value(node.operand, arrays))
        if isinstance(node, ast.Compare):
            left, result = self._value(node.left, arrays), True
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, ast.In | ast.NotIn):
                    hits = False
                    for element in right.elts:
                        hits = np.logical_or(hits, left == element.value)
                    step = np.logical_not(hits) if isinstance(op, ast.NotIn) else hits
                else:
                    right_value = self._value(right, arrays)
                    step, left = _COMPARE[type(op)](left, right_value), right_value
                result = np.logical_and(result, step)
            return result
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(self._value(a, arrays) for a in node.args))
        raise DataError(f"{self.where}: cannot evaluate {ast.unparse(node)!r}")  # _check refuses these


def identity_keys(columns: list[np.ndarray], where: str) -> np.ndarray:
    """One ``uint64`` per event ``(n,)`` from integer columns ``(n,)`` each (e.g. run and event
    numbers): a splitmix64 chain, so equal tuples give equal keys and different ones collide
    with a probability of about 2⁻⁶⁴ per pair."""
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.uint64)
    for column in columns:
        values = np.asarray(column)
        if values.dtype.kind == "f" and np.all(values == np.round(values)):
            values = values.astype(np.int64)
        if values.dtype.kind not in "iub":
            raise DataError(f"{where} must name integer branches (run, event numbers), got {values.dtype} values")
        key = splitmix64(key ^ values.astype(np.int64).view(np.uint64))
    return key


def splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of ``uint64`` values ``(n,)``: a fixed, well-mixed bijection."""
    z = np.asarray(z, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def first_occurrences(keys: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``keys`` ``(m,)`` appear for the first time, given the sorted keys ``seen``
    before them, and the sorted keys seen after them (8 bytes an event)."""
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    first &= ~np.isin(keys, seen)
    return first, np.union1d(seen, keys)
