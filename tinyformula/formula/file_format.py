"""The formula file: versioned JSON with a checksum, read as untrusted input.

A formula file holds a fitted :class:`~tinyformula.formula.estimator.TinyFormula`'s
parameters, its GP posteriors and frontier, and a SHA-256 of the rest. Reading one checks its
size, that it is JSON, its format and version, and its checksum (:func:`read_formula_file`,
:func:`verify`); the estimator then checks every value (a checksum proves nothing against an
edit that recomputes it): :func:`check_c_range`, :func:`check_frontier`, and the posteriors'
own checks (:meth:`~tinyformula.formula.gp.GPPosterior.from_dict`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError
from ..core.files import checksum

FORMAT = "tinyformula-formula"
VERSION = 1
MAX_FILE_BYTES = 16 * 2**20  # a formula of 10,000 frontier points is ~2 MB
C_VALUE = Real(0, 1e6, closed="right", why="a relative cost")
FRONTIER_VALUE = Real(0, 1e6, closed="right")
FRONTIER_COLUMNS = ("c", "r", "d", "w", "top1")


def sealed(body: dict) -> dict:
    """``body`` with its checksum added (what is written)."""
    return {**body, "checksum": checksum(body)}


def read_formula_file(path) -> dict:
    """The JSON object in the formula file at ``path`` (not yet verified); one line for a
    missing, unreadable, oversized or non-JSON file."""
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory; pass the formula file inside it "
                               f"(e.g. {path / 'formula.json'})")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise TinyFormulaError(f"no formula file at {path}") from None
    except OSError as error:
        raise TinyFormulaError(f"cannot read {path}: {error.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TinyFormulaError(f"{path} is larger than any formula file "
                               f"({MAX_FILE_BYTES // 2**20} MB); is it the right file?")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise TinyFormulaError(f"{path} is not valid JSON (truncated or corrupt); "
                               f"fit a new formula") from None


def verify(data, origin: str) -> None:
    """Refuse data that is not a formula of this version or fails its checksum."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TinyFormulaError(f"{origin} is not a tinyformula formula file")
    if data.get("version") != VERSION:
        raise TinyFormulaError(f"{origin} has format version {data.get('version')!r}; this "
                               f"tinyformula reads version {VERSION}: refit it")
    if data.get("checksum") != checksum({k: v for k, v in data.items() if k != "checksum"}):
        raise TinyFormulaError(f"{origin} was changed after it was written (checksum "
                               f"mismatch); restore it or fit a new one")


def check_c_range(values) -> tuple[float, float]:
    if not isinstance(values, list) or len(values) != 2:
        raise TinyFormulaError("c_range must be two numbers")
    lo, hi = (check("c_range", value, C_VALUE) for value in values)
    if lo > hi:
        raise TinyFormulaError(f"c_range {lo:g}..{hi:g} is reversed")
    return lo, hi


def check_frontier(frontier) -> dict[str, list[float]]:
    """A stored frontier: columns c, r, d (and w, top1) of equally many numbers above 0."""
    if not isinstance(frontier, dict) or not {"c", "r", "d"} <= set(frontier) \
            or not set(frontier) <= set(FRONTIER_COLUMNS):
        raise TinyFormulaError("the frontier must have columns c, r, d (and w, top1)")
    columns = {}
    for key, values in frontier.items():
        if not isinstance(values, list) or len(values) != len(frontier["c"]):
            raise TinyFormulaError("the frontier's columns must be lists of one length")
        columns[key] = [check(f"frontier {key}", value, FRONTIER_VALUE) for value in values]
    return columns
