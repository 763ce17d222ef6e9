"""The branch mapping of ``root_file``: how the branches of one tree become the quantities of a
target process (the format is described in :mod:`bayesgen.plugins.processes.root_file`).

Quantities are named ``<prefix><i>_<var>`` (``mu2_pt``), ``i`` counting objects from 1 and
``var`` one of :data:`KINEMATICS` or ``charge``. Units: GeV, radians, φ wrapped to (-π, π].
"""
from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import vector

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.kinematics import wrap_phi
from bayesgen.core.options import check_value, did_you_mean
from bayesgen.plugins.processes.cuts import Cut

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_QUANTITY = re.compile(r"^([A-Za-z]+)(\d+)_(\w+)$")
#: quantity suffix → attribute of a :mod:`vector` momentum (``charge`` is handled separately)
KINEMATICS = {"pt": "pt", "eta": "eta", "phi": "phi", "mass": "mass", "m": "mass", "px": "px",
              "py": "py", "pz": "pz", "E": "E", "e": "E", "energy": "E", "rapidity": "rapidity",
              "y": "rapidity"}
_MOMENTUM_LIKE = {"pt", "mass", "px", "py", "pz", "E"}
_UNITS = {"GeV": 1.0, "MeV": 1e-3, "TeV": 1e3}
_CARTESIAN = ("px", "py", "pz", "E")
_POLAR = ("pt", "eta", "phi")
TOP_KEYS = {"like", "tree", "weight", "momentum_unit", "cut", "split_by", "deduplicate", "order_by_pt",
            "branches", "collections"}
COLLECTION_KEYS = {*_CARTESIAN, *_POLAR, "mass", "charge", "opposite_charge", "count", "pt_min", "abs_eta_max"}


def parse_quantity(name: str) -> tuple[str, int, str] | None:
    """``"mu2_pt"`` → ``("mu", 2, "pt")``; ``None`` if ``name`` is not ``<prefix><i>_<var>``."""
    match = _QUANTITY.match(name)
    return (match[1], int(match[2]), match[3]) if match else None


def object_values(objects: Any, charges: Any, index: int, var: str) -> np.ndarray:
    """Values ``(m,)`` of ``var`` for object ``index`` (0-based) of regular-length awkward
    :mod:`vector` ``objects`` ``(m, k)``; φ wrapped to (-π, π]."""
    if var == "charge":
        return np.asarray(ak.to_numpy(charges[:, index]), dtype=np.float64)
    values = np.asarray(ak.to_numpy(getattr(objects[:, index], KINEMATICS[var])), dtype=np.float64)
    return wrap_phi(values) if var == "phi" else values


def check_keys(keys: Mapping, allowed: set[str], where: str) -> None:
    """Raise :class:`ConfigError` for the first key not in ``allowed``, with the closest one."""
    for key in keys:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {where}{did_you_mean(key, allowed)}; "
                              f"allowed: {', '.join(sorted(allowed))}")


def branch_name(value: Any, where: str) -> str:
    """``value`` if it names a branch; a clear error for anything else (a list above all)."""
    if isinstance(value, str):
        return value
    hint = (" (one branch per object belongs in a [collections.<prefix>] table, e.g. px = [\"px1\", \"px2\"])"
            if isinstance(value, list) else "")
    raise ConfigError(f"{where} must name one branch (a string), got {value!r}{hint}")


