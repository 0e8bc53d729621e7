"""Fitting a search's formula on its stored trials: the fit chosen (``frontier`` or
``surrogate``, :mod:`tinyformula.formula.fits`), its band (a bootstrap over candidates, each
resample refitted the same way) and its quality report.

Everything here reads trials and trains nothing: a finished search refits with another fit in
seconds (``tinyformula fit --out RUN --fit surrogate``).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence

from ..core.errors import TinyFormulaError
from ..cost.budgets import SUMMARY_BUDGETS
from ..cost.yardstick import Yardstick
from ..execution.jobs import TrialState
from ..formula.band import DRAWS, summarize
from ..formula.estimator import MIN_POINTS, TinyFormula
from ..formula.fits import DEFAULT_FIT
from ..formula.quality import assess, check_above_chance, noise_sigma
from ..formula.surrogate import MIN_TRIALS, Surrogate, TrialPoints, c_grid
from .config import SearchConfig
from .noise import seed_noise
from .pareto import pareto_frontier
from .space import MULTIPLIER_RANGE
from .trials import Trial

BAND_GRID = 16        # budgets the band is measured at
BOOTSTRAP_SEED = 20   # resamples are a pure function of the trials: a refit gives the same band


def search_frontier(config: SearchConfig, trials: Sequence[Trial]) -> list[Trial]:
    """The Pareto frontier of the search seed's trials at the top rung."""
    return pareto_frontier([t for t in trials if t.rung == config.top_rung], seed=config.seed)


def trial_points(trials: Sequence[Trial]) -> TrialPoints:
    """Every finished trial (every seed and rung) as the surrogate's plain columns."""
    ok = [t for t in trials if t.state is TrialState.OK and t.top1 is not None]
    return TrialPoints(r=[t.config.r for t in ok], d=[t.config.d for t in ok],
                       w=[t.config.w for t in ok], c=[t.config.c for t in ok],
                       top1=[t.top1 for t in ok],
                       images=[float(t.images or 1) for t in ok])


def inputs_key(config: SearchConfig, yardstick: Yardstick, trials: Sequence[Trial],
               fit: str | None = None, draws: int | None = None) -> str:
    """A fingerprint of everything :func:`fit_formula` reads (every trial's configuration and
    result, the settings, the yardstick, the fit, the band's resamples and the quality rules):
    a formula saved with the same key was fitted from exactly this, so a finished search run
    again reuses it instead of refitting its GPs, leave-one-out check and bootstrap band."""
    from ..core.version import VERSION
    from ..formula.quality import RULES

    rows = sorted((t.id, t.rung, t.seed, str(t.state), t.top1, t.config.r, t.config.d,
                   t.config.w, t.config.c) for t in trials)
    payload = {"trials": rows, "config": config.to_dict(), "yardstick": yardstick.to_dict(),
               "fit": chosen_fit(config, fit), "draws": DRAWS if draws is None else draws,
               "band": [BAND_GRID, BOOTSTRAP_SEED], "rules": list(RULES),
               "version": VERSION}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def chosen_fit(config: SearchConfig, fit: str | None = None) -> str:
    """The fit asked for: ``fit``, else the config's, else the default."""
    return fit or config.fit or DEFAULT_FIT


def effective_fit(config: SearchConfig, trials: Sequence[Trial],
                  fit: str | None = None) -> tuple[str, str | None]:
    """The fit :func:`fit_formula` tries first, and why it differs from the one asked for
    (None when it does not). A fit asked for by name (``fit``, or the config's) is used as
    asked, and refused when it cannot be fitted. With none asked, the default surrogate fit,
    unless fewer trials finished than its surface needs (:data:`MIN_TRIALS`): then the
    frontier fit, so that a small search still ends with a formula."""
    method = chosen_fit(config, fit)
    if fit or config.fit or method != "surrogate":
        return method, None
    ok = sum(t.state is TrialState.OK and t.top1 is not None for t in trials)
    if ok >= MIN_TRIALS:
        return method, None
    return "frontier", (f"only {ok} trial{'s' if ok != 1 else ''} finished (the surrogate fit "
                        f"needs {MIN_TRIALS}): the frontier fit instead")


