"""The Tiny Formula: r(c) and d(c) from a Pareto frontier, and the width that hits a budget.

``TinyFormula`` follows scikit-learn's estimator conventions: constructor arguments are plain
parameters, ``fit`` returns self, learned state ends in ``_``. ``fit`` uses scikit-learn's
GPs (see :mod:`.gp`) and keeps their posteriors; a formula file holds exactly those, so
loading one and predicting imports neither torch, scikit-learn nor numpy. ``get_params`` and
``set_params`` are written out here rather than inherited from scikit-learn's ``BaseEstimator``,
which would import scikit-learn (and numpy) with this module; ``sklearn.base.clone`` works.

A formula fitted by a search also carries a GP of top-1 against c (the frontier's, under that
search's schedule) and its quality report (:mod:`tinyformula.formula.quality`), both optional in the
file: formula files written before them still load and predict. Since 0.3 it also says how its
points were chosen from the trials (``method``: :mod:`.fits`) and carries its band
(:mod:`.band`); files without them read as the frontier fit without a band.
"""

from __future__ import annotations

import json
import math
import warnings
from importlib import resources
from pathlib import Path

from ..core.errors import TinyFormulaError
from ..core.files import write_atomically
from ..cost.budgets import check_budget, relative_budget
from ..cost.yardstick import Yardstick
from ..nets.bases import base_record, get_base, restore_base
from .band import Band
from .file_format import (
    FORMAT,
    FORMULA_KIND,
    VERSION,
    check_c_range,
    check_frontier,
    read_formula_file,
    sealed,
    verify,
)
from .fits import FITS, MIN_POINTS
from .gp import GPPosterior, isotonic, make_gp
from .quality import current_rules, noise_sigma
from .recommendation import Recommendation, giant_recommendation
from .solve import solve_budget

DEFAULT_COST = "flops"
BUILTIN_BASES = ("efficientnet_b0",)
# Monotone GPs (r, d and top-1 non-decreasing in c) by default: on the smoke and the 30-trial
# default search they cut the leave-one-out error of r and d (README, "Measured").
MONOTONE = True
TOP1_NOISE_BOUNDS = (1e-6, 1.0)   # a frontier's top-1 may be mostly seed noise


OPTIONAL_COLUMNS = ("w", "top1")


