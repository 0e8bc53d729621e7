"""Writing files so that a reader never sees half of one: a temporary file, fsync, rename."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import TinyFormulaError


def write_atomically(path, content: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to a binary handle) to
    ``path`` via a temporary file in the same folder and a rename; return the path.

    The file gets the permissions an ordinary ``open`` would give under the user's umask
    (``mkstemp`` alone would make it 0600, unreadable to colleagues on a shared machine).
    """
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise TinyFormulaError(f"folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise
    return path


def _cannot_write(path: Path, error: OSError) -> TinyFormulaError:
    """One line for a failed write; a full disk says what to do (nothing half-written stays)."""
    advice = ("free some space and run the same command again" if error.errno == errno.ENOSPC
              else "check the folder and run the same command again")
    return TinyFormulaError(f"cannot write {path}: {error.strerror or error}; {advice}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
