"""The formula file: versioned JSON with a checksum, read as untrusted input.

A formula file holds a fitted :class:`~tinyformula.formula.estimator.TinyFormula`'s
parameters, its GP posteriors and frontier, and a SHA-256 of the rest. Reading one checks its
size, that it is JSON, its format and version, its checksum, and every key against the
declared schema :data:`FORMULA_FILE`, nested ones included (the GP posteriors, the frontier,
the quality report), each number for its range (:func:`read_formula_file`, :func:`verify`): a
checksum proves nothing against an edit that recomputes it. The estimator then checks what
relates keys to each other: :func:`check_c_range`, :func:`check_frontier`, and the posteriors'
shapes (:meth:`~tinyformula.formula.gp.GPPosterior.from_dict`).
"""

from __future__ import annotations

from pathlib import Path

from ..core.constraints import Boolean, Integer, Options, OrNone, Real, check
from ..core.errors import TinyFormulaError
from ..core.files import checksum, json_kind, read_json_file
from ..core.schema import ListOf, Number, Record, Text, validate
from ..cost.latency.measure import DEVICES, RUNTIMES
from ..cost.yardstick import COST_NAMES
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE
from .fits import FITS
from .gp import MAX_TRAINING_POINTS, POSTERIOR_VALUES

FORMAT = "tinyformula-formula"
VERSION = 1
MAX_FILE_BYTES = 16 * 2**20  # a formula of 10,000 frontier points is ~2 MB
C_VALUE = Real(0, 1e6, closed="right", why="a relative cost")
FRONTIER_VALUE = Real(0, 1e6, closed="right")
FRONTIER_COLUMNS = ("c", "r", "d", "w", "top1")
MAX_FRONTIER = 100_000

# -- the schema: every key of a formula file, nested ones included, with its range ----------

_N = MAX_TRAINING_POINTS
POSTERIOR = Record(
    {"x_train": ListOf(POSTERIOR_VALUES["x_train"], 1, _N),
     "alpha": ListOf(POSTERIOR_VALUES["alpha"], 1, _N),
     "cholesky": ListOf(ListOf(POSTERIOR_VALUES["cholesky"], 1, _N), 1, _N),
     **{key: POSTERIOR_VALUES[key] for key in ("y_mean", "y_std", "constant", "length_scale",
                                                "sigma_0", "noise")}},
    optional={"monotone": Boolean()})
_COLUMN = ListOf(FRONTIER_VALUE, 1, MAX_FRONTIER)
FRONTIER = Record({"c": _COLUMN, "r": _COLUMN, "d": _COLUMN},
                  optional={"w": _COLUMN, "top1": ListOf(Real(-1e6, 1e6), 1, MAX_FRONTIER)})
_SHARE = Real(-1, 1)                                  # a difference of two top-1 scores
_MAYBE = OrNone(Number(), "not measured")             # a statistic: nan where undefined
_RD = Record({"r": _MAYBE, "d": _MAYBE})
QUALITY = Record(
    {"verdict": Options(("trustworthy", "weak", "noise")),
     "reasons": ListOf(Text(max_length=2000), 0, 100),
     "best_top1": Real(0, 1), "chance": Real(0, 1), "above_chance": _SHARE, "rise": _SHARE,
     "seed_noise": OrNone(Real(0, 1), "not measured"),
     "rise_over_noise": _MAYBE,
     "loo_rmse": Record({"r": _MAYBE, "d": _MAYBE}, optional={"top1": _MAYBE}),
     "loo_relative": _RD,
     "monotone_fit": Boolean(),
     "monotone": Record({"r": Boolean(), "d": Boolean()}),
     "spearman": _RD},
    optional={"points": Integer(0, MAX_FRONTIER), "chance_margin": _MAYBE,
              "rules": ListOf(Text(max_length=2000), 0, 100)})
FORMULA_FILE = Record(
    {"format": Options((FORMAT,)), "version": Integer(VERSION, VERSION),
     "base": Text(max_length=200, empty=False), "resolution_base": RESOLUTION_BASE,
     "num_classes": NUM_CLASSES, "c_range": ListOf(C_VALUE, 2, 2), "frontier": FRONTIER,
     "gp": Record({"r": POSTERIOR, "d": POSTERIOR}, optional={"top1": OrNone(POSTERIOR)}),
     "checksum": Text(max_length=64)},
    optional={"source": Text(), "cost": Options(COST_NAMES), "device": Options(DEVICES),
              "threads": Integer(1, 1024), "runtime": Options(RUNTIMES),
              "machine": OrNone(Text(max_length=1000)), "quality": OrNone(QUALITY),
              "fit": Options(FITS), "inputs": Text(max_length=64, empty=False)})
"""What a formula file holds (files written before a key existed lack the optional ones)."""


FORMULA_KIND = json_kind("tinyformula formula file",
                         lambda data: isinstance(data, dict) and data.get("format") == FORMAT)


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
    return read_json_file(path, MAX_FILE_BYTES, "formula file", "fit a new formula")


def verify(data, origin: str) -> dict:
    """Refuse data that is not a formula of this version, fails its checksum or does not fit
    :data:`FORMULA_FILE`; return it checked."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TinyFormulaError(f"{origin} is not a tinyformula formula file")
    if data.get("version") != VERSION:
        raise TinyFormulaError(f"{origin} has format version {data.get('version')!r}; this "
                               f"tinyformula reads version {VERSION}: refit it")
    if data.get("checksum") != checksum({k: v for k, v in data.items() if k != "checksum"}):
        raise TinyFormulaError(f"{origin} was changed after it was written (checksum "
                               f"mismatch); restore it or fit a new one")
    return validate(data, FORMULA_FILE, origin, "fit a new one")


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
