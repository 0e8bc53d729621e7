"""What a validation measures, from its scores: the maths of ``tinyformula validate``.

A validation trains, on a longer schedule than the search and with seeds it never used, the
configuration each formula gives at each budget, every seed with common random numbers (the
same images, order and augmentation draws for every formula at a seed). From those scores:

* per budget and formula: the mean top-1 over seeds and its spread (sample standard deviation,
  lowest, highest);
* per budget, formula under test and baseline: the **paired difference** (the mean over seeds of
  tested minus baseline at the same seed) and its standard error;
* the **seed noise**: the pooled standard deviation of one score between seeds (every formula
  at every budget pooled), and that of a paired difference (every pair pooled), so that a
  cell of two or three seeds does not get an accidentally tiny noise of its own;
* each paired difference's **standard error** (:func:`paired_se`): the larger of the pooled
  one and the pair's own (its differences' sample standard deviation), each over the square
  root of the seeds. Networks differ in how much they vary between seeds (a fixed formula's
  network can spread four times as much as the others), and a pooled figure alone would let
  such a pair win on noise it does not have; the larger of the two never does;
* the **verdict** per budget (:func:`verdict`): ``wins`` when the paired difference is more
  than :data:`Z` standard errors above zero, ``loses`` when more than Z below, else ``ties``;
* **falls**: a budget whose mean top-1 is below a smaller budget's (the formula buys cost that
  does not pay there);
* across schedules, whether the ranking is still moving (:func:`movement`);
* the search's **fidelity**: Kendall's tau and Spearman's rho between frontier points' short-
  and long-schedule scores (:func:`fidelity`).

Plain Python on plain data (no numpy, no torch); the rank correlations are
:mod:`tinyformula.core.numeric`'s. :func:`formula_entry` is what a formula file carries as its
evidence, and :func:`describe` the line ``tinyformula predict`` prints for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..core.numeric import kendall_tau, spearman

VERDICTS = ("wins", "ties", "loses")
Z = 2.0   # standard errors a paired difference must clear to win or lose (~95%, two-sided)
RULE = (f"wins: the mean paired difference (tested minus baseline, same seed) is more than "
        f"{Z:g} standard errors above 0; loses: more than {Z:g} below; ties: otherwise. The "
        f"standard error is the larger of two standard deviations of a paired difference, "
        f"the pooled one (every formula pair at every budget of the schedule) and the pair's "
        f"own, over the square root of the seeds; with one seed, the search's own seed noise "
        f"stands in for the pooled one")


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (n - 1); None for fewer than two values."""
    if len(values) < 2:
        return None
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def pooled_sd(groups: Iterable[Sequence[float]]) -> tuple[float | None, int]:
    """``(sd, degrees of freedom)`` of values around their own group's mean, pooled over the
    groups (each group of n values gives n - 1 degrees of freedom); (None, 0) when no group
    has two values."""
    squares, dof = 0.0, 0
    for group in groups:
        if len(group) >= 2:
            m = mean(group)
            squares += sum((v - m) ** 2 for v in group)
            dof += len(group) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def paired(tested: Mapping[int, float], baseline: Mapping[int, float]) -> list[float]:
    """Tested minus baseline at every seed both have a score for, in seed order."""
    return [tested[s] - baseline[s] for s in sorted(set(tested) & set(baseline))]


def paired_se(diffs: Sequence[float], pooled: float | None) -> float | None:
    """The standard error of the mean of ``diffs`` (one pair's differences, seed by seed): the
    larger of the ``pooled`` standard deviation of a paired difference and the pair's own
    sample standard deviation, over the square root of the seeds (see the module's
    docstring). The pooled one alone when the pair has one seed; None when neither is known."""
    own = sample_sd(diffs)
    spreads = [sd for sd in (pooled, own) if sd is not None]
    if not diffs or not spreads:
        return None
    return max(spreads) / math.sqrt(len(diffs))


def verdict(difference: float, se: float | None, z: float = Z) -> str:
    """``wins``, ``ties`` or ``loses`` (see :data:`RULE`); ``ties`` when the noise is
    unknown (``se`` None): a sign alone decides nothing."""
    if se is None:
        return "ties"
    if difference > z * se:
        return "wins"
    if difference < -z * se:
        return "loses"
    return "ties"


def search_difference_sd(search_mean_abs_diff: float | None) -> float | None:
    """A paired difference's standard deviation from the search's seed noise (the mean absolute
    top-1 difference between two seeds of one candidate): E|X - Y| = 2 sigma / sqrt(pi) for
    one score, and a difference of two independent scores has sqrt(2) sigma."""
    if not search_mean_abs_diff:
        return None
    return search_mean_abs_diff * math.sqrt(math.pi) / 2 * math.sqrt(2)


Cell = tuple[float, str]            # (budget, formula)
Scores = Mapping[Cell, Mapping[int, float]]   # top-1 by seed, ok trainings only


