"""The latency table on disk: one JSON file per base and setting, in the user's cache.

Keyed by machine, device, runtime, threads, batch and torch version (:func:`table_key`),
written atomically under a lock (several processes may add to one table), with a checksum. A
corrupt or stale file is refused with one line that names it, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ...core.constraints import Integer, OrNone, Real
from ...core.errors import TinyFormulaError
from ...core.files import checksum, json_kind, read_json_file, write_atomically
from ...core.locks import locked_file
from ...core.schema import ListOf, MapOf, Record, Text, validate
from .measure import Setting, machine_description

FORMAT = 1
MAX_TABLE_BYTES = 256 * 2**20

# -- the schema: every entry of a table, with its range ----------------------------------------

_MS = Real(0, 1e7, why="milliseconds")
UNIT_ENTRY = Record({"p10_ms": _MS},
                    optional={"median_ms": _MS, "iqr_ms": _MS, "reps": Integer(1),
                              "load": Real(0, 1e6), "shape": ListOf(Integer(0), 0, 8),
                              "unit": Text(max_length=200),
                              "flops": OrNone(Integer(0), "not counted")})
CALIBRATION_ENTRY = Record(
    {"offset_ms": Real(-1e6, 1e6, why="milliseconds"),
     "factor": Real(0, 1e6, closed="neither", why="measured / summed block latency"),
     "points": ListOf(ListOf(_MS, 2, 2), 0, 10_000)})
TABLE_BODY = Record({"key": Record({}), "units": MapOf(UNIT_ENTRY),
                     "calibrations": MapOf(CALIBRATION_ENTRY)})
"""What a latency table's body holds (inside ``{"body": ..., "checksum": ...}``)."""
TABLE_KIND = json_kind("tinyformula latency table",
                       lambda data: isinstance(data, dict) and set(data) == {"body", "checksum"})


def cache_root() -> Path:
    """``$TINYFORMULA_CACHE`` if set, else ``$XDG_CACHE_HOME/tinyformula`` (``~/.cache``)."""
    if os.environ.get("TINYFORMULA_CACHE"):
        return Path(os.environ["TINYFORMULA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyformula"


def table_key(base: str, setting: Setting, protocol: str = "standard") -> dict:
    """Everything a table's timings depend on (the protocol only when not the standard one:
    tables written before protocols had names keep their key)."""
    import torch

    key = {"format": FORMAT, "base": base, "machine": machine_description(setting.device),
           "device": setting.device, "runtime": setting.runtime, "threads": setting.threads,
           "batch": setting.batch, "torch": torch.__version__,
           "onnxruntime": _onnxruntime_version() if setting.runtime == "onnxruntime" else None}
    if protocol != "standard":
        key["protocol"] = protocol
    return key


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def table_path(key: dict, cache_dir: Path | None = None) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = (f"{key['base']}-{key['device']}-{key['runtime']}-t{key['threads']}-b{key['batch']}"
            f"{'-' + key['protocol'] if 'protocol' in key else ''}-{digest}.json")
    return Path(cache_dir or cache_root() / "latency") / name


def read_table(path: Path, key: dict) -> dict:
    """The table stored at ``path`` (``units`` and ``calibrations``), or an empty one; a file
    that cannot be read, fails its checksum or was made for another key is refused."""
    if not path.exists():
        return {"key": key, "units": {}, "calibrations": {}}
    advice = f"delete {path} to rebuild it"
    data = read_json_file(path, MAX_TABLE_BYTES, "latency table", advice)
    if not isinstance(data, dict) or not {"body", "checksum"} <= set(data):
        raise TinyFormulaError(f"latency table {path} is corrupt (not a body and its "
                               f"checksum); {advice}")
    body, stored_checksum = data["body"], data["checksum"]
    if not isinstance(body, dict) or checksum(body) != stored_checksum:
        raise TinyFormulaError(f"latency table {path} is corrupt (checksum mismatch); {advice}")
    # A checksum proves nothing against an edit that recomputes it: every entry is checked.
    body = validate(body, TABLE_BODY, f"latency table {path}", advice)
    if body.get("key") != key:
        stored = body.get("key") or {}
        changed = sorted(k for k in set(key) | set(stored) if stored.get(k) != key.get(k))
        raise TinyFormulaError(f"latency table {path} is stale: made for another "
                               f"{', '.join(changed)}; {advice}")
    return body


def check_writable(path: Path) -> None:
    """Refuse, before anything is timed, a table that could not be saved (a read-only or
    missing cache): timings that cannot be kept would be lost."""
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise TinyFormulaError(f"cannot write the latency table {path} "
                               f"({error.strerror or error}); nothing was timed: make "
                               f"{path.parent} writable or set TINYFORMULA_CACHE to a "
                               f"writable folder") from None


def write_table(path: Path, body: dict) -> None:
    """Merge ``body`` into the file under a lock (another process may have added units) and
    replace it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked_file(path):
        current = read_table(path, body["key"])
        merged = {"key": body["key"],
                  "units": {**current["units"], **body["units"]},
                  "calibrations": {**current["calibrations"], **body["calibrations"]}}
        write_atomically(path, json.dumps({"body": merged, "checksum": checksum(merged)},
                                          indent=1, sort_keys=True), TABLE_KIND)
    body.update(merged)
