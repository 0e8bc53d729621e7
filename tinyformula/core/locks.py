"""Locks the kernel releases however a process ends: one search per run folder, one writer
per shared file.

* :class:`RunLock`: an exclusive, non-blocking lock on ``RUN_DIR/.lock``. Two ``tinyformula
  fit`` on one ``--out`` would train the same pending trials twice; the second is refused.
* :func:`locked_file`: a blocking lock beside a shared file (a latency table that several
  processes add to), held while it is read, merged and replaced.

Both are ``fcntl.flock``: the kernel releases the lock when the process ends, however it ends
(``kill -9`` included), so a stale lock file never blocks anyone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import TinyFormulaError

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock, or refuses with one line."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise TinyFormulaError(f"cannot lock {self.path.parent}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise TinyFormulaError(f"another search is running in {self.path.parent}{who}; wait "
                                   f"for it to end or choose another --out") from None
        try:  # who holds it, for the message above; the lock works without it (a full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self, remove: bool = False) -> None:
        """Let go of the lock (and delete the lock file when ``remove``: an abandoned run)."""
        if self._fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None


@contextmanager
def locked_file(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s companion ``path.lock`` (waiting for it)."""
    import fcntl

    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
