"""How far to trust a fitted formula: its quality report and verdict.

A formula fitted on a frontier whose accuracies are chance or seed noise still has GP means,
so the numbers alone cannot say whether it means anything. :func:`assess` measures what can:

* how far the frontier's best top-1 stands above chance (1 / classes, for balanced classes);
* the measured seed-to-seed noise, and the frontier's *rise* (top-1 at its largest c less
  top-1 at its smallest) in units of that noise;
* the GPs' leave-one-out error (each frontier point predicted by the formula refitted without
  it, with the same settings), for r, d and top-1;
* whether the fitted r(c) and d(c) are non-decreasing over the fitted range, and Spearman's
  rho of the frontier's own r and d against c;

* with a band (:mod:`.band`), its top-1 cost at each summary budget in units of the seed
  noise, and what the search's own trials expect the formula to gain there over the inverted
  giant formula (``advantage``, measured by the caller with a surrogate of every trial);

and turns them into a verdict in words, with its reasons (:data:`RULES` says how), overall and
per summary budget. ``noise``: the frontier cannot be told apart from noise. ``weak``: it can,
but the formula is fragile (at some budgets: ``budgets`` says which). ``trustworthy``: none of
the rules fired. The report is plain data: the formula file, the summary, ``predict`` and the
plots all show the same dict.

The rules were revised (``rules: 2``) from what ``tinyformula validate`` found: 0.2's rules
called every formula a CPU search can afford weak, because the leave-one-out error of r on six
frontier points is always large, yet such formulas beat the fixed formulas on a longer
schedule at some budgets (experiments/results/fits.md). A formula with a band is now judged
per budget by what its uncertainty costs (the band's top-1 cost against the seed noise) and by
whether its own trials expect it to beat the inverted giant formula by more than the seed
noise: on the smoke run, formulas whose band was narrow still only tied the giant formula in
validation where their trials expected no gain over it. The leave-one-out error is still
measured and shown, and still decides for a formula without a band. ``legacy_verdict`` keeps
0.2's verdict for comparison. Rules 3 (0.5.0) allow the band to cost 1.5x the seed noise
instead of 1x, and ask the expected gain over the giant formula to beat the noise after the
band's cost is taken off it: validated with four seeds, a formula whose band cost 1.1-1.3x
beat the giant formula at every budget, and a smoke-run budget that rules 2 called
trustworthy (gain 1.3x the noise, band cost 0.8x) tied; every budget rules 3 call trustworthy
in the validations on record won (experiments/results/verdict_agreement.md).

:func:`check_above_chance` refuses a fit whose trials are all at chance, before any GP is fitted.
"""

from __future__ import annotations

import math

from ..core.errors import TinyFormulaError
from ..core.numeric import spearman
from ..cost.budgets import SUMMARY_BUDGETS
from .fits import MIN_POINTS
from .gp import is_non_decreasing

VERDICTS = ("trustworthy", "weak", "noise")
# A frontier whose rise is below NOISE_RISE x the seed noise is noise, below WEAK_RISE x weak.
NOISE_RISE = 1.0
WEAK_RISE = 3.0
# A leave-one-out error of r or d above this fraction of its mean value is weak.
WEAK_LOO_RELATIVE = 0.25
# A GP on fewer frontier points than this is mostly its prior.
WEAK_POINTS = 5
# "At chance": the best of n trials no higher above chance than the best of n chance-level
# trials would be (sqrt(2 ln n) sigmas, the expected maximum of n normal draws) plus
# CHANCE_SIGMAS more.
CHANCE_SIGMAS = 1.0
GRID_POINTS = 50
# A budget where the band's expected top-1 cost exceeds WEAK_BAND_COST x one trial's seed
# standard deviation is weak, and so is one where the top-1 the search's own trials expect the
# formula to gain over the inverted giant formula, less the band's cost, is below
# WEAK_ADVANTAGE x that deviation. Rules 3 (0.5.0) allow a band cost of 1.5x where rules 2
# allowed 1x, and discount the gain by the band's cost: scored against the validations on
# record (experiments/results/verdict_agreement.md), every budget they call trustworthy won
# against the giant formula; rules 2 called one that tied trustworthy, and called weak every
# budget of a formula that won at all four.
RULES_VERSION = 3
WEAK_BAND_COST = 1.5
WEAK_ADVANTAGE = 1.0

