"""What the figures of a run show, as data apart from drawing: the run checked for plotting,
the trials near a budget, the inverted giant formula's configurations and whether the search
trained them, and the formula's curves over c."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError
from ..cost.budgets import SUMMARY_BUDGETS, check_budget
from ..formula import MIN_POINTS, giant_recommendation
from ..nets.scale import Scale
from ..sweep.results import load_run
from ..sweep.space import network_key

DEFAULT_BUDGET = 0.5
WINDOW = 1.25            # "near" a budget c: c / 1.25 <= c_trial <= c * 1.25 (+-22% in log c)
GRID_POINTS = 80


def plottable_run(path):
    """Load a run folder and check it holds at least one finished trial (a formula is not
    needed: without one, only the figures of the trials are drawn)."""
    run = load_run(path)
    if not len(run.trials) or not (run.trials["status"] == "ok").any():
        raise TinyFormulaError(f"{run.path} holds no finished trial yet; run 'tinyformula fit "
                               f"--out {run.path}' first")
    return run


def missing_formula_note(run) -> str:
    """Why a run has no formula figure, and what to do."""
    if not run.finished:
        pending = int((run.trials["status"] == "pending").sum())
        return (f"{run.path}: no formula yet ({pending} of {len(run.trials)} trials pending), so "
                f"formula_vs_c.png is not drawn; finish the search with 'tinyformula fit --out "
                f"{run.path}' and the same options")
    if len(run.frontier) >= MIN_POINTS:
        return (f"{run.path}: every trial is trained but there is no formula.json yet (it is "
                f"being fitted now, or the fit stopped), so formula_vs_c.png is not drawn; wait "
                f"a few seconds, or run 'tinyformula fit --out {run.path}' with the same options")
    return (f"{run.path}: the search fitted no formula (see 'tinyformula fit' for why), so "
            f"formula_vs_c.png is not drawn")


def top_rung_trials(run):
    """The trials the frontier is drawn from: every trial of a full-budget search, the top
    rung's of a successive-halving one (lower rungs trained on fewer images)."""
    return run.trials[run.trials["rung"] == run.config.top_rung]


def check_window(window) -> float:
    return check("the window", window, Real(1, None, closed="neither",
                                            why="1.25 means c/1.25 to c*1.25"))


def trials_near(run, budget: float = DEFAULT_BUDGET, window: float = WINDOW):
    """Finished trials with c in [budget / window, budget * window], every seed included.

    Raises TinyFormulaError when there are none, naming the c range the trials cover.
    """
    budget, window = check_budget(budget), check_window(window)
    trials = top_rung_trials(run)
    ok = trials[trials["status"] == "ok"]
    near = ok[(ok["c"] >= budget / window) & (ok["c"] <= budget * window)]
    if not len(near):
        if len(ok):
            closest = ok.iloc[(ok["c"].map(math.log) - math.log(budget)).abs().argmin()]["c"]
            hint = (f"its trials span c = {ok['c'].min():.3g} to {ok['c'].max():.3g}; try "
                    f"--budget {closest:.3g}")
        else:
            hint = "it has no finished trial"
        raise TinyFormulaError(f"no trial of {run.path} has c within a factor {window:g} of "
                               f"{budget:g} ({budget / window:.3g} to {budget * window:.3g}); "
                               f"{hint}")
    return near.sort_values("c")


@dataclass(frozen=True)
class GiantMark:
    """The inverted giant formula at one budget (``giant.budget``), and the trial of the
    search that built the very same network, if any."""

    giant: object                   # a tinyformula.formula.Recommendation
    top1: float | None = None       # only when a trial of the search trained this network
    trial_id: int | None = None


def giant_marks(run, budgets=SUMMARY_BUDGETS) -> list[GiantMark]:
    """The giant formula's configurations at ``budgets`` inside the run's c range.

    A configuration gets a top-1 only when a finished trial (search seed) built the very same
    network: same input size and same layer tree.
    """
    trials = top_rung_trials(run)
    ok = trials[(trials["status"] == "ok") & (trials["seed"] == run.config.seed)]
    lo, hi = trials["c"].min(), trials["c"].max()
    marks = []
    for c in budgets:
        if not lo / WINDOW <= c <= hi * WINDOW:
            continue
        try:
            giant = giant_recommendation(run.yardstick, c)
        except TinyFormulaError:  # unreachable, or (latency) not in this machine's table
            continue
        s = giant.config
        key = network_key(run.yardstick, s)
        same = ok[(ok["resolution"] == s.resolution) & (ok["flops"] == s.flops)]
        match = [t for t in same.itertuples()
                 if network_key(run.yardstick, run.yardstick.measure(Scale(t.r, t.d, t.w)))
                 == key]
        marks.append(GiantMark(giant, match[0].top1 if match else None,
                               int(match[0].id) if match else None))
    return marks


def formula_curves(run, points: int = GRID_POINTS) -> dict:
    """The formula and the giant formula over the frontier's c range, as arrays.

    Keys: ``c``; ``r``, ``d`` (GP means), ``r_std``, ``d_std``; ``w`` (the width solver at the
    GP's r and d, i.e. ``recommend(c).w``); ``giant_r``, ``giant_d``, ``giant_w``; the band
    ``r_lo``, ``r_hi``, ``d_lo``, ``d_hi`` and its ``top1_cost`` (nan where the formula has
    none). A budget the solver cannot reach is nan.
    """
    import numpy as np

    formula = run.formula
    lo, hi = formula.c_range_
    c = np.geomspace(lo, min(hi, 1.0) if hi > lo else lo * 1.01, points)
    r, d, r_std, d_std = formula.predict(c, return_std=True)
    curves = {"c": c, "r": r, "d": d, "r_std": r_std, "d_std": d_std}
    for key in ("w", "giant_r", "giant_d", "giant_w"):
        curves[key] = np.full(points, np.nan)
    for key in ("r_lo", "r_hi", "d_lo", "d_hi", "top1_cost"):
        curves[key] = np.full(points, np.nan)
    for i, budget in enumerate(c):
        band = formula.band_at(float(budget))
        for key, value in (band or {}).items():
            curves[key][i] = value
        try:
            curves["w"][i] = formula.recommend(float(budget)).w
        except TinyFormulaError:
            pass
        try:
            g = formula.giant(float(budget)).config
            curves["giant_r"][i], curves["giant_d"][i], curves["giant_w"][i] = g.r, g.d, g.w
        except TinyFormulaError:
            pass
    return curves
