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
    cut = "Type == 'GG' and Q1 * Q2 < 0"   # optional event selection on flat branches
    split_by = ["Run", "Event"]            # optional: split training/held out by event identity
    deduplicate = true         # with split_by: keep only the first selected row of each event
    order_by_pt = true         # default: objects leading first; false keeps the file's order

    [branches]                 # flat branches: target quantity = branch
    mu1_pt = "pt1"

    [collections.mu]           # objects filling the quantities mu1_*, mu2_*, ...
    px = "Muon_Px"             # a jagged branch per component: px, py, pz, E (converted with
    py = "Muon_Py"             # `vector`) ...
    pz = "Muon_Pz"
    E = "Muon_E"
    # pt = "Muon_pt"; eta = "Muon_eta"; phi = "Muon_phi"; mass = "Muon_mass"  # ... or these
    # px = ["px1", "px2"]; ...  # ... or flat branches, one per object, for either set
    charge = "Muon_Charge"     # optional (jagged, or a list of flat branches): fills mu<i>_charge
    opposite_charge = true     # count = 2 only: leading object + hardest one of opposite charge
    count = 2                  # objects per event (default: highest index in the target)
    pt_min = 20.0              # GeV, optional
    abs_eta_max = 2.4          # optional

Each target quantity must be a ``[branches]`` key or ``<prefix><i>_<var>`` of a collection,
with ``var`` one of ``pt eta phi mass px py pz E rapidity charge``. Objects are ordered by pT
after mapping, leading first, those of a collection and those given one by one under
``[branches]`` alike (``order_by_pt = false`` keeps the file's order). An event is selected when
it passes ``cut`` and its collection(s) yield the required objects. ``cut`` is an expression on
flat branches (numbers or strings; see :mod:`.cuts`): comparisons, ``and``/``or``/``not``,
arithmetic, ``in [...]``, ``abs()`` and friends. Units: GeV, radians, φ wrapped to (-π, π].

Entries are split once and for all into a training part and a held-out part (a fraction
``holdout_fraction``, default 0.2, chosen by a hash of the entry number, or of the values of
the ``split_by`` branches, so that every row of one event lands on the same side): training
reads the first, validation's truth (:meth:`FileProcess.holdout`) the second, so a model is
never judged on the events it learnt (``holdout_fraction = 0`` reads the whole file for both).
A file that lists an event several times (one row per reconstruction type, say) is read with a
warning counting the repeats unless ``deduplicate = true`` keeps the first selected row only.

``sample(n, seed)`` returns ``n`` selected events of the part, a seeded uniform random subset in
file order (independent of ``step_size``); :meth:`FileProcess.sample_arrays` returns the same
events with their weights, file entry numbers and any other per-event arrays, and
``sample_with_weights`` events and weights (sampling changes nothing in the process). Asking for more
events than pass the selection raises :class:`DataError` saying how many do, unless
``allow_fewer=True``, which returns them all with a warning. A run stores the mapping's
content, the file's absolute path and its SHA-256 (:meth:`FileProcess.portable_options`);
reading a file whose checksum differs from ``sha256`` warns.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from bayesgen.core import registry
from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import DetectorView, Process
from bayesgen.plugins.processes.cuts import first_occurrences, identity_keys, splitmix64
from bayesgen.plugins.processes.mapping import KINEMATICS, RootMapping, object_values, order_objects, parse_quantity

__all__ = ["Chunk", "FileProcess", "RootFileProcess", "open_tree", "parse_quantity", "object_values",
           "KINEMATICS"]

HOLDOUT_FRACTION = 0.2  #: default share of a file's entries kept for validation


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
    identity: np.ndarray | None = None  #: ``(m,)`` uint64 naming each event; the entry by default

    def __post_init__(self):
        if self.identity is None:
            self.identity = np.asarray(self.entry, dtype=np.int64).astype(np.uint64)

    def take(self, rows: np.ndarray) -> "Chunk":
        return Chunk(self.n_read, self.entry[rows], self.events[rows], self.weights[rows],
                     {k: v[rows] for k, v in self.extras.items()}, self.identity[rows])

    @staticmethod
    def concat(chunks: list["Chunk"]) -> "Chunk":
        keys = chunks[0].extras.keys()
        return Chunk(sum(c.n_read for c in chunks),
                     np.concatenate([c.entry for c in chunks]),
                     np.concatenate([c.events for c in chunks]),
                     np.concatenate([c.weights for c in chunks]),
                     {k: np.concatenate([c.extras[k] for c in chunks]) for k in keys},
                     np.concatenate([c.identity for c in chunks]))


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


def entry_uniform(identity: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per file entry or event identity ``(n,)``
    (splitmix64 of it), the same on every machine and for any chunking."""
    return (splitmix64(np.asarray(identity).astype(np.uint64)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class FileProcess(Process):
    """Base of file-backed processes: events read from a file, shaped like a target process.

    Subclasses implement :meth:`chunks` (and :attr:`selection`, a one-line description); this
    class draws the seeded subset of its part of the file (training or held out) and delegates
    features, conditions and observables to the target. Its :attr:`sqrt_s` is ``None``, not the
    target's: a file does not say at which energy its events were made.
    """

    def __init__(self, path: str | Path, like: str, allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION, sha256: str | None = None) -> None:
        self.path = Path(path).expanduser()
        self.sha256 = sha256  # the checksum the file had when a run was trained on it
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
        self.mask_conditions = self.target.mask_conditions
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

    def in_part(self, identity: np.ndarray) -> np.ndarray:
        """Which of these entries or event identities ``(n,)`` belong to this process's part of the file."""
        return (entry_uniform(identity) < self.holdout_fraction) == self.held_out

    def portable_options(self, options: dict) -> dict:
        """``options`` with the file's absolute path and its SHA-256 (``sha256``), so that the
        run finds it from any directory and notices when it changes."""
        return {**options, "path": str(self.path.resolve()), "sha256": file_sha256(self.path)}

    def _check_unchanged(self) -> None:
        """Warn, once, when the file is not the one a run was trained on."""
        if self.sha256 is not None and self.path.is_file():
            digest, expected, self.sha256 = file_sha256(self.path), self.sha256, None
            if digest != expected:
                warnings.warn(f"{self.path} changed since the run was trained on it (SHA-256 {digest[:12]}… "
                              f"instead of {expected[:12]}…): its events may differ from those the model learnt",
                              UserWarning, stacklevel=3)

    @property
    @abstractmethod
    def selection(self) -> str:
        """One-line description of the event selection, for messages."""

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Selected events of the whole file, chunk by chunk, in file order."""

    def sample_arrays(self, n: int, seed: int, at_most: bool = False) -> dict[str, np.ndarray]:
        """``n`` selected events: ``{"events": (n, n_quantities), "weights": (n,), "entry": (n,),
        **extras}`` (``entry``: 0-based entry numbers in the file); with ``at_most``, all of
        them, silently, when fewer pass the selection.

        A uniform random subset (seeded; the same for any chunk size), in file order: every
        entry read gets a key from ``default_rng(seed)`` and the ``n`` smallest keys among the
        selected entries are kept, so memory stays O(n + chunk).
        """
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        self._check_unchanged()
        rng = np.random.default_rng(seed)
        pending: list[tuple[Chunk, np.ndarray]] = []
        n_read = n_selected = n_pending = 0
        for chunk in self.chunks():
            keys = rng.random(chunk.n_read)[chunk.entry - n_read]
            mine = self.in_part(chunk.identity)
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
        if n_selected == 0:
            raise DataError(f"{self.path}: none of the {n_read:,} events passes the selection "
                            f"({self.selection}) in {self.part}; check the selection against the file")
        if n_selected < n and not at_most:
            message = (f"{self.path}: only {n_selected:,} of {n_read:,} events pass the selection "
                       f"({self.selection}) in {self.part}; asked for {n:,}")
            if not self.allow_fewer:
                fix = (f"(--truth-events {n_selected})" if self.held_out else
                       f"(--events {n_selected}) or set allow_fewer = true in [train.process_options]")
                raise DataError(f"{message}. Ask for at most {n_selected:,} events {fix}")
            warnings.warn(f"{message}; using all {n_selected:,}", UserWarning, stacklevel=2)
        kept = kept.take(np.argsort(kept.entry, kind="stable"))
        events = np.ascontiguousarray(kept.events, dtype=np.float64)
        return {"events": events, "weights": kept.weights.astype(np.float64), "entry": kept.entry,
                **kept.extras}

    def sample_with_weights(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        arrays = self.sample_arrays(n, seed)
        return arrays["events"], arrays["weights"]

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``(n, n_quantities)`` selected events (their weights: :meth:`sample_with_weights`)."""
        return self.sample_arrays(n, seed)["events"]

    def sample_available(self, n: int, seed: int) -> np.ndarray:
        """As :meth:`sample`, all the selected events of the part when fewer than ``n`` pass."""
        return self.sample_arrays(n, seed, at_most=True)["events"]

    def to_features(self, events: np.ndarray) -> np.ndarray:
        return self.target.to_features(events)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        return self.target.from_features(features, rng, conditions)

    def conditions(self, events: np.ndarray) -> np.ndarray:
        return self.target.conditions(events)

    def feature_mask(self, conditions: np.ndarray) -> np.ndarray | None:
        return self.target.feature_mask(conditions)

    def detector_view(self, events: np.ndarray) -> DetectorView | None:
        return self.target.detector_view(events)

    def event_metrics(self, truth_events: np.ndarray, generated_events: np.ndarray, seed: int) -> dict:
        return self.target.event_metrics(truth_events, generated_events, seed)

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


class RootFileProcess(FileProcess):
    """Events from any ROOT TTree or RNTuple (flat or NanoAOD-like) via uproot, mapped onto a
    target process."""

    name = "root_file"
    description = ("Events from a ROOT tree via uproot (flat or jagged branches), "
                   "mapped onto a target process")

    def __init__(self, path: str | Path, mapping: str | Path | Mapping[str, Any],
                 step_size: int | str = "100 MB", allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION, sha256: str | None = None) -> None:
        parsed = RootMapping.from_dict(RootMapping.read(mapping))
        super().__init__(path, parsed.like, allow_fewer, holdout_fraction, sha256)
        self.mapping = parsed.resolve(self.quantities)
        self.step_size = step_size

    def portable_options(self, options: dict) -> dict:
        """Also the mapping's content in place of the file that holds it."""
        return {**super().portable_options(options), "mapping": self.mapping.raw}

    @property
    def selection(self) -> str:
        parts = [f"cut {self.mapping.cut.expression!r}"] if self.mapping.cut else []
        parts += [c.describe() for c in self.mapping.collections]
        return "; ".join(parts) or "all events"

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
        seen, repeats = np.empty(0, dtype=np.uint64), 0
        with file:
            tree, name = self._open_tree(file)
            where = f"of tree {name!r}"
            in_collections = {b for c in self.mapping.collections for b in c.all_branches}
            for arrays, report in tree.iterate(self.mapping.branches, step_size=self.step_size,
                                               report=True, library="ak"):
                start = report.tree_entry_start
                for collection in self.mapping.collections:
                    collection.check_shapes(arrays, where)
                for branch in self.mapping.branches:
                    if branch not in in_collections and arrays[branch].ndim != 1:
                        raise DataError(f"branch {branch!r} {where} is jagged (values per object); map it in "
                                        "a [collections.<prefix>] table, not as a single value per event")
                    row = first_nonfinite(arrays[branch])
                    if row is not None:
                        raise DataError(f"{self.path}: non-finite value in branch {branch!r} "
                                        f"at entry {start + row} {where}")
                chunk = self._select(arrays, start, where)
                if self.mapping.split_by:
                    first, seen = first_occurrences(chunk.identity, seen)
                    repeats += int((~first).sum())
                    if self.mapping.deduplicate:
                        chunk = chunk.take(np.flatnonzero(first))
                yield chunk
        if repeats and not self.mapping.deduplicate:
            warnings.warn(f"{self.path}: {repeats:,} selected rows repeat an event ({', '.join(self.mapping.split_by)}) "
                          "listed before; they stay on the same side of the training/held-out split, but count "
                          "again: set deduplicate = true in the mapping to keep the first row of each event",
                          UserWarning, stacklevel=2)

    def _select(self, arrays: Any, start: int, where: str) -> Chunk:
        n_read = len(arrays)
        mask = self.mapping.cut.mask(arrays, n_read) if self.mapping.cut else np.ones(n_read, dtype=bool)
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
                columns.append(self.mapping.scaled(q, values))
                continue
            prefix, index, var = parse_quantity(q)
            selected, objects, charges = picked[prefix]
            sub = np.searchsorted(selected, rows)  # rows ⊂ selected
            columns.append(object_values(objects[sub], charges[sub], index - 1, var))
        events = np.stack(columns, axis=-1) if columns else np.empty((len(rows), 0))
        if self.mapping.order_by_pt:
            events = order_objects(events, self.quantities, self.mapping.flat_prefixes)
        weights = (np.asarray(ak.to_numpy(arrays[self.mapping.weight][rows]), np.float64)
                   if self.mapping.weight else np.ones(len(rows)))
        entry = start + rows
        identity = (identity_keys([ak.to_numpy(arrays[b])[rows] for b in self.mapping.split_by],
                                  f"split_by = {list(self.mapping.split_by)}") if self.mapping.split_by else None)
        self.check_finite(events, entry, where)
        return Chunk(n_read, entry, events, weights, identity=identity)


@hookimpl
def bayesgen_processes():
    return {"root_file": RootFileProcess}
