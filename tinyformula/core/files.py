"""Writing files so that a reader never sees half of one, and no foreign file is replaced.

Every file the toolkit writes (formulas, models, checkpoints, exports, cards, figures, CSVs,
latency tables, folder markers) goes through :func:`write_atomically`:

* its content is made in memory first (a serialiser that fails, or aborts in native code on
  an I/O error as TorchScript's writer does, never meets the disk);
* it is written to a temporary file in the destination's folder, synced, and renamed over the
  destination in one step: the previous complete file stays until then;
* a full disk (ENOSPC), a quota (EDQUOT), a read-only file system (EROFS) or any other
  ``OSError`` becomes one :class:`~.errors.TinyFormulaError` line saying what to do, and the
  temporary file is removed;
* with a :class:`FileKind`, an existing file is replaced only when it is recognised as one of
  that kind (the toolkit's own): anything else is refused and left as it was.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import TinyFormulaError


@dataclass(frozen=True)
class FileKind:
    """A kind of file the toolkit writes: its name in words and how an existing file is
    recognised as one (``recognise(path)``; any exception it raises means "no")."""

    name: str
    recognise: Callable[[Path], bool]

    def recognises(self, path: Path) -> bool:
        try:
            return bool(self.recognise(path))
        except Exception:  # a reader's failure is an answer: not this kind
            return False


def check_replaceable(path, kind: FileKind | None) -> Path:
    """Refuse a destination that is a folder, sits in no folder, or (with ``kind``) is an
    existing file not recognised as ``kind``: what a command checks before any work."""
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory; give a file name")
    if not path.parent.is_dir():
        why = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise TinyFormulaError(f"cannot write {path}: {path.parent} {why}")
    if kind is not None and (path.exists() or path.is_symlink()) and not (
            path.is_file() and kind.recognises(path)):
        raise TinyFormulaError(f"{path} exists and is not a {kind.name}; tinyformula replaces "
                               f"only files it wrote: move it or choose another name")
    return path


def replace_atomically(path, write_to: Callable[[str], None],
                       kind: FileKind | None = None) -> Path:
    """Have ``write_to(temporary_name)`` write the file's whole content, then move it to
    ``path`` in one rename: an existing file is replaced whole or not at all. Returns the path.

    The temporary file sits in the destination's folder (a rename never crosses file systems)
    and gets the permissions an ordinary ``open`` would give under the user's umask
    (``mkstemp`` alone would make it 0600, unreadable to colleagues on a shared machine). An
    unwritable destination or a failed write raises TinyFormulaError (one line); the temporary
    file is removed whatever went wrong. Prefer :func:`write_atomically`, which makes the
    content in memory first.
    """
    path = check_replaceable(path, kind)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise cannot_write(path, error) from None
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
            raise cannot_write(path, error) from None
        raise
    return path


def write_atomically(path, content: str | bytes | Callable[[IO[bytes]], None],
                     kind: FileKind | None = None) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to a binary handle, called
    on an in-memory buffer) to ``path`` atomically (see :func:`replace_atomically`); with
    ``kind``, an existing file must be one of that kind. Returns the path."""
    check_replaceable(path, kind)
    if callable(content):
        buffer = io.BytesIO()
        try:
            content(buffer)
        except OSError as error:  # a serialiser that reports its own I/O failure
            raise cannot_write(Path(path), error) from None
        data = buffer.getvalue()
    else:
        data = content.encode() if isinstance(content, str) else bytes(content)

    def write_to(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    return replace_atomically(path, write_to, kind)


ADVICE = {
    errno.ENOSPC: "the disk is full: free some space and run the same command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable place",
    errno.EACCES: "permission denied: choose a folder you can write",
    errno.EPERM: "permission denied: choose a folder you can write",
}


def cannot_write(path: Path, error: OSError) -> TinyFormulaError:
    """One line for a failed write, saying what to do; the previous complete file (if any)
    is still in place and nothing half-written stays."""
    advice = ADVICE.get(error.errno or 0, f"{error.strerror or error}: check the folder and run "
                                          f"the same command again")
    return TinyFormulaError(f"cannot write {path}: {advice} (nothing was half-written)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def checksum(body: dict) -> str:
    """SHA-256 of ``body`` as canonical JSON: what a file stores beside its content, so an
    edit or a truncation is caught on reading."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# -- reading: one line for a file that is missing, too large or not what it should be -------

def read_limited(path, max_bytes: int, what: str, advice: str = "") -> bytes:
    """The bytes of the ``what`` at ``path`` (at most ``max_bytes``, read in one go so an
    absurd file is never loaded whole); one line for a missing, unreadable, folder or
    oversized file. The first step of every reader; :func:`read_json_file` the second for
    JSON, then ``core.schema.validate`` against the file's declared schema."""
    path = Path(path)
    tail = f"; {advice}" if advice else ""
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory, not a {what}{tail}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise TinyFormulaError(f"no {what} at {path}") from None
    except OSError as error:
        raise TinyFormulaError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > max_bytes:
        raise TinyFormulaError(f"{path} is larger than any {what} ({max_bytes / 2**20:g} MB); "
                               f"is it the right file?")
    return raw


def read_json_file(path, max_bytes: int, what: str, advice: str = ""):
    """The JSON value in the ``what`` at ``path`` (not yet validated: pass it to
    ``core.schema.validate`` with the file's schema); one line for anything that is not
    JSON text (truncated, binary, too deeply nested)."""
    raw = read_limited(path, max_bytes, what, advice)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        tail = f"; {advice}" if advice else ""
        raise TinyFormulaError(f"{path} is not valid JSON (truncated or corrupt){tail}") from None


# -- recognisers for the kinds of file the lower layers write ----------------------------------

MAX_RECOGNISED_JSON = 256 * 2**20


def read_json(path: Path):
    """The JSON in ``path`` (for recognisers): a ValueError for anything else."""
    if path.stat().st_size > MAX_RECOGNISED_JSON:
        raise ValueError("too large")
    return json.loads(path.read_bytes().decode("utf-8"))


def json_kind(name: str, test: Callable[[object], bool]) -> FileKind:
    """A JSON file whose content passes ``test``."""
    return FileKind(name, lambda path: test(read_json(path)))


PNG = FileKind("PNG image", lambda path: path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n")
