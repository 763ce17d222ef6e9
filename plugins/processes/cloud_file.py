"""Process ``cloud_file``: the user's own ECAL point clouds from ``.npz`` or ROOT files.

The events become those of the target process named by ``like`` (default ``ecal_cloud``), laid
out as its columns ``is_top, n_hits, hit0_eta, hit0_phi, hit0_e, …, hit{N-1}_e``: the ``N``
most energetic hits (``N`` = the target's number of ``hit*_e`` columns, 300 for ``ecal_cloud``),
sorted by energy descending and zero-padded, ``n_hits ≤ N`` of them real. Units: η and φ
relative to the jet axis in radians, φ wrapped to (-π, π]; E in GeV. ``is_top`` is the class
label (1 = top), from ``label`` when given, else 0. Options, e.g. in ``[train.process_options]``::

    path = "my_jets.npz"   # or "my_jets.root"
    eta = "eta"            # array keys (npz) or branch names (ROOT) of the hits
    phi = "phi"
    energy = "e"
    label = "is_signal"    # optional per-event class (0 or 1)
    tree = "events"        # ROOT only; optional when the file holds exactly one tree

* ``.npz`` (``np.savez`` or ``np.savez_compressed``): ``eta``, ``phi``, ``energy`` are
  zero-padded 2D arrays of one shape ``(n_events, M)`` (any ``M``; hits with E ≤ 0 are padding),
  ``label`` a 1D array ``(n_events,)``. Each array is streamed from the archive ``chunk_size``
  rows at a time, so the file never loads at once (compressed or not).
* ROOT (a TTree or RNTuple, via uproot): jagged (or fixed-size) per-event branches such as
  ``Hit_eta`` (a name written as ``Hit_eta[nHit]`` is read as ``Hit_eta``), a flat ``label``
  branch; read with ``step_size = chunk_size`` entries.

Per event, hits with E ≤ 0 are dropped and the ``N`` most energetic kept (ties keep file
order); every event is used (one without hits has ``n_hits = 0``), all with weight 1. Entry
numbers are 0-based event indices, so the training/held-out split, the seeded subset,
``allow_fewer`` and the errors work as for ``root_file`` (see :mod:`.root_file`).
"""
from __future__ import annotations

import contextlib
import difflib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import awkward as ak
import numpy as np
import uproot
from numpy.lib import format as npy_format

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.kinematics import wrap_phi
from bayesgen.plugins.processes.ecal_cloud import EcalCloud
from bayesgen.plugins.processes.root_file import (HOLDOUT_FRACTION, Chunk, FileProcess,
                                                  first_nonfinite, open_tree)

__all__ = ["CloudFileProcess"]

_HIT = re.compile(r"^hit(\d+)_(eta|phi|e)$")
_VARS = ("eta", "phi", "e")
_ROLES = {"eta": "η", "phi": "φ", "e": "energy", "label": "label"}


class _NpyRows:
    """One ``.npy`` member of an ``.npz`` archive, read ``rows`` at a time from its stream."""

    def __init__(self, stream: BinaryIO, key: str, path: Path) -> None:
        self.stream, self.key = stream, key
        try:
            version = npy_format.read_magic(stream)
            read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                           else npy_format.read_array_header_2_0)
            self.shape, fortran_order, self.dtype = read_header(stream)
        except ValueError as error:
            raise DataError(f"{path}: array {key!r} is not a readable .npy array: {error}") from None
        if self.dtype.hasobject or self.dtype.kind not in "biuf":
            raise DataError(f"{path}: array {key!r} has dtype {self.dtype}; save numbers "
                            "(float, int or bool)")
        self.row_shape = tuple(self.shape[1:])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        # a Fortran-ordered array has no contiguous rows: read it whole (rare: np.save of a .T)
        self.whole = (np.frombuffer(stream.read(), self.dtype).reshape(self.shape[::-1]).T
                      if fortran_order and len(self.shape) > 1 else None)
        self.position = 0
        self.path = path

    def read(self, rows: int) -> np.ndarray:
        if self.whole is not None:
            out = self.whole[self.position:self.position + rows]
        else:
            wanted, parts, got = rows * self.row_bytes, [], 0
            while got < wanted:
                part = self.stream.read(wanted - got)
                if not part:
                    raise DataError(f"{self.path}: array {self.key!r} is truncated")
                parts.append(part)
                got += len(part)
            out = np.frombuffer(b"".join(parts), self.dtype).reshape(rows, *self.row_shape)
        self.position += rows
        return out


def _shown(available: list[str]) -> str:
    return ", ".join(available[:12]) + (", …" if len(available) > 12 else "") or "none"