def _points(config: SearchConfig, trials: Sequence[Trial], method: str, noise: float | None,
            surrogate: Surrogate | None = None) -> dict:
    """The columns the formula's GPs are fitted on, for ``method``: the frontier's, or the
    best path over the top rung's c range of ``surrogate`` (fitted on ``trials`` here when not
    given). Raises when there are too few."""
    if method == "frontier":
        frontier = search_frontier(config, trials)
        if len(frontier) < MIN_POINTS:
            ok = sum(t.state is TrialState.OK for t in trials)
            raise TinyFormulaError(
                f"only {len(frontier)} Pareto-optimal trials ({ok} of {len(trials)} finished "
                f"ok); a formula needs {MIN_POINTS}: run more trials (--trials) on the same "
                f"--out to continue this search, or refit with --fit surrogate")
        columns = {key: [getattr(t.config, key) for t in frontier] for key in ("c", "r", "d",
                                                                              "w")}
        columns["top1"] = [t.top1 for t in frontier]
        return columns
    top = [t.config.c for t in trials if t.rung == config.top_rung
           and t.state is TrialState.OK and t.top1 is not None]
    surrogate = surrogate or Surrogate(noise).fit(trial_points(trials))
    path = surrogate.optimum_path(c_grid(min(top), max(top)), MULTIPLIER_RANGE)
    if len(path["c"]) < MIN_POINTS:
        raise TinyFormulaError(f"the surrogate's best path reaches only {len(path['c'])} "
                               f"budgets; a formula needs {MIN_POINTS}: run more trials")
    return path


def fit_formula(config: SearchConfig, yardstick: Yardstick, trials: list[Trial], *,
                fit: str | None = None, draws: int | None = None,
                seeds: Sequence[int] | None = None, **params) -> TinyFormula:
    """The formula of a search's trials, with its band and quality report.

    ``fit``: ``"frontier"`` or ``"surrogate"`` (default: the config's, else
    :data:`~tinyformula.formula.fits.DEFAULT_FIT`, falling back to the frontier fit where the
    surrogate cannot be fitted: :func:`effective_fit`); ``draws``: bootstrap resamples of the band
    (default :data:`~tinyformula.formula.band.DRAWS`; 0 for none); ``seeds``: the seeds of
    the searches whose trials these are, when several were pooled (:mod:`.pooling`), for the
    formula's source line (default: the config's). ``params`` are
    :class:`TinyFormula` parameters (default: the config's ``monotone``). Raises
    TinyFormulaError when every trial scored at chance or there are too few points to fit.
    """
    import sklearn.gaussian_process  # noqa: F401  (loads scipy's BLAS: limited below)
    from threadpoolctl import threadpool_limits

    # Small matrices: a multi-threaded BLAS only spins (6x slower on a loaded 2-core CPU).
    with threadpool_limits(1):
        method, why = effective_fit(config, trials, fit)
        try:
            return _fit_formula(config, yardstick, trials, method, why, draws, params, seeds)
        except (TinyFormulaError, ValueError, ArithmeticError) as error:
            if fit or config.fit or method == "frontier":
                raise
            refusal = error
        # the default surrogate could not be fitted: the frontier's points may still serve
        try:
            return _fit_formula(config, yardstick, trials, "frontier",
                                f"the surrogate fit failed ({refusal}): the frontier fit instead",
                                draws, params, seeds)
        except (TinyFormulaError, ValueError, ArithmeticError):
            raise refusal from None


def check_fittable(config: SearchConfig, yardstick: Yardstick,
                   trials: Sequence[Trial]) -> tuple[float | None, list[float]]:
    """Raise TinyFormulaError when the trials cannot give a formula (every one scored at
    chance); else (the seed noise, the top rung's finished scores). Cheap: called before a
    fit is announced."""
    noise = seed_noise(trials, rung=config.top_rung).get("mean_abs_diff")
    scores = [t.top1 for t in trials if t.state is TrialState.OK and t.rung == config.top_rung]
    check_above_chance(scores, yardstick.num_classes, config.val_size, noise)
    return noise, scores


def _whole_surrogate(trials: Sequence[Trial], sigma: float | None) -> Surrogate | None:
    """The surrogate of every trial (None when the trials are too few to fit one): fitted
    once per formula, it gives the surrogate fit its path, the band its cost and the quality
    report its expected gain over the giant formula."""
    import numpy as np

    try:
        return Surrogate(sigma).fit(trial_points(trials))
    except (TinyFormulaError, ValueError, np.linalg.LinAlgError):
        return None


def _fit_formula(config, yardstick, trials, method, why, draws, params, seeds) -> TinyFormula:
    noise, scores = check_fittable(config, yardstick, trials)
    sigma = noise_sigma(noise) if noise else None
    whole = _whole_surrogate(trials, sigma)
    columns = _points(config, trials, method, sigma, whole)
    stage = f", second stage {config.second_stage}" if config.second_stage else ""
    schedule = f", halving eta {config.eta:g}" if config.schedule == "halving" else ""
    searches = (f"{len(seeds)} searches pooled" if seeds and len(seeds) > 1 else "search")
    seed = (f"seeds {', '.join(map(str, seeds))}" if seeds and len(seeds) > 1
            else f"seed {config.seed}")
    source = (f"{searches} on {config.data} ({len(trials)} trials, {config.preset} preset"
              f"{schedule}{stage}, {config.train_size:,} images x {config.epochs} epoch(s), "
              f"{seed}, {method} fit{': ' + why if why else ''})")
    if config.monotone is not None:
        params.setdefault("monotone", config.monotone)
    if sigma is not None and method == "frontier":
        params.setdefault("top1_noise", sigma)
    formula = TinyFormula.for_yardstick(yardstick, source=source, method=method,
                                        **params).fit(columns)
    formula.band_ = band(config, trials, formula, DRAWS if draws is None else draws, sigma,
                         whole)
    frontier = search_frontier(config, trials)
    formula.quality_ = assess(formula, yardstick.num_classes, config.val_size, noise,
                              len(scores), frontier={"c": [t.config.c for t in frontier],
                                                     "top1": [t.top1 for t in frontier]},
                              advantage=giant_advantage(config, trials, formula, whole))
    return formula


