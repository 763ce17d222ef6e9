"""Process ``lhe_file``: Les Houches events (plain or gzipped ``.lhe``) via ``pylhe``.

The file is streamed (``pylhe``'s iterative XML parser, ``chunk_size`` events at a time turned
into awkward arrays with ``pylhe.to_awkward``). Among the final-state particles (status 1):

* ``leptons`` lists PDG ids that must all be present, as a multiset: ``[13, -13]`` asks for one
  μ⁻ and one μ⁺ (the hardest of each), ``[11, 11, -11, -11]`` for two of each; optional
  ``pt_min`` (GeV) and ``abs_eta_max`` apply to them first. The chosen leptons, ordered by pT
  (leading first), fill the target quantities ``<prefix><i>_<var>`` (``var`` in
  ``pt eta phi mass px py pz E rapidity``), e.g. ``mu1_pt … mu2_phi`` of ``like = "z_mumu"``.
* partons (|id| ≤ 5 or id 21) with pT ≥ ``jet_pt_min`` are the jets: their multiplicity is
  under ``"n_jets"`` in :meth:`~.root_file.FileProcess.sample_arrays`; a target quantity named
  ``n_jets`` is filled with it, and target
  quantities ``j<i>_<var>`` (e.g. ``j1_pt … j3_m`` of ``like = "z_mumu_jets"``) with the
  pT-ordered partons, 0 where an event has fewer. Events with fewer than ``n_jets_min`` or more
  than ``n_jets_max`` jets are dropped; ``n_jets_max`` defaults to the target's jet slots.

Event weights (XWGTUP) are under ``"weights"`` in ``sample_arrays``. Options, e.g. in
``[train.process_options]``::

    path = "unweighted_events.lhe.gz"
    like = "z_mumu"
    leptons = [13, -13]

Training/held-out split, subset, sampling and errors as for ``root_file`` (see :mod:`.root_file`). Units: GeV, radians,
φ in (-π, π].
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pylhe

from bayesgen.core.errors import ConfigError, DataError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.kinematics import wrap_phi
from bayesgen.plugins.processes.root_file import (HOLDOUT_FRACTION, KINEMATICS, Chunk, FileProcess,
                                                  object_values, parse_quantity)

PARTON_IDS = (1, 2, 3, 4, 5, 21)  #: |PDG id| of partons counted as jets
JET_PREFIX = "j"                  #: target quantities ``j<i>_<var>`` are filled with partons


def padded_values(objects: Any, slots: int, index: int, var: str) -> np.ndarray:
    """Values ``(m,)`` of ``var`` for object ``index`` (0-based) of jagged awkward :mod:`vector`
    ``objects``, 0 for events with fewer objects; φ wrapped to (-π, π]."""
    values = ak.fill_none(ak.pad_none(getattr(objects, KINEMATICS[var]), slots, axis=1, clip=True), 0.0)
    column = np.asarray(ak.to_numpy(values)[:, index], dtype=np.float64)
    return wrap_phi(column) if var == "phi" else column


class LHEFileProcess(FileProcess):
    """Les Houches events (plain or gzipped) via pylhe: final-state leptons mapped onto a target."""

    name = "lhe_file"
    description = ("Les Houches events (.lhe / .lhe.gz) via pylhe: final-state leptons mapped onto "
                   "a target process, parton multiplicity in n_jets")

    def __init__(self, path: str | Path, like: str = "z_mumu", leptons: Iterable[int] = (13, -13),
                 prefix: str | None = None, pt_min: float = 0.0, abs_eta_max: float = math.inf,
                 jet_pt_min: float = 0.0, n_jets_min: int = 0, n_jets_max: int | None = None,
                 chunk_size: int = 10_000, allow_fewer: bool = False,
                 holdout_fraction: float = HOLDOUT_FRACTION, sha256: str | None = None) -> None:
        super().__init__(path, like, allow_fewer, holdout_fraction, sha256)
        self.leptons = tuple(int(pid) for pid in leptons)
        if not self.leptons:
            raise ConfigError("leptons must list at least one PDG id, e.g. [13, -13]")
        self.pt_min, self.abs_eta_max = float(pt_min), float(abs_eta_max)
        self.jet_pt_min = float(jet_pt_min)
        self.jet_slots = max((p[1] for p in map(parse_quantity, self.quantities)
                              if p and p[0] == JET_PREFIX), default=0)
        self.n_jets_min = int(n_jets_min)
        self.n_jets_max = int(n_jets_max) if n_jets_max is not None else (self.jet_slots or None)
        if self.n_jets_max is not None and self.n_jets_max < self.n_jets_min:
            raise ConfigError(f"n_jets_max = {self.n_jets_max} is below n_jets_min = {self.n_jets_min}")
        if chunk_size <= 0:
            raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.prefix = self._lepton_prefix(prefix)

    def _lepton_prefix(self, prefix: str | None) -> str:
        """The quantity prefix the leptons fill; every target quantity must be fillable."""
        parsed = {q: parse_quantity(q) for q in self.quantities
                  if q != "n_jets" and (parse_quantity(q) or ("",))[0] != JET_PREFIX}
        prefixes = sorted({p[0] for p in parsed.values() if p})
        if prefix is None:
            if len(prefixes) != 1:
                raise ConfigError(f"cannot tell which objects of {self.like!r} the leptons fill "
                                  f"(prefixes: {', '.join(prefixes) or 'none'}); set prefix = \"…\"")
            prefix = prefixes[0]
        bad = [q for q, p in parsed.items()
               if p is None or p[0] != prefix or p[2] not in KINEMATICS or p[1] > len(self.leptons)]
        if bad:
            raise ConfigError(f"{', '.join(bad)} of {self.like!r} cannot be filled from "
                              f"{len(self.leptons)} lepton(s) {list(self.leptons)} with prefix "
                              f"{prefix!r}")
        return prefix

    @property
    def selection(self) -> str:
        cuts = [f"pT > {self.pt_min:g} GeV"] if self.pt_min > 0 else []
        cuts += [f"|η| < {self.abs_eta_max:g}"] if math.isfinite(self.abs_eta_max) else []
        return (f"final-state PDG ids {list(self.leptons)}"
                + (f" with {', '.join(cuts)}" if cuts else ""))

    def _guarded(self, read: Any) -> Any:
        """``read()`` with pylhe's parse-error warning (it then stops reading) made a DataError."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = read()
            except Exception as error:  # noqa: BLE001 - pylhe raises ValueError, XML, gzip errors
                raise DataError(f"{self.path} is not a readable LHE file: {error}") from None
        for warning in caught:
            if "Parse Error" in str(warning.message):
                raise DataError(f"{self.path}: broken LHE file ({warning.message})")
            warnings.warn(warning.message, warning.category, stacklevel=3)
        return result

    def chunks(self) -> Iterator[Chunk]:
        if not self.path.is_file():
            raise DataError(f"LHE file not found: {self.path}")
        lhe = self._guarded(lambda: pylhe.LHEFile.fromfile(self.path, with_attributes=False))
        events, start = iter(lhe.events), 0
        while batch := self._guarded(lambda: list(itertools.islice(events, self.chunk_size))):
            yield self._select(pylhe.to_awkward(batch), start)
            start += len(batch)

    def _select(self, arrays: Any, start: int) -> Chunk:
        n_read = len(arrays)
        final = arrays.particles[arrays.particles.status == 1]
        momenta = final.vector
        for component in ("px", "py", "pz", "e"):
            flags = ak.any(~np.isfinite(momenta[component]), axis=1)
            bad = np.flatnonzero(ak.to_numpy(flags))
            if bad.size:
                raise DataError(f"{self.path}: non-finite {component} of a final-state particle "
                                f"in event {start + int(bad[0])} (0-based)")
        is_parton = np.isin(abs(ak.flatten(final.id)), PARTON_IDS)
        is_parton = ak.unflatten(is_parton, ak.num(final.id)) & (momenta.pt >= self.jet_pt_min)
        n_jets = ak.to_numpy(ak.sum(is_parton, axis=1)).astype(np.int64)
        jets = momenta[is_parton]
        jets = jets[ak.argsort(jets.pt, axis=1, ascending=False, stable=True)]

        accept = (momenta.pt > self.pt_min) & (abs(momenta.eta) < self.abs_eta_max)
        mask = n_jets >= self.n_jets_min
        if self.n_jets_max is not None:
            mask &= n_jets <= self.n_jets_max
        groups = []
        for pid, count in Counter(self.leptons).items():
            chosen = momenta[accept & (final.id == pid)]
            chosen = chosen[ak.argsort(chosen.pt, axis=1, ascending=False, stable=True)]
            mask &= ak.to_numpy(ak.num(chosen, axis=1) >= count)
            groups.append((chosen, count))
        rows = np.flatnonzero(mask)
        leptons = ak.concatenate([g[rows][:, :count] for g, count in groups], axis=1)
        leptons = leptons[ak.argsort(leptons.pt, axis=1, ascending=False, stable=True)]
        columns = []
        for q in self.quantities:
            if q == "n_jets":
                columns.append(n_jets[rows].astype(np.float64))
                continue
            prefix, index, var = parse_quantity(q)
            if prefix == JET_PREFIX:
                columns.append(padded_values(jets[rows], self.jet_slots, index - 1, var))
            else:
                columns.append(object_values(leptons, None, index - 1, var))
        events = np.stack(columns, axis=-1) if columns else np.empty((len(rows), 0))
        weights = ak.to_numpy(arrays.eventinfo.weight[rows]).astype(np.float64)
        entry = start + rows
        self.check_finite(events, entry, "(event number, 0-based)")
        return Chunk(n_read, entry, events, weights, {"n_jets": n_jets[rows]})


@hookimpl
def bayesgen_processes():
    return {"lhe_file": LHEFileProcess}