RULES = (
    "noise: the best top-1 is at chance (no higher than the best of as many trials at chance "
    "would score: sqrt(2 ln n) + 1 sigmas above it, sigma being the larger of the seed noise's "
    "and the binomial standard deviation on the held-out images), or the frontier rises by no "
    f"more than {NOISE_RISE:g}x the seed noise from its smallest to its largest c",
    f"weak: the rise is below {WEAK_RISE:g}x the seed noise, or the seed noise was not measured; "
    f"with a band, weak at a budget where the band's expected top-1 cost exceeds "
    f"{WEAK_BAND_COST:g}x one trial's seed standard deviation (weak overall when weak at any "
    f"summary budget the trials reach), and weak at a budget where the top-1 a surrogate of "
    f"every trial expects the formula's network to gain over the inverted giant formula's, "
    f"less the band's cost, is below {WEAK_ADVANTAGE:g}x that deviation, or where it cannot "
    f"say (either network lies outside the trials); without a band (0.2's rules), weak when "
    f"the leave-one-out error of r or d exceeds {WEAK_LOO_RELATIVE:.0%} of its mean, r(c) or d(c) "
    f"falls as c grows, or the frontier has fewer than {WEAK_POINTS} points",
    "trustworthy: none of the above",
)


def chance_level(num_classes: int) -> float:
    """Top-1 of guessing: 1 / classes (the datasets here have balanced classes)."""
    return 1.0 / num_classes


def noise_sigma(mean_abs_diff: float) -> float:
    """One score's standard deviation from the mean absolute difference of two: for two
    independent normal scores E|X - Y| = 2 sigma / sqrt(pi)."""
    return mean_abs_diff * math.sqrt(math.pi) / 2


def chance_margin(num_classes: int, val_size: int, noise: float | None, trials: int) -> float:
    """How far above chance the best of ``trials`` top-1 scores must be to count as learned.

    One trial's standard deviation is the larger of the binomial one of a chance classifier
    scored on ``val_size`` images and the one the seed noise implies (:func:`noise_sigma`);
    the best of n such trials lands about sqrt(2 ln n) sigmas above chance.
    """
    p = chance_level(num_classes)
    sigma = max(math.sqrt(p * (1 - p) / val_size), noise_sigma(noise or 0.0))
    return sigma * (math.sqrt(2 * math.log(max(trials, 1))) + CHANCE_SIGMAS)


def check_above_chance(top1s: list[float], num_classes: int, val_size: int,
                       noise: float | None) -> None:
    """Refuse to fit a formula on trials that all scored at chance, saying what to do."""
    if not top1s:
        return
    chance, best = chance_level(num_classes), max(top1s)
    margin = chance_margin(num_classes, val_size, noise, len(top1s))
    if best - chance < margin:
        raise TinyFormulaError(
            f"the trials scored at chance ({min(top1s):.1%} to {best:.1%}; chance is "
            f"{chance:.1%} with {num_classes} classes, and the best of {len(top1s)} trials at "
            f"chance would reach about {chance + margin:.1%} by luck): the schedule is too short "
            f"to learn this data, so no formula was fitted. Train longer (more --train-size or "
            f"--epochs) in another --out; check one candidate first with 'tinyformula train'")


def leave_one_out(formula) -> dict[str, float | None]:
    """Root-mean-square leave-one-out error of the formula's r, d and top-1 GPs on its own
    frontier: each point predicted by the formula refitted on the others with the same
    parameters, hyper-parameters included (the whole procedure is cross-validated: holding
    them at the full fit's would let the left-out point choose them). None where the frontier
    has too few points to leave one out (or no top-1)."""
    frontier = formula.frontier_
    n = len(frontier["c"])
    keys = ["r", "d"] + (["top1"] if "top1" in frontier else [])
    if n <= MIN_POINTS:
        return {"r": None, "d": None, "top1": None}
    squares: dict[str, float] = {key: 0.0 for key in keys}
    params = formula.get_params()
    for i in range(n):
        rest = {key: values[:i] + values[i + 1:] for key, values in frontier.items()}
        refit = type(formula)(**params).fit(rest)
        c = frontier["c"][i]
        r, d = (float(v[0]) for v in refit.predict(c))
        squares["r"] += (r - frontier["r"][i]) ** 2
        squares["d"] += (d - frontier["d"][i]) ** 2
        if "top1" in squares:
            squares["top1"] += (refit.expected_top1(c)[0] - frontier["top1"][i]) ** 2
    errors: dict[str, float | None] = {key: math.sqrt(total / n) for key, total in squares.items()}
    errors.setdefault("top1", None)
    return errors


def curves_monotone(formula) -> dict[str, bool]:
    """Whether the fitted r(c) and d(c) are non-decreasing over the fitted c range."""
    lo, hi = formula.c_range_
    grid = [lo * (hi / lo) ** (i / (GRID_POINTS - 1)) for i in range(GRID_POINTS)]
    r, d = formula.predict(grid)
    return {"r": is_non_decreasing(r), "d": is_non_decreasing(d)}


def assess(formula, num_classes: int, val_size: int, seed_noise: float | None,
           trials: int, frontier: dict | None = None,
           advantage: dict[float, float | None] | None = None) -> dict:
    """The quality report of a formula fitted on a search's frontier (with top-1).

    Parameters
    ----------
    formula : TinyFormula
        Fitted on a frontier with columns c, r, d and top1.
    num_classes, val_size : int
        The task's classes and the held-out images the trials were scored on.
    seed_noise : float or None
        Mean absolute top-1 difference between two seeds of the same candidate (None: not
        measured).
    trials : int
        How many trials finished: the best of more trials lands further above chance by luck.
    frontier : dict, optional
        The search's Pareto frontier (columns ``c`` and ``top1``, by c) when the formula was
        not fitted on it (the surrogate fit): its rise is what the trials show.
    advantage : dict, optional
        Summary budget -> the top-1 the trials expect the formula to gain over the inverted
        giant formula there (None: the trials cannot say, which is weak; a budget left out is
        not judged on it). Judged only with a band.

    Returns
    -------
    dict
        Plain data: ``verdict``, ``reasons`` (words), ``rules``, and the measurements.
    """
    points = formula.frontier_
    frontier = frontier if frontier and len(frontier.get("top1", ())) else points
    top1 = frontier["top1"]
    chance = chance_level(num_classes)
    rise = top1[-1] - top1[0]
    # Leave-one-out measures a fit through points; the surrogate's path is not data.
    method = getattr(formula, "method", "frontier")
    loo = (leave_one_out(formula) if method == "frontier"
           else {"r": None, "d": None, "top1": None})
    relative = {key: (loo[key] / (sum(points[key]) / len(points[key]))
                      if loo[key] is not None else None) for key in ("r", "d")}
    monotone = curves_monotone(formula)
    report = {
        "fit": method, "points": len(top1), "chance": chance, "best_top1": max(top1),
        "above_chance": max(top1) - chance,
        "chance_margin": chance_margin(num_classes, val_size, seed_noise, trials),
        "seed_noise": seed_noise, "rise": rise,
        "rise_over_noise": rise / seed_noise if seed_noise else None,
        "loo_rmse": loo, "loo_relative": relative, "monotone_fit": formula.monotone,
        "monotone": monotone,
        "spearman": {key: spearman(points["c"], points[key]) for key in ("r", "d")},
    }
    noise, weak, legacy = [], [], []
    if report["above_chance"] < report["chance_margin"]:
        noise.append(f"the best top-1 ({max(top1):.1%}) is at chance ({chance:.1%})")
    if seed_noise is not None and rise <= NOISE_RISE * seed_noise:
        noise.append(f"the frontier rises by {rise:.1%} from c = {frontier['c'][0]:.3g} to "
                     f"{frontier['c'][-1]:.3g}, within the seed noise ({seed_noise:.1%})")
    else:
        weak += _rise_reasons(rise, seed_noise)
    for key in ("r", "d"):
        if relative[key] is not None and relative[key] > WEAK_LOO_RELATIVE:
            legacy.append(f"{key}(c) misses left-out frontier points by {loo[key]:.2f} "
                          f"({relative[key]:.0%} of its mean)")
        if not monotone[key]:
            legacy.append(f"{key}(c) falls as c grows")
    if len(top1) < WEAK_POINTS:
        legacy.append(f"only {len(top1)} frontier points")
    band = getattr(formula, "band_", None)
    budgets = budget_verdicts(formula, seed_noise, "noise" if noise else None, advantage)
    judged = legacy if band is None else [f"at c = {entry['c']:g} {entry['reason']}"
                                          for entry in budgets if entry["verdict"] == "weak"]
    report["verdict"] = "noise" if noise else "weak" if weak + judged else "trustworthy"
    report["legacy_verdict"] = "noise" if noise else "weak" if weak + legacy else "trustworthy"
    weak += judged
    report["budgets"] = budgets
    report["reasons"] = noise + weak
    report["rules"] = list(RULES)
    report["rules_version"] = RULES_VERSION
    return report


def _rise_reasons(rise: float, seed_noise: float | None) -> list[str]:
    """Why a frontier that is not noise is weak, whatever the fit: no measured seed noise,
    or a rise of less than ``WEAK_RISE`` x it."""
    if seed_noise is None:
        return ["the seed noise was not measured (no re-trained candidate finished)"]
    if rise < WEAK_RISE * seed_noise:
        return [f"the frontier rises by only {rise / seed_noise:.1f}x the seed noise "
                f"({rise:.1%} against {seed_noise:.1%})"]
    return []


def current_rules(report: dict | None, formula) -> dict | None:
    """``report`` judged under the rules in force, where an older version of them wrote it.

    A formula file keeps the verdict of the rules it was fitted under; read back, its
    measurements are judged again, so ``predict`` and the zoo never show a verdict the rules
    in force would not give (``rejudged_from`` names the rules that wrote it). Rules 2 and 3
    differ only in how a band's budgets are judged, from numbers the report and the band
    hold (each budget's band cost and expected gain over the giant formula): only a report
    with a band whose verdict was not noise can change. One without a band is judged by 0.2's
    rules, which still hold. A budget's gain of None counts as "the trials cannot say" when
    the search measured the gain at other budgets, and as not judged when it measured none.
    """
    band = getattr(formula, "band_", None)
    if (not report or report.get("rules_version", 1) >= RULES_VERSION or band is None
            or report.get("verdict") == "noise" or not report.get("budgets")):
        return report
    stored = report["budgets"]
    measured = any(entry.get("advantage_over_giant") is not None for entry in stored)
    advantage = ({entry["c"]: entry.get("advantage_over_giant") for entry in stored
                  if entry.get("top1_cost") is not None} if measured else None)
    budgets = budget_verdicts(formula, report.get("seed_noise"), None, advantage)
    judged = [f"at c = {entry['c']:g} {entry['reason']}" for entry in budgets
              if entry["verdict"] == "weak"]
    reasons = _rise_reasons(report["rise"], report.get("seed_noise")) + judged
    return {**report, "fit": report.get("fit") or getattr(formula, "method", "frontier"),
            "budgets": budgets,
            "verdict": "weak" if reasons else "trustworthy", "reasons": reasons,
            "rules": list(RULES), "rules_version": RULES_VERSION,
            "rejudged_from": report.get("rules_version", 1)}


def budget_verdicts(formula, seed_noise: float | None, overall: str | None = None,
                    advantage: dict[float, float | None] | None = None) -> list[dict]:
    """The verdict at each summary budget: with a band, weak where its top-1 cost exceeds
    ``WEAK_BAND_COST`` x one trial's seed standard deviation or where ``advantage`` (the
    top-1 the trials expect the formula to gain over the inverted giant formula) less that
    cost is below ``WEAK_ADVANTAGE`` x that deviation, ``outside`` where the band does not
    reach (not judged); ``overall`` (``"noise"``) overrides every budget."""
    sigma = noise_sigma(seed_noise) if seed_noise else None
    out = []
    for c in SUMMARY_BUDGETS:
        band = formula.band_at(c) if getattr(formula, "band_", None) is not None else None
        judged = advantage is not None and c in advantage
        gain = advantage.get(c) if advantage is not None else None
        entry: dict = {"c": c, "top1_cost": band["top1_cost"] if band else None,
                       "cost_over_noise": (band["top1_cost"] / sigma if band and sigma
                                           else None),
                       "advantage_over_giant": gain}
        if overall:
            entry.update(verdict=overall, reason="the frontier is noise")
        elif band is None:
            entry.update(verdict="outside", reason="is outside the trials' range (no band): "
                                                   "not judged")
        elif sigma is None:
            entry.update(verdict="weak", reason="has no measured seed noise to judge its band")
        elif band["top1_cost"] > WEAK_BAND_COST * sigma:
            entry.update(verdict="weak", reason=f"the band's expected top-1 cost "
                         f"({band['top1_cost']:.1%}) exceeds {WEAK_BAND_COST:g}x the seed noise's "
                         f"sd ({sigma:.1%})")
        elif judged and gain is None:
            entry.update(verdict="weak", reason="the trials cannot say whether it beats the "
                         "inverted giant formula (one of the two networks lies outside them)")
        elif gain is not None and gain - band["top1_cost"] < WEAK_ADVANTAGE * sigma:
            entry.update(verdict="weak", reason=f"the trials expect it to beat the inverted "
                         f"giant formula by {gain:+.1%}, {gain - band['top1_cost']:+.1%} after "
                         f"the band's cost: within the seed noise's sd ({sigma:.1%})")
        else:
            gained = (f"; the trials expect {gain:+.1%} over the inverted giant formula"
                      if gain is not None else "")
            entry.update(verdict="trustworthy", reason=f"the band costs {band['top1_cost']:.1%}"
                         f", within {WEAK_BAND_COST:g}x the seed noise's sd ({sigma:.1%}){gained}")
        out.append(entry)
    return out


