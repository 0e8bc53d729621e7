"""Output folders the toolkit recognises as its own before it writes anything into them.

A command that fills a folder (``fit --out``: a search; ``train --recipe final --out``: a final
training) first checks it (:func:`check_folder`, which only reads) and then marks it
(:func:`mark_folder`): a small file, ``.tinyformula``, saying which kind of output the folder
holds and which command made it. A folder is accepted when it does not exist, is empty, is
marked with the same kind, or (written before markers existed) holds only what that kind
writes, recognised by the caller. Anything else is refused in one line and left byte for
byte as it was: another kind of output, another program's files, a damaged marker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import TinyFormulaError
from .files import FileKind, read_json_file, write_atomically

MARKER = ".tinyformula"
FORMAT = "tinyformula-folder"
VERSION = 1
MAX_MARKER_BYTES = 64 * 1024


MARKER_KIND = FileKind("tinyformula folder marker",
                       lambda path: read_marker(path.parent) is not None)


def read_marker(folder: Path) -> dict | None:
    """The marker of ``folder`` (``kind`` and ``made_by``), or None when it has none; a
    marker that is not one refuses the folder."""
    path = Path(folder) / MARKER
    if not path.exists():
        return None
    try:
        data = read_json_file(path, MAX_MARKER_BYTES, "folder marker")
    except TinyFormulaError:
        data = None
    if not (isinstance(data, dict) and data.get("format") == FORMAT
            and isinstance(data.get("kind"), str) and isinstance(data.get("made_by"), str)):
        raise TinyFormulaError(f"{path} is not a tinyformula folder marker; {folder} was not "
                               f"written by tinyformula, or is damaged: choose another --out")
    return data


def check_folder(folder, kind: str, made_by: str,
                 legacy: Callable[[Path], bool] = lambda folder: False) -> bool:
    """Refuse (one line, nothing written) a folder that cannot take ``kind``'s files;
    returns whether it already holds output of that kind.

    ``made_by`` names the command that writes this kind (for messages); ``legacy(folder)``
    says whether an unmarked, non-empty folder holds only what this kind wrote before
    markers existed."""
    folder = Path(folder)
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise TinyFormulaError(f"--out {folder} is a file; give a folder")
    marker = read_marker(folder)
    if marker is not None:
        if marker["kind"] != kind:
            raise TinyFormulaError(f"{folder} holds the output of '{marker['made_by']}' (a "
                                   f"{marker['kind']}), not of '{made_by}'; choose another --out")
        return True
    try:
        entries = sorted(entry.name for entry in folder.iterdir())
    except OSError as error:
        raise TinyFormulaError(f"cannot read {folder}: {error.strerror or error}") from None
    if not entries:
        return False
    if legacy(folder):
        return True
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise TinyFormulaError(f"{folder} is not empty ({shown}) and holds no {kind} of "
                           f"'{made_by}'; tinyformula leaves folders it did not write alone: "
                           f"give a new or empty folder")


def mark_folder(folder, kind: str, made_by: str) -> Path:
    """Create ``folder`` (and its parents) if needed and mark it as holding ``kind``'s output
    (kept if already marked): what :func:`check_folder` recognises later."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {folder}: {error.strerror or error}") from None
    if read_marker(folder) is None:
        write_atomically(folder / MARKER, json.dumps(
            {"format": FORMAT, "version": VERSION, "kind": kind, "made_by": made_by}) + "\n",
            MARKER_KIND)
    return folder


def unmark_folder(folder) -> None:
    """Remove the marker and the folder if nothing else is in it (a run abandoned before it
    wrote anything)."""
    folder = Path(folder)
    (folder / MARKER).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass
