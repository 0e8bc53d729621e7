"""The Tiny Formula: r(c) and d(c) from a Pareto frontier, and the width that hits a budget.

``TinyFormula`` follows scikit-learn's estimator conventions: constructor arguments are plain
parameters, ``fit`` returns self, learned state ends in ``_``. ``fit`` uses scikit-learn's
GPs (see ``tinyformula.gp``) and keeps their posteriors; a formula file holds exactly those, so
loading one and predicting imports neither torch, scikit-learn nor numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from .bases import get_base
from .errors import TinyFormulaError
from .gp import GPPosterior, make_gp
from .solve import Budget, check_budget, solve_budget

FORMAT = "tinyformula-formula"
VERSION = 1
MIN_POINTS = 3
BUILTIN_BASES = ("efficientnet_b0",)


@dataclass(frozen=True)
class Recommendation:
    """What ``predict`` answers for a budget: the configuration to build and how sure we are."""

    c: float
    r: float
    d: float
    w: float
    resolution: int
    flops: int
    params: int
    c_achieved: float
    r_std: float
    d_std: float
    extrapolated: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _frontier_columns(frontier) -> dict:
    """Columns c, r, d (and w when present) from a DataFrame, a mapping or a list of records."""
    import numpy as np

    if isinstance(frontier, (list, tuple)):
        frontier = {key: [row[key] for row in frontier] for key in ("c", "r", "d")
                    if frontier and all(key in row for row in frontier)}
    columns = {}
    for key in ("c", "r", "d", "w"):
        try:
            columns[key] = np.asarray(frontier[key], dtype=float).ravel()
        except (KeyError, IndexError):
            if key != "w":
                raise TinyFormulaError(f"the frontier needs columns c, r and d; {key!r} is missing"
                                       ) from None
        except (TypeError, ValueError):
            raise TinyFormulaError(f"frontier column {key!r} is not numeric") from None
    n = len(columns["c"])
    if any(len(values) != n for values in columns.values()):
        raise TinyFormulaError("frontier columns differ in length")
    if n < MIN_POINTS:
        raise TinyFormulaError(
            f"a formula needs at least {MIN_POINTS} frontier points, got {n}; run more trials "
            f"or a longer training schedule so more candidates reach the frontier")
    for key in ("c", "r", "d"):
        if not np.all(np.isfinite(columns[key])) or np.any(columns[key] <= 0):
            raise TinyFormulaError(f"frontier column {key!r} must hold finite numbers above 0")
    return columns


class TinyFormula:
    """r(c) and d(c) learned from a Pareto frontier, plus the width solver.

    Parameters
    ----------
    base : str
        Base network the frontier was measured on.
    resolution_base : int
        Input size at r = 1 (224 for ImageNet-style data, 32 for small images).
    num_classes : int
        Classes of the task; c is relative to the base with this many outputs.
    source : str
        Where the frontier came from, shown with every prediction.
    noise_bounds : (float, float)
        Range of the white-noise level (on normalised targets). Measured frontiers are noisy;
        the built-in formula, fitted on published configurations, uses a tiny upper bound so
        it passes through them.
    random_state : int
        Seed of the GP optimiser's restarts (fits are deterministic).
    """

    def __init__(self, base: str = "efficientnet_b0", resolution_base: int = 224,
                 num_classes: int = 1000, source: str = "",
                 noise_bounds: tuple[float, float] = (1e-6, 1e-1), random_state: int = 0):
        self.base = base
        self.noise_bounds = noise_bounds
        self.resolution_base = resolution_base
        self.num_classes = num_classes
        self.source = source
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, frontier) -> "TinyFormula":
        """Fit r(c) and d(c) on frontier rows with columns ``c, r, d`` (more are allowed)."""
        import numpy as np

        get_base(self.base)
        columns = _frontier_columns(frontier)
        from sklearn.exceptions import ConvergenceWarning

        x = np.log(columns["c"])[:, None]
        with warnings.catch_warnings():
            # A hyper-parameter at its bound (e.g. noise at its floor) is expected, not a fault.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_r_ = make_gp(self.noise_bounds, self.random_state).fit(x, columns["r"])
            self.gp_d_ = make_gp(self.noise_bounds, self.random_state).fit(x, columns["d"])
        self.posterior_r_ = GPPosterior.from_sklearn(self.gp_r_)
        self.posterior_d_ = GPPosterior.from_sklearn(self.gp_d_)
        self.c_range_ = (float(columns["c"].min()), float(columns["c"].max()))
        self.frontier_ = {key: [float(v) for v in values] for key, values in columns.items()}
        return self

    def _check_fitted(self):
        if not hasattr(self, "posterior_r_"):
            raise TinyFormulaError("this TinyFormula is not fitted; call fit() or load() first")

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, c, return_std: bool = False):
        """GP means of r and d at budgets ``c`` (numpy arrays), and their standard deviations."""
        import numpy as np

        self._check_fitted()
        c = np.atleast_1d(np.asarray(c, dtype=float))
        if not np.all(np.isfinite(c)) or np.any(c <= 0):
            raise TinyFormulaError("budgets c must be finite numbers above 0")
        r, r_std = np.array([self.posterior_r_.predict(x) for x in np.log(c)]).T
        d, d_std = np.array([self.posterior_d_.predict(x) for x in np.log(c)]).T
        return (r, d, r_std, d_std) if return_std else (r, d)

    def is_extrapolation(self, c: float) -> bool:
        self._check_fitted()
        lo, hi = self.c_range_
        return not (lo * (1 - 1e-9) <= c <= hi * (1 + 1e-9))

    def check_budget(self, c) -> float:
        """c must be above 0 and at most 1 (the formula shrinks networks), or at most the top
        of the range the formula was fitted on when that goes beyond 1."""
        c = check_budget(c)
        self._check_fitted()
        limit = max(1.0, self.c_range_[1])
        if c > limit:
            raise TinyFormulaError(
                f"c={c:g} asks for {c:g}x the FLOPs of {self.base}; the Tiny Formula shrinks "
                f"networks (this one was fitted on c up to {self.c_range_[1]:.3g}): give a budget "
                f"in (0, {limit:g}], e.g. 0.25 for a quarter of the base's FLOPs")
        return c

    def recommend(self, c: float, num_classes: int | None = None,
                  resolution_base: int | None = None) -> Recommendation:
        """The configuration to build for relative budget c: r and d from the GPs, w solved so
        the network lands within 2% below c (nearby resolutions tried when a width step is too
        coarse). ``num_classes`` / ``resolution_base`` default to the formula's own."""
        c = self.check_budget(c)
        r, r_std = self.posterior_r_.predict(math.log(c))
        d, d_std = self.posterior_d_.predict(math.log(c))
        budget = Budget(get_base(self.base), c, num_classes or self.num_classes,
                        resolution_base or self.resolution_base)
        solution = solve_budget(budget, r, d)
        return Recommendation(c=c, r=solution.r, d=solution.d, w=solution.w,
                              resolution=solution.resolution, flops=solution.flops,
                              params=solution.params, c_achieved=solution.c, r_std=r_std,
                              d_std=d_std, extrapolated=self.is_extrapolation(c))

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        self._check_fitted()
        body = {"format": FORMAT, "version": VERSION, "base": self.base,
                "resolution_base": self.resolution_base, "num_classes": self.num_classes,
                "source": self.source, "c_range": list(self.c_range_),
                "frontier": self.frontier_,
                "gp": {"r": self.posterior_r_.to_dict(), "d": self.posterior_d_.to_dict()}}
        body["checksum"] = _checksum(body)
        return body

    def save(self, path) -> Path:
        """Write the formula as versioned JSON, atomically: a reader never sees half a file."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        write_atomically(path, text)
        return path

    @classmethod
    def from_dict(cls, data: dict, origin: str = "formula") -> "TinyFormula":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TinyFormulaError(f"{origin} is not a tinyformula formula file")
        if data.get("version") != VERSION:
            raise TinyFormulaError(f"{origin} has format version {data.get('version')!r}; this "
                                   f"tinyformula reads version {VERSION}: refit it")
        if data.get("checksum") != _checksum({k: v for k, v in data.items() if k != "checksum"}):
            raise TinyFormulaError(f"{origin} was changed after it was written (checksum "
                                   f"mismatch); restore it or fit a new one")
        try:
            formula = cls(base=data["base"], resolution_base=int(data["resolution_base"]),
                          num_classes=int(data["num_classes"]), source=data.get("source", ""))
            get_base(formula.base)
            formula.posterior_r_ = GPPosterior.from_dict(data["gp"]["r"])
            formula.posterior_d_ = GPPosterior.from_dict(data["gp"]["d"])
            lo, hi = (float(v) for v in data["c_range"])
            formula.c_range_ = (lo, hi)
            formula.frontier_ = data["frontier"]
        except TinyFormulaError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise TinyFormulaError(f"{origin} is damaged ({error}); fit a new one") from None
        return formula

    @classmethod
    def load(cls, path) -> "TinyFormula":
        path = Path(path)
        if path.is_dir():
            raise TinyFormulaError(f"{path} is a directory; pass the formula file inside it "
                                   f"(e.g. {path / 'formula.json'})")
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise TinyFormulaError(f"no formula file at {path}") from None
        except OSError as error:
            raise TinyFormulaError(f"cannot read {path}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TinyFormulaError(f"{path} is not valid JSON (truncated or corrupt); "
                                   f"fit a new formula") from None
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def builtin(cls, base: str = "efficientnet_b0") -> "TinyFormula":
        """The formula fitted on the published TinyNet A-E (ImageNet, 224 px)."""
        get_base(base)
        if base not in BUILTIN_BASES:
            raise TinyFormulaError(
                f"only {', '.join(BUILTIN_BASES)} has a built-in formula; fit one for {base} "
                f"with 'tinyformula fit --base {base}' and pass it with --formula")
        text = resources.files("tinyformula").joinpath(f"formulas/{base}.json").read_text()
        return cls.from_dict(json.loads(text), origin=f"built-in formula for {base}")


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"{path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise TinyFormulaError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def published_frontier() -> dict[str, list[float]]:
    """TinyNet A-E as a frontier, their c measured with our own cost model (224 px)."""
    from .published import TINYNETS
    from .scale import Scale

    base = get_base("efficientnet_b0")
    return {"c": [base.relative_flops(Scale(t.r, t.d, t.w)) for t in TINYNETS],
            "r": [t.r for t in TINYNETS], "d": [t.d for t in TINYNETS],
            "w": [t.w for t in TINYNETS]}


def fit_builtin() -> TinyFormula:
    """Refit the built-in efficientnet_b0 formula (what ``formulas/efficientnet_b0.json`` holds)."""
    return TinyFormula("efficientnet_b0", resolution_base=224, num_classes=1000,
                       source="built-in: the published TinyNet A-E (ImageNet, 224 px)",
                       noise_bounds=(1e-8, 1e-3)).fit(published_frontier())