def _typed(spec: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = spec.get(key, default)
    check_value(key, value, kind, f"in {where}")
    return float(value) if kind is float else value


@dataclass(frozen=True)
class Collection:
    """Objects filling quantities ``<prefix><i>_<var>``: from a jagged collection (e.g. NanoAOD
    ``Muon_pt``, one branch per component) or from flat branches, one per object and component
    (``px = ["px1", "px2"]``)."""

    prefix: str
    branches: dict[str, str | tuple[str, ...]]   # component (px… or pt…, mass) → branch(es)
    count: int
    charge: str | tuple[str, ...] | None = None
    opposite_charge: bool = False
    pt_min: float = 0.0
    abs_eta_max: float = math.inf
    order_by_pt: bool = True

    @classmethod
    def from_dict(cls, prefix: str, spec: Any, needed: int, order_by_pt: bool = True) -> "Collection":
        where = f"[collections.{prefix}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a table of branches, got {spec!r}")
        check_keys(spec, COLLECTION_KEYS, where)
        if all(k in spec for k in _CARTESIAN):
            components = _CARTESIAN
        elif all(k in spec for k in _POLAR):
            components = tuple(k for k in (*_POLAR, "mass") if k in spec)
        else:
            raise ConfigError(f"{where} needs branches px, py, pz, E or pt, eta, phi (+ mass); it has "
                              f"{', '.join(k for k in spec if k in COLLECTION_KEYS - {'count'}) or 'none'}")
        branches = {k: cls._branches(spec[k], f"{k} in {where}") for k in components}
        charge = cls._branches(spec["charge"], f"charge in {where}") if "charge" in spec else None
        lengths = {len(b) for b in (*branches.values(), charge) if isinstance(b, tuple)}
        if lengths and (len(lengths) > 1 or any(isinstance(b, str) for b in (*branches.values(), charge))):
            raise ConfigError(f"{where} mixes jagged branches and lists of flat branches, or lists of different "
                              "lengths: give every component either one jagged branch or a list with one "
                              "flat branch per object")
        count = _typed(spec, "count", int, lengths.pop() if lengths else needed, where)
        if count < needed:
            raise ConfigError(f"{where} provides {count} objects, but the target uses {prefix}{needed}_*")
        opposite = _typed(spec, "opposite_charge", bool, False, where)
        if opposite and (count != 2 or charge is None):
            raise ConfigError(f"{where} opposite_charge needs two objects (count = 2) and a charge")
        return cls(prefix, branches, count, charge, opposite, _typed(spec, "pt_min", float, 0.0, where),
                   _typed(spec, "abs_eta_max", float, math.inf, where), order_by_pt)

    @staticmethod
    def _branches(value: Any, where: str) -> str | tuple[str, ...]:
        if isinstance(value, list) and value:
            return tuple(branch_name(v, f"each entry of {where}") for v in value)
        return branch_name(value, where)

    @property
    def all_branches(self) -> list[str]:
        names = []
        for value in (*self.branches.values(), *([self.charge] if self.charge else [])):
            names += [value] if isinstance(value, str) else list(value)
        return names

    def check_shapes(self, arrays: Any, where: str) -> None:
        """A named jagged branch must be jagged, a listed flat branch flat."""
        for component, value in (*self.branches.items(), *([("charge", self.charge)] if self.charge else [])):
            for branch in ([value] if isinstance(value, str) else value):
                depth = arrays[branch].ndim
                if isinstance(value, str) and depth == 1:
                    raise DataError(
                        f"[collections.{self.prefix}] {component} = {branch!r}: that branch {where} is flat (one "
                        "value per event), a collection needs a jagged one (values per object); for flat "
                        f"branches list one per object: {component} = [\"{branch}\", …]")
                if not isinstance(value, str) and depth != 1:
                    raise DataError(
                        f"[collections.{self.prefix}] {component} lists {branch!r}, a jagged branch {where}; "
                        f"name a jagged branch alone: {component} = \"{branch}\"")

    def _jagged(self, arrays: Any, value: str | tuple[str, ...]) -> Any:
        if isinstance(value, str):
            return arrays[value]
        columns = np.stack([np.asarray(ak.to_numpy(arrays[b]), dtype=np.float64) for b in value], axis=1)
        return ak.from_regular(ak.Array(columns))

    def describe(self) -> str:
        what = f"≥ {self.count} {self.prefix}"
        what += " with an opposite-charge pair" if self.opposite_charge else ""
        cuts = [f"pT > {self.pt_min:g} GeV"] if self.pt_min > 0 else []
        cuts += [f"|η| < {self.abs_eta_max:g}"] if math.isfinite(self.abs_eta_max) else []
        return what + (f" ({', '.join(cuts)})" if cuts else "")

    def select(self, arrays: Any, scale: float) -> tuple[np.ndarray, Any, Any]:
        """Selected-event mask ``(n,)`` and the chosen objects ``(m, count)`` (vector) and
        charges: leading first (or in file order without ``order_by_pt``)."""
        comps = {k: self._jagged(arrays, b) * (1.0 if k in ("eta", "phi") else scale)
                 for k, b in self.branches.items()}
        if "pt" in comps and "mass" not in comps:
            comps["mass"] = ak.zeros_like(comps["pt"])
        objects = vector.zip(comps)
        charges = self._jagged(arrays, self.charge) if self.charge else ak.zeros_like(objects.pt)
        good = (objects.pt > self.pt_min) & (abs(objects.eta) < self.abs_eta_max)
        objects, charges = objects[good], charges[good]
        if self.order_by_pt:
            order = ak.argsort(objects.pt, axis=1, ascending=False, stable=True)
            objects, charges = objects[order], charges[order]
        if self.opposite_charge:
            index = ak.local_index(charges)
            partner = ak.firsts(index[charges != ak.firsts(charges)])
            mask = np.asarray(ak.to_numpy(~ak.is_none(partner)))
            keep = ((index == 0) | (index == partner))[mask]
            return mask, objects[mask][keep], charges[mask][keep]
        mask = np.asarray(ak.to_numpy(ak.num(objects, axis=1) >= self.count))
        return mask, objects[mask][:, : self.count], charges[mask][:, : self.count]


