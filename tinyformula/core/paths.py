"""Where results go: a path a command will create or write, checked before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TinyFormulaError


def check_output_path(name: str, path) -> Path:
    """A path a command will create or write: not empty, each part within the file system's
    name length, and under a folder this user can write. Nothing is created here."""
    text = str(path) if path is not None else ""
    if not text.strip():
        raise TinyFormulaError(f"{name} must name a folder or file, got {text!r}")
    if "\0" in text:
        raise TinyFormulaError(f"{name} must not contain a NUL character")
    path = Path(text)
    existing = _nearest_existing(path.absolute())
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    too_long = [part for part in path.parts if len(os.fsencode(part)) > name_max]
    if too_long:
        raise TinyFormulaError(f"{name}: the name {too_long[0][:40]!r}... is longer than the "
                               f"{name_max} bytes a file name may have here")
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path.absolute()))) >= path_max:
        raise TinyFormulaError(f"{name} is longer than the {path_max} bytes a path may have")
    if not existing.is_dir() and existing != path.absolute():
        raise TinyFormulaError(f"{name}: {existing} is a file, not a folder")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TinyFormulaError(f"{name}: cannot write in {folder} (read-only or not yours); "
                               f"choose another place")
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (never raises for overlong names)."""
    while path != path.parent:
        try:
            if os.path.lexists(path):
                return path
        except (OSError, ValueError):
            pass
        path = path.parent
    return path


def _pathconf(path: Path, key: str, default: int) -> int:
    try:
        return os.pathconf(path if path.is_dir() else path.parent, key)
    except (OSError, ValueError):
        return default