class CloudFileProcess(FileProcess):
    """ECAL point clouds (η, φ, E per hit) from ``.npz`` or ROOT files, shaped like ``ecal_cloud``."""

    name = "cloud_file"
    training_defaults = EcalCloud.training_defaults  # those of its default target
    description = ("Your own ECAL point clouds from .npz (zero-padded arrays) or ROOT (jagged "
                   "branches): the most energetic hits, shaped like ecal_cloud")

    def __init__(self, path: str | Path, like: str = "ecal_cloud", eta: str = "eta",
                 phi: str = "phi", energy: str = "e", label: str | None = None,
                 tree: str | None = None, allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION, chunk_size: int = 10_000,
                 sha256: str | None = None) -> None:
        if like == "cloud_file":
            raise ConfigError(f"like = {like!r}: the target must be a process with its own features")
        super().__init__(path, like, allow_fewer, holdout_fraction, sha256)
        if int(chunk_size) <= 0:
            raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.tree = tree
        self.names = {"eta": str(eta), "phi": str(phi), "e": str(energy),
                      **({"label": str(label)} if label is not None else {})}
        # what the target's networks and metrics need beyond the FileProcess basics
        self.n_max = sum(1 for q in self.quantities if (m := _HIT.match(q)) and m[2] == "e")
        expected = {"is_top", "n_hits"} | {f"hit{i}_{v}" for i in range(self.n_max) for v in _VARS}
        if set(self.quantities) != expected or len(self.quantities) != len(expected):
            odd = sorted(set(self.quantities) ^ expected)
            raise ConfigError(f"like = {like!r} is not a point-cloud process: its quantities "
                              f"must be is_top, n_hits, hit<i>_eta, hit<i>_phi, hit<i>_e for "
                              f"i < {self.n_max} (mismatch: {', '.join(odd[:6]) or 'duplicates'})")
        index = {q: i for i, q in enumerate(self.quantities)}
        self._columns = {v: np.array([index[f"hit{i}_{v}"] for i in range(self.n_max)], dtype=np.int64)
                         for v in _VARS}
        self._is_top, self._n_hits = index["is_top"], index["n_hits"]

    @property
    def selection(self) -> str:
        return f"hits with E > 0, the {self.n_max} most energetic"

    # --- reading ----------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        if not self.path.is_file():
            raise DataError(f"point-cloud file not found: {self.path}")
        suffix = self.path.suffix.lower()
        if suffix == ".npz":
            yield from self._npz_chunks()
        elif suffix == ".root":
            yield from self._root_chunks()
        else:
            raise DataError(f"{self.path}: unknown file type {self.path.suffix!r}; cloud_file reads "
                            ".npz (zero-padded 2D arrays) or .root (jagged branches)")

    def _npz_chunks(self) -> Iterator[Chunk]:
        try:
            archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(f"{self.path} is not a readable .npz file: {error}") from None
        with archive, contextlib.ExitStack() as stack:
            available = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            for role, key in self.names.items():
                if key not in available:
                    raise DataError(f"{self.path}: no array {key!r} ({_ROLES[role]}); "
                                    f"arrays: {_shown(available)}")
            arrays = {role: _NpyRows(stack.enter_context(archive.open(key + ".npy")), key, self.path)
                      for role, key in self.names.items()}
            shapes = ", ".join(f"{arrays[v].key!r} {arrays[v].shape}" for v in _VARS)
            if len({arrays[v].shape for v in _VARS}) != 1:
                raise DataError(f"{self.path}: arrays of mismatched shapes: {shapes}; the hit "
                                "arrays must share one shape (n_events, max_hits)")
            if len(arrays["e"].shape) != 2:
                raise DataError(f"{self.path}: the hit arrays must be 2D (n_events, max_hits), "
                                f"zero-padded; got {shapes}")
            n_events = arrays["e"].shape[0]
            if "label" in arrays and arrays["label"].shape != (n_events,):
                raise DataError(f"{self.path}: label array {self.names['label']!r} has shape "
                                f"{arrays['label'].shape}, expected ({n_events},) like the hit "
                                f"arrays {arrays['e'].shape}")
            for start in range(0, n_events, self.chunk_size):
                rows = min(self.chunk_size, n_events - start)
                values = {role: array.read(rows) for role, array in arrays.items()}
                for role, array in arrays.items():
                    bad = ~np.isfinite(values[role]) if values[role].dtype.kind == "f" else None
                    if bad is not None and bad.any():
                        row = int(np.flatnonzero(bad.reshape(rows, -1).any(axis=1))[0])
                        raise DataError(f"{self.path}: non-finite value in array {array.key!r} "
                                        f"at entry {start + row}")
                yield self._select(values, start, "(event number, 0-based)")

    def _branches(self, tree: Any, name: str) -> dict[str, str]:
        """Role → branch name in ``tree`` (``Hit_eta[nHit]`` read as ``Hit_eta``)."""
        available = list(tree.keys())
        branches = {}
        for role, branch in self.names.items():
            if branch not in available and re.sub(r"\[.*\]$", "", branch) in available:
                branch = re.sub(r"\[.*\]$", "", branch)
            if branch not in available:
                close = difflib.get_close_matches(branch, available, n=3)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise DataError(f"branch {branch!r} ({_ROLES[role]}) not in tree {name!r} of "
                                f"{self.path}; {hint}available ({len(available)}): {_shown(available)}")
            branches[role] = branch
        return branches

    def _root_chunks(self) -> Iterator[Chunk]:
        try:
            file = uproot.open(self.path)
        except Exception as error:  # noqa: BLE001 - uproot raises several kinds
            raise DataError(f"{self.path} is not a readable ROOT file: {error}") from None
        with file:
            tree, name = open_tree(file, self.path, self.tree, "in process_options")
            branches = self._branches(tree, name)
            where = f"of tree {name!r}"
            for arrays, report in tree.iterate(list(dict.fromkeys(branches.values())),
                                               step_size=self.chunk_size, report=True, library="ak"):
                start = report.tree_entry_start
                for role, branch in branches.items():
                    dims = arrays[branch].ndim
                    if dims != (1 if role == "label" else 2):
                        what = "flat (one value per event)" if role == "label" else "jagged (hits per event)"
                        raise DataError(f"branch {branch!r} ({_ROLES[role]}) {where} of {self.path} "
                                        f"must be {what}; it has {dims} dimension(s)")
                    row = first_nonfinite(arrays[branch])
                    if row is not None:
                        raise DataError(f"{self.path}: non-finite value in branch {branch!r} "
                                        f"at entry {start + row} {where}")
                counts = {v: np.asarray(ak.to_numpy(ak.num(arrays[branches[v]], axis=1))) for v in _VARS}
                for v in ("eta", "phi"):
                    bad = np.flatnonzero(counts[v] != counts["e"])
                    if bad.size:
                        row = int(bad[0])
                        raise DataError(
                            f"{self.path}: branches {branches[v]!r} and {branches['e']!r} {where} "
                            f"have mismatched shapes: {counts[v][row]} vs {counts['e'][row]} hits "
                            f"at entry {start + row}")
                width = int(counts["e"].max(initial=0))
                values = {v: np.asarray(ak.to_numpy(ak.fill_none(
                    ak.pad_none(arrays[branches[v]], width, axis=1, clip=True), 0)), np.float64)
                    for v in _VARS}
                if "label" in branches:
                    values["label"] = np.asarray(ak.to_numpy(arrays[branches["label"]]))
                yield self._select(values, start, where)

    def _select(self, values: dict[str, np.ndarray], start: int, where: str) -> Chunk:
        """Events ``(m, n_quantities)`` from zero-padded 2D hit arrays ``(m, M)`` (+ label)."""
        e = np.asarray(values["e"], np.float64)
        rows, n_max = len(e), self.n_max
        entry = start + np.arange(rows)
        valid = e > 0
        order = np.argsort(np.where(valid, -e, np.inf), axis=1, kind="stable")[:, :n_max]
        kept = np.take_along_axis(valid, order, axis=1)
        events = np.zeros((rows, len(self.quantities)))
        for v in _VARS:
            column = np.take_along_axis(np.asarray(values[v], np.float64), order, axis=1)
            column = np.where(kept, wrap_phi(column) if v == "phi" else column, 0.0)
            events[:, self._columns[v][:column.shape[1]]] = column
        events[:, self._n_hits] = kept.sum(axis=1)
        if "label" in values:
            label = np.asarray(values["label"], np.float64)
            bad = np.flatnonzero((label != 0) & (label != 1))
            if bad.size:
                raise DataError(f"{self.path}: label {self.names['label']!r} must be 0 or 1 "
                                f"(1 = top), found {label[bad[0]]:g} at entry {start + int(bad[0])}")
            events[:, self._is_top] = label
        self.check_finite(events, entry, where)
        return Chunk(rows, entry, events, np.ones(rows))


@hookimpl
def bayesgen_processes():
    return {"cloud_file": CloudFileProcess}