def order_objects(events: np.ndarray, quantities: tuple[str, ...], prefixes: set[str]) -> np.ndarray:
    """``events`` ``(n, n_quantities)`` with the objects ``<prefix><i>_*`` of each of ``prefixes``
    reordered per event by pT, leading first (stable: ties keep their order). A prefix whose
    objects do not all have a ``pt`` and the same quantities is left as it is."""
    events = events.copy()
    for prefix in prefixes:
        objects: dict[int, dict[str, int]] = {}
        for column, name in enumerate(quantities):
            parsed = parse_quantity(name)
            if parsed and parsed[0] == prefix:
                objects.setdefault(parsed[1], {})[parsed[2]] = column
        variables = [sorted(v) for v in objects.values()]
        if len(objects) < 2 or "pt" not in variables[0] or any(v != variables[0] for v in variables):
            continue
        columns = np.array([[objects[i][v] for v in variables[0]] for i in sorted(objects)])  # (k, vars)
        block = events[:, columns]                                                            # (n, k, vars)
        order = np.argsort(-block[:, :, variables[0].index("pt")], axis=1, kind="stable")
        events[:, columns] = np.take_along_axis(block, order[:, :, None], axis=1)
    return events


@dataclass(frozen=True)
class RootMapping:
    """Parsed mapping: how the branches of one tree become a target process's quantities."""

    like: str
    tree: str | None
    weight: str | None
    scale: float
    flat: dict[str, str]
    collections: tuple[Collection, ...]
    raw: dict[str, Any]
    cut: Cut | None = None
    split_by: tuple[str, ...] = ()
    deduplicate: bool = False
    order_by_pt: bool = True

    @staticmethod
    def read(mapping: str | Path | Mapping[str, Any]) -> dict[str, Any]:
        """The mapping's table: ``mapping`` itself, or the content of the TOML file it names."""
        if isinstance(mapping, Mapping):
            return dict(mapping)
        path = Path(mapping).expanduser()
        try:
            with path.open("rb") as stream:
                return tomllib.load(stream)
        except FileNotFoundError:
            raise ConfigError(f"mapping file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"mapping = {str(mapping)!r} is a directory, not a TOML file") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"mapping file {path} is not valid TOML: {error}") from None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RootMapping":
        check_keys(raw, TOP_KEYS, "the mapping")
        if "like" not in raw:
            raise ConfigError("the mapping needs like = \"<target process>\", e.g. like = \"z_mumu\"")
        unit = raw.get("momentum_unit", "GeV")
        if unit not in _UNITS:
            raise ConfigError(f"momentum_unit = {unit!r}; use one of {', '.join(_UNITS)}")
        branches = raw.get("branches", {})
        if not isinstance(branches, Mapping):
            raise ConfigError(f"[branches] must be a table (quantity = \"branch\"), got {branches!r}")
        flat = {q: branch_name(b, f"[branches] {q}") for q, b in branches.items()}
        split_by = raw.get("split_by", [])
        split_by = [split_by] if isinstance(split_by, str) else split_by
        if not isinstance(split_by, list):
            raise ConfigError(f"split_by must list the branches that identify an event, e.g. "
                              f"[\"Run\", \"Event\"], got {split_by!r}")
        split_by = tuple(branch_name(b, "each entry of split_by") for b in split_by)
        deduplicate = _typed(raw, "deduplicate", bool, False, "the mapping")
        if deduplicate and not split_by:
            raise ConfigError("deduplicate = true needs split_by, the branches that identify an event "
                              "(e.g. split_by = [\"Run\", \"Event\"])")
        return cls(branch_name(raw["like"], "like"),
                   branch_name(raw["tree"], "tree") if "tree" in raw else None,
                   branch_name(raw["weight"], "weight") if "weight" in raw else None,
                   _UNITS[unit], flat, (), raw, Cut(raw["cut"]) if "cut" in raw else None, split_by,
                   deduplicate, _typed(raw, "order_by_pt", bool, True, "the mapping"))

    def resolve(self, quantities: tuple[str, ...]) -> "RootMapping":
        """Check that every target quantity is mapped; build the collections."""
        needed: dict[str, int] = {}
        for q in quantities:
            parsed = parse_quantity(q)
            if q in self.flat or parsed is None:
                continue
            needed[parsed[0]] = max(needed.get(parsed[0], 0), parsed[1])
        specs = self.raw.get("collections", {})
        if not isinstance(specs, Mapping):
            raise ConfigError(f"[collections] must hold one table per object kind, e.g. [collections.mu], "
                              f"got {specs!r}")
        collections = tuple(Collection.from_dict(p, specs[p], needed.get(p, 0), self.order_by_pt) for p in specs)
        missing = []
        for q in quantities:
            parsed = parse_quantity(q)
            if q in self.flat:
                continue
            if parsed is None or parsed[0] not in specs or parsed[2] not in {*KINEMATICS, "charge"}:
                missing.append(q)
            elif parsed[2] == "charge" and not specs[parsed[0]].get("charge"):
                missing.append(q)
        if missing:
            raise ConfigError(f"the mapping does not provide {', '.join(missing)} of {self.like!r} "
                              f"(quantities: {', '.join(quantities)}); add them under [branches] "
                              "or a [collections.<prefix>] table")
        extra = sorted(set(self.flat) - set(quantities))
        if extra:
            raise ConfigError(f"[branches] names {extra[0]!r}{did_you_mean(extra[0], quantities)}, not a "
                              f"quantity of {self.like!r} ({', '.join(quantities)})")
        return RootMapping(self.like, self.tree, self.weight, self.scale, self.flat, collections, self.raw,
                           self.cut, self.split_by, self.deduplicate, self.order_by_pt)

    @property
    def flat_prefixes(self) -> set[str]:
        """Object prefixes filled from [branches], reordered by pT after mapping."""
        return {parsed[0] for q in self.flat if (parsed := parse_quantity(q))}

    @property
    def branches(self) -> list[str]:
        """Every branch the mapping reads."""
        names = [*self.flat.values(), *(b for c in self.collections for b in c.all_branches)]
        names += [self.weight] if self.weight else []
        names += [*(self.cut.branches if self.cut else []), *self.split_by]
        return list(dict.fromkeys(names))

    def scaled(self, quantity: str, values: np.ndarray) -> np.ndarray:
        """A [branches] quantity's values in GeV (momenta) and (-π, π] (φ)."""
        parsed = parse_quantity(quantity)
        var = parsed[2] if parsed else quantity.rsplit("_", 1)[-1]
        if KINEMATICS.get(var) in _MOMENTUM_LIKE:
            values = values * self.scale
        return wrap_phi(values) if var == "phi" else values
