"""Process ``root_file``: events from any ROOT tree (via uproot), mapped onto a target process.

The events are read in chunks (``uproot``'s ``step_size``), so a large file never loads at once;
they become the event array of the *target* process named by ``like`` (e.g. ``z_mumu``), whose
``quantities``, ``feature_names``, ``binnings``, ``to_features``, ``from_features`` and
``observables`` are reused unchanged. Options (``[train.process_options]`` in the user's TOML)::

    RootFileProcess(path="events.root", mapping="dimuon.toml")   # or mapping={...} inline

Mapping (a TOML file or the same structure as a dict)::

    like = "z_mumu"            # target process (required)
    tree = "events"            # TTree or RNTuple; optional when the file holds exactly one
    weight = "EventWeight"     # optional per-event weight branch (default: all weights 1)
    momentum_unit = "GeV"      # "GeV" (default), "MeV" or "TeV": unit of momentum branches

    [branches]                 # flat branches: target quantity = branch
    mu1_pt = "pt1"

    [collections.mu]           # jagged collection filling the quantities mu1_*, mu2_*, ...
    px = "Muon_Px"             # either px, py, pz, E (converted with `vector`) ...
    py = "Muon_Py"
    pz = "Muon_Pz"
    E = "Muon_E"
    # pt = "Muon_pt"; eta = "Muon_eta"; phi = "Muon_phi"; mass = "Muon_mass"  # ... or these
    charge = "Muon_Charge"     # needed for opposite_charge (or a mu1_charge quantity)
    opposite_charge = true     # count = 2 only: leading object + hardest one of opposite charge
    count = 2                  # objects per event (default: highest index in the target)
    pt_min = 20.0              # GeV, optional
    abs_eta_max = 2.4          # optional

Each target quantity must be a ``[branches]`` key or ``<prefix><i>_<var>`` of a collection,
with ``var`` one of ``pt eta phi mass px py pz E rapidity charge``. Objects of a collection are
ordered by pT, leading first; an event is selected when its collection(s) yield the required
objects. Units: GeV, radians, φ wrapped to (-π, π].

Entries are split once and for all into a training part and a held-out part (a fraction
``holdout_fraction``, default 0.2, chosen by a hash of the entry number): training reads the
first, validation's truth (:meth:`FileProcess.holdout`) the second, so a model is never judged
on the events it learnt (``holdout_fraction = 0`` reads the whole file for both).

``sample(n, seed)`` returns ``n`` selected events of the part, a seeded uniform random subset in
file order (independent of ``step_size``); their weights are in :attr:`FileProcess.weights` afterwards
(:meth:`FileProcess.sample_arrays` returns events and weights together). Asking for more
events than pass the selection raises :class:`DataError` saying how many do, unless
``allow_fewer=True``, which returns them all with a warning.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
import sys
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
import vector

from bayesgen.core import registry
from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Process
from bayesgen.validation.observables import wrap_phi

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Chunk", "FileProcess", "RootFileProcess", "open_tree", "parse_quantity", "object_values"]

HOLDOUT_FRACTION = 0.2  #: default share of a file's entries kept for validation
_QUANTITY = re.compile(r"^([A-Za-z]+)(\d+)_(\w+)$")
#: quantity suffix → attribute of a :mod:`vector` momentum (``charge`` is handled separately)
KINEMATICS = {"pt": "pt", "eta": "eta", "phi": "phi", "mass": "mass", "m": "mass", "px": "px",
              "py": "py", "pz": "pz", "E": "E", "e": "E", "energy": "E", "rapidity": "rapidity",
              "y": "rapidity"}
_MOMENTUM_LIKE = {"pt", "mass", "px", "py", "pz", "E"}
_UNITS = {"GeV": 1.0, "MeV": 1e-3, "TeV": 1e3}


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


def first_nonfinite(values: Any) -> int | None:
    """Index of the first event (row) of a flat or jagged array holding a NaN/inf, else None."""
    if not np.issubdtype(np.asarray(ak.flatten(values, axis=None)).dtype, np.floating):
        return None
    flags = ~np.isfinite(values)
    while flags.ndim > 1:
        flags = ak.any(flags, axis=-1)
    bad = np.flatnonzero(np.asarray(ak.to_numpy(ak.fill_none(flags, False))))
    return int(bad[0]) if bad.size else None


@dataclass
class Chunk:
    """Selected events of one chunk of a file.

    ``n_read`` entries were read; ``entry`` ``(m,)`` are the file entry numbers of the ``m``
    selected ones, ``events`` ``(m, n_quantities)``, ``weights`` ``(m,)``; ``extras`` holds
    further per-event arrays ``(m,)`` (e.g. a jet multiplicity).
    """

    n_read: int
    entry: np.ndarray
    events: np.ndarray
    weights: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> "Chunk":
        return Chunk(self.n_read, self.entry[rows], self.events[rows], self.weights[rows],
                     {k: v[rows] for k, v in self.extras.items()})

    @staticmethod
    def concat(chunks: list["Chunk"]) -> "Chunk":
        keys = chunks[0].extras.keys()
        return Chunk(sum(c.n_read for c in chunks),
                     np.concatenate([c.entry for c in chunks]),
                     np.concatenate([c.events for c in chunks]),
                     np.concatenate([c.weights for c in chunks]),
                     {k: np.concatenate([c.extras[k] for c in chunks]) for k in keys})


def _smallest_keys(pending: list[tuple[Chunk, np.ndarray]], n: int) -> tuple[Chunk, np.ndarray]:
    """The (at most) ``n`` events with the smallest keys among ``pending`` (chunk, keys) pairs."""
    chunk = Chunk.concat([c for c, _ in pending])
    keys = np.concatenate([k for _, k in pending])
    if len(keys) > n:
        rows = np.argpartition(keys, n)[:n] if n else np.empty(0, dtype=np.int64)
        chunk, keys = chunk.take(rows), keys[rows]
    return chunk, keys


def open_tree(file: Any, path: Path, name: str | None, where: str) -> tuple[Any, str]:
    """The TTree or RNTuple ``name`` of an open uproot ``file`` (the only one when ``name`` is
    None) and its name; errors name the trees there are and where to choose one."""
    trees = [key for kind in ("TTree", "ROOT::RNTuple")
             for key in file.keys(filter_classname=kind, cycle=False, recursive=True)]
    if name is None:
        if len(trees) != 1:
            raise ConfigError(f"{path} holds {len(trees)} trees ({', '.join(trees) or 'none'});"
                              f" name one with tree = \"…\" {where}")
        name = trees[0]
    if name not in trees:
        raise DataError(f"{path} has no tree {name!r}; trees: {', '.join(trees) or 'none'}")
    return file[name], name


def entry_uniform(entry: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per file entry ``(n,)`` (splitmix64 of the entry
    number), the same on every machine and for any chunking."""
    z = np.asarray(entry, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class FileProcess(Process):
    """Base of file-backed processes: events read from a file, shaped like a target process.

    Subclasses implement :meth:`chunks` (and :attr:`selection`, a one-line description); this
    class draws the seeded subset of its part of the file (training or held out) and delegates
    features, conditions and observables to the target.
    """

    weights: np.ndarray | None = None  #: per-event weights ``(n,)`` of the last :meth:`sample`
    entry: np.ndarray | None = None    #: file entry numbers ``(n,)`` of the last :meth:`sample`

    def __init__(self, path: str | Path, like: str, allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION) -> None:
        self.path = Path(path).expanduser()
        if like in ("root_file", "lhe_file"):
            raise ConfigError(f"like = {like!r}: the target must be a process with its own features")
        if not 0.0 <= holdout_fraction < 1.0:
            raise ConfigError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        self.target: Process = registry.get_process(like)
        self.like = like
        self.allow_fewer = bool(allow_fewer)
        self.holdout_fraction = float(holdout_fraction)
        self.held_out = False
        self.quantities = tuple(self.target.quantities)
        self.feature_names = tuple(self.target.feature_names)
        self.condition_names = tuple(self.target.condition_names)
        self.feature_shape, self.channel_axis = self.target.feature_shape, self.target.channel_axis
        self.binnings = dict(self.target.binnings)

    def holdout(self) -> "FileProcess":
        """The same file and selection restricted to the held-out entries (with
        ``holdout_fraction = 0``, the whole file again, with a warning)."""
        if self.holdout_fraction == 0.0:
            warnings.warn(f"{self.path}: holdout_fraction = 0, so validation reuses the training "
                          "entries", UserWarning, stacklevel=2)
            return self
        held_out = copy.copy(self)
        held_out.held_out = True
        return held_out

    @property
    def part(self) -> str:
        if self.holdout_fraction == 0.0:
            return "the whole file"
        share = self.holdout_fraction if self.held_out else 1.0 - self.holdout_fraction
        return f"the {'held-out' if self.held_out else 'training'} part ({share:.0%} of entries)"

    def in_part(self, entry: np.ndarray) -> np.ndarray:
        """Which of these entries ``(n,)`` belong to this process's part of the file."""
        return (entry_uniform(entry) < self.holdout_fraction) == self.held_out

    @property
    @abstractmethod
    def selection(self) -> str:
        """One-line description of the event selection, for messages."""

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Selected events of the whole file, chunk by chunk, in file order."""

    def sample_arrays(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """``n`` selected events: ``{"events": (n, n_quantities), "weights": (n,), "entry": (n,),
        **extras}`` (``entry``: 0-based entry numbers in the file).

        A uniform random subset (seeded; the same for any chunk size), in file order: every
        entry read gets a key from ``default_rng(seed)`` and the ``n`` smallest keys among the
        selected entries are kept, so memory stays O(n + chunk).
        """
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        pending: list[tuple[Chunk, np.ndarray]] = []
        n_read = n_selected = n_pending = 0
        for chunk in self.chunks():
            keys = rng.random(chunk.n_read)[chunk.entry - n_read]
            mine = self.in_part(chunk.entry)
            chunk, keys = chunk.take(np.flatnonzero(mine)), keys[mine]
            pending.append((chunk, keys))
            n_read += chunk.n_read
            n_selected += len(chunk.entry)
            n_pending += len(chunk.entry)
            if n_pending > 2 * n + 10_000:  # prune now and then: amortised O(events read)
                pending = [_smallest_keys(pending, n)]
                n_pending = n
        if not pending:
            raise DataError(f"{self.path}: the file holds no events")
        kept, _ = _smallest_keys(pending, n)
        if n_selected < n:
            message = (f"{self.path}: only {n_selected:,} of {n_read:,} events pass the selection "
                       f"({self.selection}) in {self.part}; asked for {n:,}")
            if not self.allow_fewer:
                raise DataError(f"{message}. Ask for at most {n_selected:,} events (--events "
                                f"{n_selected}) or set allow_fewer = true in process_options")
            warnings.warn(f"{message}; using all {n_selected:,}", UserWarning, stacklevel=2)
        kept = kept.take(np.argsort(kept.entry, kind="stable"))
        events = np.ascontiguousarray(kept.events, dtype=np.float64)
        return {"events": events, "weights": kept.weights.astype(np.float64), "entry": kept.entry,
                **kept.extras}

    def sample_with_weights(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        arrays = self.sample_arrays(n, seed)
        return arrays["events"], arrays["weights"]

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``(n, n_quantities)`` selected events; their weights go to :attr:`weights`."""
        arrays = self.sample_arrays(n, seed)
        for name, values in arrays.items():
            if name != "events":
                setattr(self, name, values)
        return arrays["events"]

    def to_features(self, events: np.ndarray) -> np.ndarray:
        return self.target.to_features(events)

    def from_features(self, features: np.ndarray, rng: np.random.Generator, *conditions) -> np.ndarray:
        return self.target.from_features(features, rng, *conditions)

    def conditions(self, events: np.ndarray) -> np.ndarray:
        return self.target.conditions(events)

    def feature_mask(self, conditions: np.ndarray) -> np.ndarray | None:
        return self.target.feature_mask(conditions)

    def event_metrics(self, truth_events: np.ndarray, generated_events: np.ndarray, seed: int) -> dict:
        return self.target.event_metrics(truth_events, generated_events, seed)

    def plot_examples(self, truth_events: np.ndarray, generated_events: np.ndarray, out_dir: Path) -> None:
        self.target.plot_examples(truth_events, generated_events, out_dir)

    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        return self.target.observables(events)

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """Finite, and within the target's physical limits but not its selection: the file's
        events pass cuts of their own."""
        return super().support(events) & self.target.support(events, selection=False)

    def check_finite(self, events: np.ndarray, entry: np.ndarray, where: str) -> None:
        """Raise :class:`DataError` naming the first non-finite quantity and its entry."""
        bad = ~np.isfinite(events)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(f"{self.path}: non-finite {self.quantities[col]} ({events[row, col]}) "
                            f"at entry {int(entry[row])} {where}")


# --- the mapping ------------------------------------------------------------------------------
_TOP_KEYS = {"like", "tree", "weight", "momentum_unit", "branches", "collections"}
_CARTESIAN = ("px", "py", "pz", "E")
_POLAR = ("pt", "eta", "phi")
_COLLECTION_KEYS = {*_CARTESIAN, *_POLAR, "mass", "charge", "opposite_charge", "count", "pt_min",
                    "abs_eta_max"}


def _unknown(keys: Mapping, allowed: set[str], where: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise ConfigError(f"unknown key(s) {', '.join(extra)} in {where}; "
                          f"allowed: {', '.join(sorted(allowed))}")


@dataclass(frozen=True)
class Collection:
    """A jagged collection (e.g. NanoAOD ``Muon_*``) filling quantities ``<prefix><i>_<var>``."""

    prefix: str
    branches: dict[str, str]          # vector component (px… or pt…, mass) → branch
    count: int
    charge: str | None = None
    opposite_charge: bool = False
    pt_min: float = 0.0
    abs_eta_max: float = math.inf

    @classmethod
    def from_dict(cls, prefix: str, spec: Mapping[str, Any], needed: int) -> "Collection":
        where = f"[collections.{prefix}]"
        _unknown(spec, _COLLECTION_KEYS, where)
        if all(k in spec for k in _CARTESIAN):
            branches = {k: spec[k] for k in _CARTESIAN}
        elif all(k in spec for k in _POLAR):
            branches = {k: spec[k] for k in (*_POLAR, "mass") if k in spec}
        else:
            raise ConfigError(f"{where} needs branches px, py, pz, E or pt, eta, phi (+ mass)")
        count = int(spec.get("count", needed))
        if count < needed:
            raise ConfigError(f"{where} count = {count}, but the target uses {prefix}{needed}_*")
        opposite = bool(spec.get("opposite_charge", False))
        if opposite and (count != 2 or "charge" not in spec):
            raise ConfigError(f"{where} opposite_charge needs count = 2 and a charge branch")
        return cls(prefix, branches, count, spec.get("charge"), opposite,
                   float(spec.get("pt_min", 0.0)), float(spec.get("abs_eta_max", math.inf)))

    @property
    def all_branches(self) -> list[str]:
        return [*self.branches.values(), *([self.charge] if self.charge else [])]

    def describe(self) -> str:
        what = f"≥ {self.count} {self.prefix}"
        what += " with an opposite-charge pair" if self.opposite_charge else ""
        cuts = [f"pT > {self.pt_min:g} GeV"] if self.pt_min > 0 else []
        cuts += [f"|η| < {self.abs_eta_max:g}"] if math.isfinite(self.abs_eta_max) else []
        return what + (f" ({', '.join(cuts)})" if cuts else "")

    def select(self, arrays: Any, scale: float) -> tuple[np.ndarray, Any, Any]:
        """Selected-event mask ``(n,)`` and the chosen objects ``(m, count)`` (vector) and
        charges, leading first."""
        comps = {k: arrays[b] * (1.0 if k in ("eta", "phi") else scale)
                 for k, b in self.branches.items()}
        if "pt" in comps and "mass" not in comps:
            comps["mass"] = ak.zeros_like(comps["pt"])
        objects = vector.zip(comps)
        charges = arrays[self.charge] if self.charge else ak.zeros_like(objects.pt)
        good = (objects.pt > self.pt_min) & (abs(objects.eta) < self.abs_eta_max)
        objects, charges = objects[good], charges[good]
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

    @classmethod
    def load(cls, mapping: str | Path | Mapping[str, Any]) -> "RootMapping":
        if isinstance(mapping, Mapping):
            return cls.from_dict(dict(mapping))
        path = Path(mapping).expanduser()
        try:
            with path.open("rb") as stream:
                return cls.from_dict(tomllib.load(stream))
        except FileNotFoundError:
            raise ConfigError(f"mapping file not found: {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"mapping file {path} is not valid TOML: {error}") from None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RootMapping":
        _unknown(raw, _TOP_KEYS, "the mapping")
        if "like" not in raw:
            raise ConfigError("the mapping needs like = \"<target process>\", e.g. like = \"z_mumu\"")
        unit = raw.get("momentum_unit", "GeV")
        if unit not in _UNITS:
            raise ConfigError(f"momentum_unit = {unit!r}; use one of {', '.join(_UNITS)}")
        return cls(str(raw["like"]), raw.get("tree"), raw.get("weight"), _UNITS[unit],
                   dict(raw.get("branches", {})), (), raw)

    def resolve(self, quantities: tuple[str, ...]) -> "RootMapping":
        """Check that every target quantity is mapped; build the collections."""
        needed: dict[str, int] = {}
        for q in quantities:
            parsed = parse_quantity(q)
            if q in self.flat or parsed is None:
                continue
            needed[parsed[0]] = max(needed.get(parsed[0], 0), parsed[1])
        specs = self.raw.get("collections", {})
        collections = tuple(Collection.from_dict(p, specs[p], needed.get(p, 0)) for p in specs)
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
            raise ConfigError(f"[branches] names {', '.join(extra)}, not quantities of "
                              f"{self.like!r} ({', '.join(quantities)})")
        return RootMapping(self.like, self.tree, self.weight, self.scale, self.flat, collections,
                           self.raw)

    @property
    def branches(self) -> list[str]:
        names = [*self.flat.values(), *(b for c in self.collections for b in c.all_branches)]
        names += [self.weight] if self.weight else []
        return list(dict.fromkeys(names))


class RootFileProcess(FileProcess):
    """Events from any ROOT TTree or RNTuple (flat or NanoAOD-like) via uproot, mapped onto a
    target process."""

    name = "root_file"
    description = ("Events from a ROOT tree via uproot (flat or jagged branches), "
                   "mapped onto a target process")

    def __init__(self, path: str | Path, mapping: str | Path | Mapping[str, Any],
                 step_size: int | str = "100 MB", allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION) -> None:
        parsed = RootMapping.load(mapping)
        super().__init__(path, parsed.like, allow_fewer, holdout_fraction)
        self.mapping = parsed.resolve(self.quantities)
        self.step_size = step_size

    @property
    def _jagged_ok(self) -> set[str]:
        return {b for c in self.mapping.collections for b in c.all_branches}

    @property
    def selection(self) -> str:
        return "; ".join(c.describe() for c in self.mapping.collections) or "all events"

    def _open_tree(self, file: Any) -> tuple[Any, str]:
        tree, name = open_tree(file, self.path, self.mapping.tree, "in the mapping")
        available = list(tree.keys())
        for branch in self.mapping.branches:
            if branch not in available:
                close = difflib.get_close_matches(branch, available, n=3)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                shown = ", ".join(available[:12]) + (", …" if len(available) > 12 else "")
                raise DataError(f"branch {branch!r} not in tree {name!r} of {self.path}; {hint}"
                                f"available ({len(available)}): {shown}")
        return tree, name

    def chunks(self) -> Iterator[Chunk]:
        if not self.path.is_file():
            raise DataError(f"ROOT file not found: {self.path}")
        try:
            file = uproot.open(self.path)
        except Exception as error:  # noqa: BLE001 - uproot raises several kinds
            raise DataError(f"{self.path} is not a readable ROOT file: {error}") from None
        with file:
            tree, name = self._open_tree(file)
            where = f"of tree {name!r}"
            for arrays, report in tree.iterate(self.mapping.branches, step_size=self.step_size,
                                               report=True, library="ak"):
                start = report.tree_entry_start
                for branch in self.mapping.branches:
                    if branch not in self._jagged_ok and arrays[branch].ndim != 1:
                        raise DataError(f"branch {branch!r} {where} is jagged; map it in a "
                                        "[collections.<prefix>] table, not [branches]/weight")
                    row = first_nonfinite(arrays[branch])
                    if row is not None:
                        raise DataError(f"{self.path}: non-finite value in branch {branch!r} "
                                        f"at entry {start + row} {where}")
                yield self._select(arrays, start, where)

    def _select(self, arrays: Any, start: int, where: str) -> Chunk:
        n_read = len(arrays)
        mask = np.ones(n_read, dtype=bool)
        picked = {}
        for collection in self.mapping.collections:
            sel, objects, charges = collection.select(arrays, self.mapping.scale)
            picked[collection.prefix] = (np.flatnonzero(sel), objects, charges)
            mask &= sel
        rows = np.flatnonzero(mask)
        columns = []
        for q in self.quantities:
            if q in self.mapping.flat:
                values = np.asarray(ak.to_numpy(arrays[self.mapping.flat[q]][rows]), np.float64)
                var = parse_quantity(q)[2] if parse_quantity(q) else q.rsplit("_", 1)[-1]
                if KINEMATICS.get(var) in _MOMENTUM_LIKE:
                    values = values * self.mapping.scale
                columns.append(wrap_phi(values) if var == "phi" else values)
                continue
            prefix, index, var = parse_quantity(q)
            selected, objects, charges = picked[prefix]
            sub = np.searchsorted(selected, rows)  # rows ⊂ selected
            columns.append(object_values(objects[sub], charges[sub], index - 1, var))
        events = np.stack(columns, axis=-1) if columns else np.empty((len(rows), 0))
        weights = (np.asarray(ak.to_numpy(arrays[self.mapping.weight][rows]), np.float64)
                   if self.mapping.weight else np.ones(len(rows)))
        entry = start + rows
        self.check_finite(events, entry, where)
        return Chunk(n_read, entry, events, weights)


@hookimpl
def bayesgen_processes():
    return {"root_file": RootFileProcess}
