"""Event files: ROOT (uproot) and ``.npz``, streamed in chunks and written atomically.

Each writer fills a temporary file next to the target and renames it only when every chunk
is in; an error removes the temporary file and leaves any existing target untouched.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from bayesgen.core.errors import ConfigError

TREE_NAME = "events"
SUFFIXES = (".root", ".npz")


def check_output_path(path: str | Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """Fail early, before any work, on an output path that cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"output directory does not exist: {path.parent}")
    if suffixes and path.suffix not in suffixes:
        raise ConfigError(f"unsupported output type {path.suffix or '(none)'!r} for {path}; "
                          f"use one of {', '.join(suffixes)}")
    return path


def temporary_sibling(path: Path) -> Path:
    """A hidden temporary name in ``path``'s directory, keeping its suffix."""
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(handle)
    return Path(name)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    temporary = temporary_sibling(path)
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")


class EventWriter(ABC):
    """Context manager appending chunks ``{branch: (n,) array}`` to one event file."""

    def __init__(self, path: str | Path):
        self.path = check_output_path(path, SUFFIXES)
        self.temporary = temporary_sibling(self.path)
        self.n_events = 0

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._finish()
                os.replace(self.temporary, self.path)
        finally:
            self._cleanup()
            self.temporary.unlink(missing_ok=True)

    def write(self, chunk: dict[str, np.ndarray]) -> None:
        lengths = {len(v) for v in chunk.values()}
        if len(lengths) != 1:
            raise ValueError(f"branches of one chunk differ in length: {sorted(lengths)}")
        self._write(chunk)
        self.n_events += lengths.pop()

    @abstractmethod
    def _write(self, chunk: dict[str, np.ndarray]) -> None: ...

    def _finish(self) -> None:
        """Complete the temporary file (called only on success)."""

    def _cleanup(self) -> None:
        """Release resources (always called)."""


class RootWriter(EventWriter):
    """A ROOT file with one TTree ``events``, a branch per quantity."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._file = uproot.recreate(self.temporary)

    def _write(self, chunk):
        if TREE_NAME in self._file:
            self._file[TREE_NAME].extend(chunk)
        else:
            self._file[TREE_NAME] = chunk

    def _finish(self):
        self._file.close()

    def _cleanup(self):
        if not self._file.closed:
            self._file.close()


class NpzWriter(EventWriter):
    """A NumPy ``.npz`` archive, one array per branch; chunks are spooled to raw files."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._spool = Path(tempfile.mkdtemp(prefix=f".{self.path.stem}.", dir=self.path.parent))
        self._dtypes: dict[str, np.dtype] = {}

    def _write(self, chunk):
        for name, values in chunk.items():
            values = np.ascontiguousarray(values)
            self._dtypes.setdefault(name, values.dtype)
            with open(self._spool / name, "ab") as handle:
                handle.write(values.astype(self._dtypes[name], copy=False).tobytes())

    def _finish(self):
        with zipfile.ZipFile(self.temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, dtype in self._dtypes.items():
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                          "shape": (self.n_events,)}
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member, \
                        open(self._spool / name, "rb") as raw:
                    np.lib.format.write_array_header_2_0(member, header)
                    shutil.copyfileobj(raw, member, length=1 << 22)

    def _cleanup(self):
        shutil.rmtree(self._spool, ignore_errors=True)


def open_writer(path: str | Path) -> EventWriter:
    """A writer for ``path`` chosen by its suffix (``.root`` or ``.npz``)."""
    path = check_output_path(path, SUFFIXES)
    return RootWriter(path) if path.suffix == ".root" else NpzWriter(path)


def read_events(path: str | Path, tree: str = TREE_NAME) -> dict[str, np.ndarray]:
    """Read every branch of an event file written by :func:`open_writer`."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    with uproot.open(path) as file:
        return file[tree].arrays(library="np")
