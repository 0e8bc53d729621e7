"""Writing files so that a reader never sees half of one: a temporary file, fsync, rename."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import TinyFormulaError


def replace_atomically(path, write_to: Callable[[str], None]) -> Path:
    """Have ``write_to(temporary_name)`` write the file's whole content, then move it to
    ``path`` in one rename: an existing file is replaced whole or not at all. Returns the path.

    The temporary file sits in the destination's folder (a rename never crosses file systems)
    and gets the permissions an ordinary ``open`` would give under the user's umask
    (``mkstemp`` alone would make it 0600, unreadable to colleagues on a shared machine). An
    unwritable destination raises TinyFormulaError; a failed write removes the temporary file
    and re-raises.
    """
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory; give a file name")
    if not path.parent.is_dir():
        why = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise TinyFormulaError(f"cannot write {path}: {path.parent} {why}")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _cannot_write(path, error) from None
    os.close(fd)
    try:
        write_to(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise
    return path


def write_atomically(path, content: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to a binary handle) to
    ``path`` atomically (see :func:`replace_atomically`); return the path."""
    def write_to(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode() if isinstance(content, str) else content)

    return replace_atomically(path, write_to)


def _cannot_write(path: Path, error: OSError) -> TinyFormulaError:
    """One line for a failed write; a full disk says what to do (nothing half-written stays)."""
    advice = ("free some space and run the same command again" if error.errno == errno.ENOSPC
              else "check the folder and run the same command again")
    return TinyFormulaError(f"cannot write {path}: {error.strerror or error}; {advice}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def checksum(body: dict) -> str:
    """SHA-256 of ``body`` as canonical JSON: what a file stores beside its content, so an
    edit or a truncation is caught on reading."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
