"""An exclusive lock per run directory, so that two writers never share one.

The lock is an advisory ``flock`` on ``RUN/.lock``, which holds the holder's process id and
host. The kernel releases it when the holder exits, however it exits, so a lock file left by a
killed writer is simply taken over; a live holder makes the second writer fail at once with a
message naming it. The holder removes the file when it is done.
"""
from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from bayesgen.core.errors import RunError

LOCK_NAME = ".lock"


class RunLock:
    """Context manager holding the lock of ``run_dir`` (created if missing, and removed again
    on exit if it was created here and is still empty)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._handle: int | None = None
        self._created = False

    def __enter__(self) -> "RunLock":
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._handle = self._acquire()
        except BaseException:
            self._remove_created_dir()
            raise
        os.ftruncate(self._handle, 0)
        os.write(self._handle, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return self

    def _acquire(self) -> int:
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(handle, 200).decode(errors="replace").split()
                os.close(handle)
                who = (f"process {holder[0]} on {holder[1]}" if len(holder) == 2 else "another process")
                raise RunError(f"run directory {self.run_dir} is in use by {who}; wait for it to "
                               f"finish or choose another --out") from None
            try:  # the holder we waited for may have removed the file meanwhile: lock the new one
                if os.path.samestat(os.fstat(handle), os.stat(self.path)):
                    return handle
            except FileNotFoundError:
                pass
            os.close(handle)

    def __exit__(self, kind, value, traceback) -> None:
        self.path.unlink(missing_ok=True)  # while still locked, so no one locks a removed file
        os.close(self._handle)
        self._handle = None
        self._remove_created_dir()

    def _remove_created_dir(self) -> None:
        if self._created and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()