def schedule_report(budgets: Sequence[float], tested: Sequence[str], baselines: Sequence[str],
                    scores: Scores, networks: Mapping[Cell, str],
                    fallback_difference_sd: float | None = None) -> dict:
    """One schedule's tables: per budget each formula's mean and spread, each tested
    formula's paired difference to each baseline with its standard error and verdict, the
    leader; the schedule's seed noise; and the falls of each formula (see the module's
    docstring). ``networks`` names each cell's network: cells of one network are the same
    training, so their differences are 0 by construction and left out of the noise.
    ``fallback_difference_sd`` (from the search) stands in when no cell has two seeds."""
    formulas = [*tested, *[b for b in baselines if b not in tested]]
    score_sd, score_dof = pooled_sd(list(scores[cell].values()) for cell in scores)
    pairs: dict[tuple[float, str, str], list[float]] = {}
    for c in budgets:
        for t in tested:
            for b in formulas:
                if b == t or (c, t) not in scores or (c, b) not in scores:
                    continue
                pairs[(c, t, b)] = paired(scores[(c, t)], scores[(c, b)])
    distinct = [d for (c, t, b), d in pairs.items()
                if networks.get((c, t)) != networks.get((c, b))]
    difference_sd, difference_dof = pooled_sd(distinct)
    source = "validation"
    if difference_sd is None:
        difference_sd, source = fallback_difference_sd, "search" if fallback_difference_sd \
            else "none"
    rows = []
    for c in budgets:
        cells: list[dict] = []
        for f in formulas:
            values = [v for _, v in sorted(scores.get((c, f), {}).items())]
            if values:
                cells.append({"formula": f, "mean": mean(values), "sd": sample_sd(values),
                              "min": min(values), "max": max(values), "n": len(values),
                              "network": networks.get((c, f))})
        comparisons = []
        for t in tested:
            for b in formulas:
                diffs = pairs.get((c, t, b))
                if b == t or not diffs:
                    continue
                same = networks.get((c, t)) == networks.get((c, b))
                se = paired_se(diffs, difference_sd)
                difference = mean(diffs)
                comparisons.append({
                    "formula": t, "baseline": b, "difference": difference, "se": se,
                    "n": len(diffs), "same_network": same,
                    "verdict": "ties" if same else verdict(difference, se)})
        leader = max(cells, key=lambda cell: float(cell["mean"]))["formula"] if cells else None
        rows.append({"c": c, "formulas": cells, "comparisons": comparisons, "leader": leader})
    noise = {"score_sd": score_sd, "score_dof": score_dof, "difference_sd": difference_sd,
             "difference_dof": difference_dof, "source": source}
    report = {"noise": noise, "budgets": rows}
    report["falls"] = falls(report, formulas, scores)
    return report


def falls(report: dict, formulas: Iterable[str], scores: Scores | None = None,
          z: float = Z) -> list[dict]:
    """Each budget where a formula's mean top-1 falls below its own at a smaller budget:
    ``{formula, c, below (the smaller budget), drop, se, significant}``; the drop is
    significant when it is more than ``z`` standard errors of a paired difference
    (:func:`paired_se` of the two budgets' scores seed by seed, given ``scores``; the pooled
    one alone without)."""
    found = []
    difference_sd = report["noise"]["difference_sd"]
    scores = scores or {}
    for f in formulas:
        means = [(row["c"], cell) for row in report["budgets"] for cell in row["formulas"]
                 if cell["formula"] == f]
        means.sort(key=lambda item: item[0])
        for j, (c, cell) in enumerate(means):
            if j == 0:
                continue
            best_c, best = max(means[:j], key=lambda item: item[1]["mean"])
            drop = best["mean"] - cell["mean"]
            if drop > 0:
                diffs = paired(scores.get((best_c, f), {}), scores.get((c, f), {}))
                if diffs:
                    se = paired_se(diffs, difference_sd)
                else:
                    n = min(cell["n"], best["n"])
                    se = None if difference_sd is None else difference_sd / math.sqrt(n)
                found.append({"formula": f, "c": c, "below": best_c, "drop": drop, "se": se,
                              "significant": se is not None and drop > z * se})
    return found


def movement(reports: Sequence[tuple[int, dict]], tested: Sequence[str]) -> dict | None:
    """Whether the ranking still moves with the schedule, from ``(images, schedule_report)``
    pairs, shortest schedule first (None for fewer than two schedules).

    Per budget: the leader at each schedule, and Kendall's tau between the formulas' mean top-1
    at each pair of consecutive schedules; per tested formula and baseline, the verdict at
    each schedule. ``moving`` is True where the leader or a verdict differs between the two
    longest schedules.
    """
    if len(reports) < 2:
        return None
    budgets = []
    for row in reports[-1][1]["budgets"]:
        c = row["c"]
        at = [next((r for r in report["budgets"] if r["c"] == c), None) for _, report in reports]
        means = [{cell["formula"]: cell["mean"] for cell in r["formulas"]} if r else {}
                 for r in at]
        taus = []
        for a, b in zip(means, means[1:]):
            common = sorted(set(a) & set(b))
            tau = kendall_tau([a[f] for f in common], [b[f] for f in common]) \
                if len(common) >= 2 else math.nan
            taus.append(None if math.isnan(tau) else tau)
        found = [{(x["formula"], x["baseline"]): x["verdict"] for x in r["comparisons"]}
                 if r else {} for r in at]
        verdicts: dict[str, dict[str, list[str | None]]] = {}
        for t, b in sorted({key for f in found for key in f if key[0] in tested}):
            verdicts.setdefault(t, {})[b] = [f.get((t, b)) for f in found]
        leaders = [r["leader"] if r else None for r in at]
        moving = leaders[-1] != leaders[-2] or any(
            line[-1] != line[-2] for lines in verdicts.values() for line in lines.values())
        budgets.append({"c": c, "leaders": leaders, "kendall_tau": taus,
                        "verdicts": verdicts, "moving": moving})
    return {"images": [images for images, _ in reports], "budgets": budgets,
            "moving": any(b["moving"] for b in budgets)}


def fidelity(points: Sequence[Mapping]) -> dict:
    """The search's fidelity from retrained frontier points (each with ``short``, its score
    in the search, and ``long``, on the validation's schedule): Kendall's tau-b and Spearman's
    rho between the two (None with fewer than three points or a constant series)."""
    done = [p for p in points if p.get("long") is not None and p.get("short") is not None]
    out: dict = {"points": [dict(p) for p in points], "retrained": len(done),
                 "kendall_tau": None, "spearman": None}
    if len(done) >= 3:
        short, long = [p["short"] for p in done], [p["long"] for p in done]
        tau, rho = kendall_tau(short, long), spearman(short, long)
        out["kendall_tau"] = None if math.isnan(tau) else tau
        out["spearman"] = None if math.isnan(rho) else rho
    return out


def formula_entry(report: dict, name: str, when: str) -> dict:
    """What a formula file carries as its validation evidence: the tested formula ``name``'s
    verdicts, paired differences and mean top-1 per budget on the main (longest) schedule,
    its falls, the fidelity, and how the validation was run. Plain data, sealed with the
    formula by its file's checksum."""
    main = report["by_schedule"][-1]
    schedule = report["schedules"][-1]
    verdicts: dict[str, dict[str, str]] = {}
    differences: dict[str, dict[str, list]] = {}
    top1: dict[str, float] = {}
    for row in main["budgets"]:
        key = f"{row['c']:g}"
        for cell in row["formulas"]:
            if cell["formula"] == name:
                top1[key] = cell["mean"]
        for comparison in row["comparisons"]:
            if comparison["formula"] == name:
                b = comparison["baseline"]
                verdicts.setdefault(b, {})[key] = comparison["verdict"]
                differences.setdefault(b, {})[key] = [comparison["difference"],
                                                      comparison["se"]]
    fid = report.get("fidelity") or {}
    return {"date": when, "images": schedule["images"],
            "search_images": report["search_images"], "seeds": list(report["seeds"]),
            "scored_on": report["scored_on"], "budgets": [f"{c:g}" for c in report["budgets"]],
            "top1": top1, "verdicts": verdicts, "differences": differences,
            "noise": main["noise"],
            "falls": [{k: f[k] for k in ("c", "below", "drop", "significant")}
                      for f in main["falls"] if f["formula"] == name],
            "fidelity": {"kendall_tau": fid.get("kendall_tau"), "spearman": fid.get("spearman"),
                         "points": fid.get("retrained", 0)},
            "moving": (report.get("movement") or {}).get("moving"),
            "rule": RULE}


def describe(entry: dict | None) -> str:
    """A formula's validation evidence in one line (``tinyformula predict`` prints it)."""
    if not entry:
        return ("validation: not validated yet (run 'tinyformula validate RUN' on the run "
                "folder that fitted it)")
    budgets = entry.get("budgets", [])
    parts = []
    for baseline, by_budget in entry.get("verdicts", {}).items():
        counts = [sum(v == verdict for v in by_budget.values()) for verdict in VERDICTS]
        parts.append(f"{baseline} {'/'.join(map(str, counts))}")
    text = (f"validation: wins/ties/loses against {', '.join(parts)}" if parts
            else "validation: no other formula compared")
    text += (f" (budgets {' '.join(budgets)}; {entry['images']:,} images = "
             f"{entry['images'] / entry['search_images']:.3g}x the search's, "
             f"{len(entry.get('seeds', []))} seeds, scored on "
             f"{entry.get('scored_on', 'held-out data')})")
    falls_ = entry.get("falls") or []
    if falls_:
        text += "; falls: " + ", ".join(f"c={f['c']:g} below c={f['below']:g} by "
                                        f"{f['drop']:.1%}" for f in falls_)
    fid = entry.get("fidelity") or {}
    if fid.get("kendall_tau") is not None:
        text += f"; fidelity tau {fid['kendall_tau']:+.2f} over {fid['points']} points"
    return text