def giant_advantage(config: SearchConfig, trials: Sequence[Trial], formula: TinyFormula,
                    surrogate: Surrogate | None) -> dict[float, float | None]:
    """At each summary budget inside the top rung's c range: how much top-1 the search's own
    trials expect the formula's network to gain over the inverted giant formula's (both at the
    search's schedule, read from ``surrogate``, that of every trial); None where the trials
    cannot say (the giant formula cannot reach c, or either network lies outside the trials).
    Empty when no budget is inside the range or there is no surrogate (too few trials): then
    the gain is not judged at all."""
    top = [t.config.c for t in trials if t.rung == config.top_rung
           and t.state is TrialState.OK and t.top1 is not None]
    budgets = [c for c in SUMMARY_BUDGETS if min(top) <= c <= max(top)]
    if not budgets or surrogate is None:
        return {}
    out: dict[float, float | None] = {}
    for c in budgets:
        try:
            mine, giant = formula.recommend(c), formula.giant(c)
        except TinyFormulaError:
            out[c] = None
            continue
        if not (surrogate.supported(mine.r, mine.d, c) and surrogate.supported(giant.r,
                                                                             giant.d, c)):
            out[c] = None
            continue
        expected = surrogate.predict([mine.r, giant.r], [mine.d, giant.d], [c, c])
        out[c] = float(expected[0] - expected[1])
    return out


def band(config: SearchConfig, trials: Sequence[Trial], formula: TinyFormula, draws: int,
         sigma: float | None, whole: Surrogate | None):
    """The band of ``formula`` (fitted on ``trials`` by its ``method``): ``draws`` resamples
    of the search seed's candidates with replacement (each candidate with all its trials: its
    rungs and its replicate), each refitted the same way (``sigma``: one trial's seed sd).
    The top-1 cost is what the refits' networks lose against the best network, both read from
    ``whole``, the surrogate of every trial: what running the search again is expected to
    cost (none without it). Each resample's own surrogate is too thin to judge by: on
    MobileNetV2's halving search some predicted 45-60% where every trial says 78%. None when
    ``draws`` is 0 or no budget is reached."""
    import numpy as np

    if not draws:
        return None
    top = [t for t in trials if t.rung == config.top_rung and t.state is TrialState.OK
           and t.top1 is not None]
    grid = c_grid(min(t.config.c for t in top), max(t.config.c for t in top), BAND_GRID)
    best = whole.best_on(grid, MULTIPLIER_RANGE) if whole is not None else None
    by_candidate: dict[int, list[Trial]] = {}
    for t in trials:
        by_candidate.setdefault(t.candidate, []).append(t)
    names = sorted(by_candidate)
    rng = random.Random(BOOTSTRAP_SEED)
    shape = (draws, len(grid))
    r_draws, d_draws, regrets = np.full(shape, np.nan), np.full(shape, np.nan), \
        np.full(shape, np.nan)
    for b in range(draws):
        resample: list[Trial] = []
        for name in (rng.choice(names) for _ in names):
            resample += by_candidate[name]
        try:
            # Only the surrogate fit's path reads a resample's own surrogate (the cost is
            # read from ``whole``); a frontier refit needs none.
            surrogate = (Surrogate(sigma, restarts=0).fit(trial_points(resample))
                         if formula.method == "surrogate" else None)
            columns = _points(config, resample, formula.method, sigma, surrogate)
            columns = {key: columns[key] for key in ("c", "r", "d")}   # no top-1 GP needed
            refit = TinyFormula(**{**formula.get_params(), "top1_noise": None,
                                   "restarts": 1}).fit(columns)
        except (TinyFormulaError, ValueError, np.linalg.LinAlgError):
            continue
        lo, hi = refit.c_range_
        reach = [lo * (1 - 1e-9) <= c <= hi * (1 + 1e-9) for c in grid]
        r, d = refit.predict(grid)
        r_draws[b] = np.where(reach, r, np.nan)
        d_draws[b] = np.where(reach, d, np.nan)
        if whole is not None:
            lost = np.maximum(best - whole.predict(r, d, np.asarray(grid)), 0.0)
            regrets[b] = np.where(reach, lost, np.nan)
    return summarize(grid, r_draws, d_draws, regrets)