def _frontier_columns(frontier) -> dict:
    """Columns c, r, d (and w, top1 when present) from a DataFrame, a mapping or a list of
    records, ordered by c."""
    import numpy as np

    if isinstance(frontier, (list, tuple)):
        frontier = {key: [row[key] for row in frontier] for key in ("c", "r", "d", "w", "top1")
                    if frontier and all(key in row for row in frontier)}
    columns = {}
    for key in ("c", "r", "d", *OPTIONAL_COLUMNS):
        try:
            columns[key] = np.asarray(frontier[key], dtype=float).ravel()
        except (KeyError, IndexError):
            if key not in OPTIONAL_COLUMNS:
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
    if "top1" in columns and not np.all(np.isfinite(columns["top1"])):
        raise TinyFormulaError("frontier column 'top1' must hold finite numbers")
    order = np.argsort(columns["c"], kind="stable")
    return {key: values[order] for key, values in columns.items()}


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
    cost : str
        Which cost c is relative to (``"flops"``, ``"params"``, ``"activations"``,
        ``"latency"``); see :class:`Yardstick`.
    device, threads, runtime : str, int, str
        Where latency is measured, for ``cost="latency"`` (see :class:`Yardstick`).
    monotone : bool
        Make r(c), d(c) and top-1(c) non-decreasing in c, as the paper's curves are: each GP is
        fitted on the isotonic projection of its targets and its mean rearranged (see
        :mod:`tinyformula.formula.gp`). False fits the frontier's values as they are.
    top1_noise : float or None
        The standard deviation of one trial's top-1 between seeds, when measured: the top-1
        GP's white noise is held at least that large, so it does not chase seed noise and
        its band covers another seed's score.
    method : str
        How the points ``fit`` receives were chosen from a search's trials (:mod:`.fits`):
        ``"frontier"`` (the Pareto frontier, the paper's) or ``"surrogate"`` (the best (r, d)
        of a top-1 surrogate of every trial, along c). Only recorded: ``fit`` fits GPs on
        whatever points it is given.
    restarts : int
        Restarts of each GP's hyper-parameter optimiser (a band's refits use fewer).

    Attributes
    ----------
    gp_r_, gp_d_ : sklearn GaussianProcessRegressor
        The fitted GPs of r and d over log c (only after ``fit``, not after ``load``).
    posterior_r_, posterior_d_ : GPPosterior
        Their posteriors, evaluated in pure Python; what the formula file stores.
    posterior_top1_ : GPPosterior or None
        The GP of the frontier's top-1 against log c (None when the frontier had no top1).
    band_ : Band or None
        The band of r(c) and d(c) and its top-1 cost a search attaches (:mod:`.band`); None
        for formulas fitted directly or written before bands existed.
    quality_ : dict or None
        The quality report a search attaches (:func:`tinyformula.formula.quality.assess`); None for
        formulas fitted directly or written before reports existed.
    validation_ : dict or None
        The evidence ``tinyformula validate`` attaches once the formula is validated
        (:func:`tinyformula.formula.validation.formula_entry`); None until then.
    c_range_ : (float, float)
        The smallest and largest c of the frontier it was fitted on.
    frontier_ : dict of lists
        The points the GPs were fitted on: c, r, d (and w, top1); the Pareto frontier for the
        frontier fit, the surrogate's best path for the surrogate fit.
    machine_ : str or None
        For a latency formula, the machine its latencies were measured on.
    """

    def __init__(self, base: str = "efficientnet_b0", resolution_base: int = 224,
                 num_classes: int = 1000, source: str = "",
                 noise_bounds: tuple[float, float] = (1e-6, 1e-1), random_state: int = 0,
                 cost: str = "flops", device: str = "cpu", threads: int = 1,
                 runtime: str = "torch", monotone: bool = MONOTONE,
                 top1_noise: float | None = None, method: str = "frontier",
                 restarts: int = 5):
        self.base = base
        self.noise_bounds = noise_bounds
        self.resolution_base = resolution_base
        self.num_classes = num_classes
        self.source = source
        self.random_state = random_state
        self.cost = cost
        self.device = device
        self.threads = threads
        self.runtime = runtime
        self.monotone = monotone
        self.top1_noise = top1_noise
        self.method = method
        self.restarts = restarts

    # -- scikit-learn's estimator protocol, without importing scikit-learn ------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters, as scikit-learn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "TinyFormula":
        """Set constructor parameters; unknown names raise TinyFormulaError."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise TinyFormulaError(f"TinyFormula has no parameter(s) {', '.join(unknown)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"TinyFormula(base={self.base!r}, num_classes={self.num_classes})"

    @classmethod
    def for_yardstick(cls, yardstick: Yardstick, **params) -> "TinyFormula":
        """A formula whose c is measured with ``yardstick``."""
        return cls(base=yardstick.base, resolution_base=yardstick.resolution_base,
                   num_classes=yardstick.num_classes, cost=yardstick.cost,
                   device=yardstick.device, threads=yardstick.threads,
                   runtime=yardstick.runtime, **params)

    @property
    def yardstick(self) -> Yardstick:
        """How this formula's c is measured (one object per formula: a latency yardstick
        keeps its loaded table)."""
        key = (self.base, self.num_classes, self.resolution_base, self.cost, self.device,
               self.threads, self.runtime)
        cached = self.__dict__.get("_yardstick")
        if cached is None or cached[0] != key:
            cached = (key, Yardstick(*key))
            self.__dict__["_yardstick"] = cached
        return cached[1]

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, frontier) -> "TinyFormula":
        """Fit r(c) and d(c) on frontier rows with columns ``c, r, d`` (more are allowed);
        with a ``top1`` column, also the GP of top-1 against c."""
        import numpy as np

        self.yardstick  # checks base, classes, resolution and cost
        if not isinstance(self.monotone, bool):
            raise TinyFormulaError(f"monotone must be True or False, got {self.monotone!r}")
        if self.method not in FITS:
            raise TinyFormulaError(f"method must be one of {', '.join(FITS)}, got "
                                   f"{self.method!r}")
        columns = _frontier_columns(frontier)
        from sklearn.exceptions import ConvergenceWarning

        x = np.log(columns["c"])[:, None]

        def fit_one(key, noise_bounds):
            target = np.asarray(isotonic(columns[key])) if self.monotone else columns[key]
            return make_gp(noise_bounds, self.random_state, self.restarts).fit(x, target)

        def top1_bounds():
            # White noise on targets normalised by their std: the seed noise's share of it.
            lo, hi = TOP1_NOISE_BOUNDS
            spread = float(np.std(columns["top1"]))
            if self.top1_noise and spread > 0:
                lo = min(max(lo, (self.top1_noise / spread) ** 2), 1e3)
            return lo, max(hi, lo * 10)

        with warnings.catch_warnings():
            # A hyper-parameter at its bound (e.g. noise at its floor) is expected, not a fault.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_r_ = fit_one("r", self.noise_bounds)
            self.gp_d_ = fit_one("d", self.noise_bounds)
            self.gp_top1_ = (fit_one("top1", top1_bounds())
                             if "top1" in columns else None)
        self.posterior_r_ = GPPosterior.from_sklearn(self.gp_r_, self.monotone)
        self.posterior_d_ = GPPosterior.from_sklearn(self.gp_d_, self.monotone)
        self.posterior_top1_ = (GPPosterior.from_sklearn(self.gp_top1_, self.monotone)
                                if self.gp_top1_ is not None else None)
        self.c_range_ = (float(columns["c"].min()), float(columns["c"].max()))
        self.frontier_ = {key: [float(v) for v in values] for key, values in columns.items()}
        self.machine_ = None
        if self.yardstick.meter.machine_bound:  # latency belongs to the machine it was measured on
            from ..cost.latency.measure import machine_description

            self.machine_ = machine_description(self.device)
        self.quality_: dict | None = None
        self.band_: Band | None = None
        self.inputs_key_: str | None = None   # what a search fitted it from (its key)
        self.validation_: dict | None = None
        return self

    def _check_fitted(self):
        if not hasattr(self, "posterior_r_"):
            raise TinyFormulaError("this TinyFormula is not fitted; call fit() or load() first")

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, c, return_std: bool = False):
        """GP means of r and d at budgets ``c``.

        Returns
        -------
        (r, d) or (r, d, r_std, d_std)
            numpy arrays, one value per budget; with ``return_std`` also the GPs' standard
            deviations (which include the fitted white noise).
        """
        import numpy as np

        self._check_fitted()
        c = np.atleast_1d(np.asarray(c, dtype=float))
        if not np.all(np.isfinite(c)) or np.any(c <= 0):
            raise TinyFormulaError("budgets c must be finite numbers above 0")
        r, r_std = np.array([self.posterior_r_.predict(x) for x in np.log(c)]).T
        d, d_std = np.array([self.posterior_d_.predict(x) for x in np.log(c)]).T
        return (r, d, r_std, d_std) if return_std else (r, d)

    def expected_top1(self, c: float) -> tuple[float, float] | None:
        """The top-1 one training of the network at budget c is expected to reach under the
        schedule of the search that fitted the formula, and the standard deviation of that
        one training's score: the top-1 GP's uncertainty and the search's seed noise combined
        (the GP alone only says how well its curve is known: along the surrogate's smooth path
        that is a tenth of a point, far less than two seeds of one network differ). None when
        the formula has no top-1 GP (the built-in formula, files written before 0.2)."""
        self._check_fitted()
        if getattr(self, "posterior_top1_", None) is None:
            return None
        mean, std = self.posterior_top1_.predict(math.log(check_budget(c)))
        seed_noise = (self.quality_ or {}).get("seed_noise")
        sigma = noise_sigma(seed_noise) if seed_noise else 0.0
        return mean, math.hypot(std, sigma)

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
                f"c={c:.12g} asks for {c:.12g}x the FLOPs of {self.base}; the Tiny Formula shrinks "
                f"networks (this one was fitted on c up to {self.c_range_[1]:.3g}): give a budget "
                f"in (0, {limit:g}], e.g. 0.25 for a quarter of the base's FLOPs")
        return c

    def budget_c(self, budget, num_classes: int | None = None,
                 resolution_base: int | None = None, flag: str = "budget") -> float:
        """A budget as typed (c, or an amount in this formula's cost: ``"100M"`` FLOPs,
        ``"3ms"``; see :func:`tinyformula.cost.budgets.parse_budget`) as a relative c under
        this formula's yardstick at these classes and base resolution, checked."""
        self._check_fitted()
        yardstick = self.yardstick_for(num_classes, resolution_base)
        return self.check_budget(relative_budget(budget, yardstick,
                                                 max(1.0, self.c_range_[1]), flag))

    def yardstick_for(self, num_classes: int | None = None,
                      resolution_base: int | None = None) -> Yardstick:
        """This formula's yardstick at other classes or base resolution (None keeps its
        own): a formula is dimensionless in c, so it answers for any task of its cost."""
        if num_classes is None and resolution_base is None:
            return self.yardstick
        return self.yardstick.replace(num_classes=num_classes, resolution_base=resolution_base)

    def recommend(self, c, num_classes: int | None = None,
                  resolution_base: int | None = None) -> Recommendation:
        """The configuration to build for budget c: r and d from the GPs, w solved so the
        network lands within 2% below c (nearby resolutions tried when a width step is too
        coarse). ``c`` is relative, or an amount in the formula's cost with its unit
        (``"100M"``, ``"3ms"``: see :meth:`budget_c`). ``num_classes`` / ``resolution_base``
        default to the formula's own."""
        c = self.budget_c(c, num_classes, resolution_base, flag="c")
        r, r_std = self.posterior_r_.predict(math.log(c))
        d, d_std = self.posterior_d_.predict(math.log(c))
        config = solve_budget(self.yardstick_for(num_classes, resolution_base), c, r, d)
        top1, top1_std = self.expected_top1(c) or (None, None)
        return Recommendation(budget=c, config=config, formula="tiny", r_std=r_std, d_std=d_std,
                              extrapolated=self.is_extrapolation(c), top1=top1,
                              top1_std=top1_std, cost=self.cost, band=self.band_at(c))

    def band_at(self, c: float) -> dict | None:
        """The band at budget c (``r_lo, r_hi, d_lo, d_hi, top1_cost``), or None where the
        formula has no band (fitted directly, written before 0.3, or c outside the band's
        budgets)."""
        band = getattr(self, "band_", None)
        return band.at(c) if band is not None else None

    def giant(self, c, num_classes: int | None = None,
              resolution_base: int | None = None) -> Recommendation:
        """EfficientNet's inverted giant formula at budget c under this formula's yardstick:
        the largest phi that fits, its width re-solved like ``recommend``'s, so the two land
        equally close to c and differ only in r and d. Raises BudgetUnreachable outside the
        giant formula's range. ``c`` as in :meth:`recommend`."""
        c = self.budget_c(c, num_classes, resolution_base, flag="c")
        return giant_recommendation(self.yardstick_for(num_classes, resolution_base), c)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        self._check_fitted()
        body = {"format": FORMAT, "version": VERSION, "base": self.yardstick.base,
                "resolution_base": self.resolution_base, "num_classes": self.num_classes,
                # The default cost is left out, as in files written before costs were a choice.
                **({"cost": self.cost, **self.yardstick.meter.settings(self.yardstick)}
                   if self.cost != DEFAULT_COST else {}),
                "source": self.source, "c_range": list(self.c_range_),
                "frontier": self.frontier_,
                **({"machine": self.machine_} if getattr(self, "machine_", None) else {}),
                "gp": {"r": self.posterior_r_.to_dict(), "d": self.posterior_d_.to_dict()}}
        # Keys added in 0.2, written only when present: older files read the same.
        record = base_record(self.yardstick.base)
        if record is not None:   # a base from a spec or a factory: the file carries it
            body["base_spec"] = record
        if getattr(self, "posterior_top1_", None) is not None:
            body["gp"]["top1"] = self.posterior_top1_.to_dict()
        if getattr(self, "quality_", None) is not None:
            body["quality"] = self.quality_
        # Keys added in 0.3, written only when they say something: older readers ignore them.
        if getattr(self, "method", "frontier") != "frontier":
            body["fit"] = self.method
        if getattr(self, "band_", None) is not None:
            body["band"] = self.band_.to_dict()
        if getattr(self, "inputs_key_", None):   # what it was fitted from (a search's reuse)
            body["inputs"] = self.inputs_key_
        if getattr(self, "validation_", None) is not None:
            body["validation"] = self.validation_
        return sealed(body)

    def save(self, path) -> Path:
        """Write the formula as versioned JSON, atomically: a reader never sees half a file.
        An existing file at ``path`` is replaced only if it is a formula file."""
        return write_atomically(path, json.dumps(self.to_dict(), indent=1) + "\n",
                                FORMULA_KIND)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "formula") -> "TinyFormula":
        # A checksum proves nothing against an edit that recomputes it: every key is checked
        # against the file's schema (verify), then what relates keys to each other here.
        data = verify(data, origin)
        if "base_spec" in data:   # the base this formula was fitted on, unless built in
            restore_base(data["base_spec"], origin)
        try:
            formula = cls(base=data["base"], resolution_base=data["resolution_base"],
                          num_classes=data["num_classes"], source=str(data.get("source", "")),
                          **{k: data[k] for k in ("cost", "device", "threads", "runtime")
                             if k in data})
            formula.yardstick  # checks base, classes, resolution and cost
            formula.posterior_r_ = GPPosterior.from_dict(data["gp"]["r"])
            formula.posterior_d_ = GPPosterior.from_dict(data["gp"]["d"])
            formula.c_range_ = check_c_range(data["c_range"])
            formula.frontier_ = check_frontier(data["frontier"])
            machine = data.get("machine")
            formula.machine_ = None if machine is None else str(machine)
            top1 = data["gp"].get("top1")
            formula.posterior_top1_ = GPPosterior.from_dict(top1) if top1 is not None else None
            formula.monotone = formula.posterior_r_.monotone
            formula.quality_ = data.get("quality")
            method = data.get("fit", "frontier")
            if method not in FITS:
                raise TinyFormulaError(f"unknown fit {method!r}")
            formula.method = method
            band = data.get("band")
            formula.band_ = Band.from_dict(band) if band is not None else None
            formula.quality_ = current_rules(formula.quality_, formula)
            formula.inputs_key_ = data.get("inputs")
            validation = data.get("validation")
            if validation is not None and not isinstance(validation, dict):
                raise TypeError("validation is not an object")
            formula.validation_ = validation
        except TinyFormulaError as error:
            raise TinyFormulaError(f"{origin} is damaged ({error}); fit a new one") from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise TinyFormulaError(f"{origin} is damaged ({type(error).__name__}: {error}); "
                                   f"fit a new one") from None
        return formula

    @classmethod
    def load(cls, path) -> "TinyFormula":
        """Read a formula file (every value checked; see :mod:`.file_format`)."""
        return cls.from_dict(read_formula_file(path), origin=str(path))

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

