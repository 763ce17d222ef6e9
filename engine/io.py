"""Event files: ROOT (uproot) and ``.npz``, streamed in chunks and written atomically.

Every writer of the project (event files, checkpoints, JSON, text, plots) goes through
:class:`AtomicFile`: it fills a hidden temporary file next to the target and renames it only when
the content is complete; an error removes the temporary file and leaves any existing target
untouched. Temporary names carry the host and process id, so concurrent writers never share
one, and those left behind by a killed writer on this host are removed by the next writer of
the same target. Files get the mode a plain ``open`` would give them: the umask's for a new
file, the old file's when one is replaced.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from bayesgen.core.errors import ConfigError

TREE_NAME = "events"
SUFFIXES = (".root", ".npz")
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"


def check_output_path(path: str | Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """Fail early, before any work, on an output path that cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"output directory does not exist: {path.parent}")
    if suffixes and path.suffix not in suffixes:
        raise ConfigError(f"unsupported output type {path.suffix or '(none)'!r} for {path}; "
                          f"use one of {', '.join(suffixes)}")
    return path


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporary_names(path: Path) -> re.Pattern:
    """Names of :class:`AtomicFile` temporaries of ``path`` (and anything a writer hangs on
    them, such as a spool directory): ``.STEM.HOST_PID_TOKEN.partSUFFIX…``."""
    return re.compile(rf"^\.{re.escape(path.stem)}\.(?P<host>[A-Za-z0-9-]+)_(?P<pid>\d+)_[0-9a-f]+"
                      rf"\.part{re.escape(path.suffix)}")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` that writers on this host left when they died; return them."""
    pattern, removed = _temporary_names(path), []
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match and match["host"] == HOST and not process_alive(int(match["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


class AtomicFile:
    """A hidden temporary file beside ``path`` that becomes ``path`` on :meth:`commit`.

    As a context manager it yields the temporary path and commits when the block succeeds
    (discards otherwise)::

        with AtomicFile(path) as temporary:
            torch.save(state, temporary)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        remove_stale_temporaries(self.path)
        self.temporary = self.path.with_name(f".{self.path.stem}.{HOST}_{os.getpid()}_{secrets.token_hex(4)}"
                                             f".part{self.path.suffix}")
        handle = os.open(self.temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # umask applies
        try:
            if self.path.exists():  # a replaced file keeps its mode
                os.fchmod(handle, stat.S_IMODE(self.path.stat().st_mode))
        finally:
            os.close(handle)

    def commit(self) -> Path:
        """Rename the temporary file onto the target."""
        os.replace(self.temporary, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (nothing once committed)."""
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.commit()
        finally:
            self.discard()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with AtomicFile(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")


class EventWriter(ABC):
    """Context manager appending chunks ``{branch: (n,) array}`` to one event file."""

    def __init__(self, path: str | Path):
        self.path = check_output_path(path, SUFFIXES)
        self._output = AtomicFile(self.path)
        self.temporary = self._output.temporary
        self.n_events = 0

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._finish()
                self._output.commit()
        finally:
            self._cleanup()
            self._output.discard()

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
        self._spool = self.temporary.with_name(self.temporary.name + ".spool")
        self._spool.mkdir()
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
