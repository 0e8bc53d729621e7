"""Spec files: a base network in TOML or JSON (``--base path/to/mynet.toml``).

A file holds either a network declared as data (:mod:`.declared`: ``name``, ``stem``,
``stages``, ``head``, ``se``, ``scaling``) or a PyTorch model's factory (``name``,
``factory = "module:function"`` or ``"path/to/file.py:function"``, relative to the spec file,
``resolution``, ``summary``): see docs/bases.md. Read as untrusted input: size-limited, parsed,
every field checked, one line naming the problem.

TOML needs Python 3.11's ``tomllib``, or the ``tomli`` package on 3.10 (a dependency of the
package there); JSON needs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...core.errors import TinyFormulaError

SPEC_SUFFIXES = (".toml", ".json")
MAX_SPEC_BYTES = 1 * 2**20   # a spec of a thousand stages is ~50 kB


def looks_like_path(name) -> bool:
    """Whether ``--base NAME`` names a spec file rather than a registered base."""
    return isinstance(name, (str, Path)) and (
        str(name).lower().endswith(SPEC_SUFFIXES) or "/" in str(name) or "\\" in str(name))


def _load_toml(text: str):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise TinyFormulaError("reading a TOML spec needs Python 3.11 or the tomli package "
                                   "(pip install tomli); or write the spec as JSON") from None
    return tomllib.loads(text)


def read_spec_file(path) -> dict:
    """The table a spec file holds (not yet checked); one line for a missing, unreadable,
    oversized or malformed file."""
    path = Path(path)
    if path.suffix.lower() not in SPEC_SUFFIXES:
        raise TinyFormulaError(f"{path}: a spec file ends in .toml or .json")
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory, not a spec file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise TinyFormulaError(f"no spec file at {path} (and no registered base of that name; "
                               f"'tinyformula bases' lists them)") from None
    except OSError as error:
        raise TinyFormulaError(f"cannot read {path}: {error.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise TinyFormulaError(f"{path} is larger than any spec file ({MAX_SPEC_BYTES // 2**20} "
                               f"MB); is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TinyFormulaError(f"{path} is not UTF-8 text") from None
    try:
        data = _load_toml(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except TinyFormulaError:
        raise
    except (ValueError, RecursionError) as error:  # TOMLDecodeError and JSONDecodeError included
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TinyFormulaError(f"{path} is not valid {path.suffix[1:].upper()} ({detail})"
                               ) from None
    if not isinstance(data, dict):
        raise TinyFormulaError(f"{path}: a spec file holds one table of fields, not "
                               f"{type(data).__name__}")
    return data