def describe(report: dict | None) -> str:
    """The verdict in one line of words."""
    if not report:
        return "quality: not measured (a built-in formula, or one written before 0.2)"
    reasons = "; ".join(report.get("reasons", ()))
    return f"quality: {report['verdict']}" + (f" ({reasons})" if reasons else "")


def lines(report: dict | None, validated: bool = False) -> list[str]:
    """The report for people: the verdict, then the measurements it rests on. ``validated``:
    the formula carries a validation's evidence (then a weak verdict points to it)."""
    if not report:
        return [describe(report)]
    out = [describe(report)]
    if report["verdict"] == "weak":
        # Measured: of three default searches, the one called weak scored 1-2 points below the
        # two called trustworthy at its weak budgets (docs/validation.md).
        weak = [f"{entry['c']:g}" for entry in report.get("budgets", ())
                if entry.get("verdict") == "weak"]
        where = f" at c = {', '.join(weak)}" if weak else ""
        out.append(f"  before relying on it{where}: read its validation (below), measured on a "
                   f"longer schedule" if validated else
                   f"  before relying on it{where}: validate it ('tinyformula validate RUN'), or "
                   f"search again with another --seed and pool both ('tinyformula pool'); "
                   f"another search may recommend other networks there")
    if report.get("rejudged_from"):
        out.append(f"  (judged under rules {report['rules_version']}, those in force; the "
                   f"formula was written under rules {report['rejudged_from']})")
    noise = report.get("seed_noise")
    # Differences of accuracies are percentage points (pp), not percent.
    out.append(f"  best top-1 {report['best_top1']:.1%}, {100 * report['above_chance']:+.1f} pp "
               f"above chance ({report['chance']:.1%}); frontier rise "
               f"{100 * report['rise']:.1f} pp"
               + (f" = {report['rise_over_noise']:.1f}x the seed noise ({100 * noise:.1f} pp, the "
                  f"mean |difference| between seeds)"
                  if noise else " (seed noise not measured)"))
    loo, relative = report["loo_rmse"], report["loo_relative"]
    if loo["r"] is not None:
        top1 = f", top-1 {100 * loo['top1']:.1f} pp" if loo.get("top1") is not None else ""
        out.append(f"  leave-one-out error: r {loo['r']:.3f} ({relative['r']:.0%}), "
                   f"d {loo['d']:.3f} ({relative['d']:.0%}){top1}")
    elif report.get("fit") == "surrogate":
        out.append("  leave-one-out error: not measured (the surrogate fit's path is read from "
                   "every trial, not fitted through points)")
    else:
        out.append("  leave-one-out error: too few frontier points")
    budgets = [entry for entry in report.get("budgets", ()) if entry.get("top1_cost") is not None]
    if budgets:
        out.append("  band's expected top-1 cost: " + ", ".join(
            f"c = {entry['c']:g} {entry['top1_cost']:.1%} ({entry['verdict']})"
            for entry in budgets))
    gains = [entry for entry in report.get("budgets", ())
             if entry.get("advantage_over_giant") is not None]
    if gains:
        out.append("  expected gain over the inverted giant formula (the search's trials): "
                   + ", ".join(f"c = {entry['c']:g} {entry['advantage_over_giant']:+.1%}"
                               for entry in gains))
    fit = "monotone fit" if report["monotone_fit"] else "unconstrained fit"
    shape = ", ".join(f"{key}(c) {'non-decreasing' if report['monotone'][key] else 'FALLS'}"
                      for key in ("r", "d"))
    rho = ", ".join(f"{key} {report['spearman'][key]:+.2f}" for key in ("r", "d"))
    out.append(f"  {fit}: {shape}; Spearman rho of the frontier's r, d with c: {rho}")
    return out
