"""Judge the verdicts of recorded validations again, under the package's current rule, from
their stored scores (nothing is trained).

    python experiments/rejudge_verdicts.py REPORT.json [REPORT.json ...] [--out NAME]

Every ``tinyformula validate`` report keeps each training's top-1 and each cell's network, so
its tables can be rebuilt with today's :func:`tinyformula.formula.validation.schedule_report`
and set beside the verdicts it printed when it ran. Written for 0.8.1, where a paired
difference's standard error became the larger of the pooled one and the pair's own: the table
lists every verdict that changes, with both standard errors, and counts the changes against the
fixed formulas (``giant``, ``fast``, ``published``) apart from those between formulas.

A report whose noise came from the search (one seed) is rebuilt with that same noise. Writes
``experiments/results/NAME.md`` (default ``rejudge_verdicts``) and ``.json``; with
``--rebuilt DIR``, each report rebuilt under today's rule as ``DIR/NAME.json`` (what
``zoo_entry.py`` reads to re-seal a zoo entry's evidence).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import read_validation, refusing, write_results  # noqa: E402

FIXED = ("giant", "fast", "published")


def scores_at(report: dict, images: int) -> dict:
    """The report's top-1 by seed per (budget, formula) at one schedule."""
    scores: dict = {}
    for s in report["scores"]:
        if s["images"] == images and s.get("top1") is not None:
            scores.setdefault((s["c_budget"], s["formula"]), {})[s["seed"]] = s["top1"]
    return scores


def rebuild(report: dict) -> dict:
    """``report`` with its tables, falls and movement rebuilt from its scores under today's
    rule (each schedule's networks and search-noise fallback as recorded)."""
    from tinyformula.formula.validation import RULE, movement, schedule_report

    by_schedule = []
    for schedule, recorded in zip(report["schedules"], report["by_schedule"]):
        networks = {(row["c"], cell["formula"]): cell["network"]
                    for row in recorded["budgets"] for cell in row["formulas"]}
        noise = recorded["noise"]
        fallback = noise["difference_sd"] if noise.get("source") == "search" else None
        by_schedule.append(schedule_report(report["budgets"], report["tested"],
                                           report["baselines"],
                                           scores_at(report, schedule["images"]), networks,
                                           fallback))
    moved = movement([(s["images"], r) for s, r in zip(report["schedules"], by_schedule)],
                     list(report["tested"]))
    return {**report, "by_schedule": by_schedule, "movement": moved, "rule": RULE}


def rejudge(report: dict, rebuilt: dict) -> list[dict]:
    """Every comparison of ``report`` (each schedule), judged as recorded and as in
    ``rebuilt`` (:func:`rebuild` of it)."""
    from tinyformula.formula.validation import paired, sample_sd

    rows = []
    for schedule, recorded, today in zip(report["schedules"], report["by_schedule"],
                                         rebuilt["by_schedule"]):
        images = schedule["images"]
        scores = scores_at(report, images)
        now = {(row["c"], x["formula"], x["baseline"]): x
               for row in today["budgets"] for x in row["comparisons"]}
        for row in recorded["budgets"]:
            for x in row["comparisons"]:
                new = now.get((row["c"], x["formula"], x["baseline"]))
                if new is None or x["same_network"]:
                    continue
                diffs = paired(scores[(row["c"], x["formula"])],
                               scores[(row["c"], x["baseline"])])
                own = sample_sd(diffs)
                rows.append({"images": images, "c": row["c"], "formula": x["formula"],
                             "baseline": x["baseline"], "n": x["n"],
                             "difference": x["difference"], "se_recorded": x["se"],
                             "se_own": None if own is None else own / math.sqrt(len(diffs)),
                             "se": new["se"], "recorded": x["verdict"],
                             "verdict": new["verdict"]})
    return rows


def changed_falls(report: dict, rebuilt: dict) -> list[dict]:
    """The falls whose significance ``rebuilt`` judges otherwise than ``report`` recorded."""
    found = []
    for schedule, recorded, today in zip(report["schedules"], report["by_schedule"],
                                         rebuilt["by_schedule"]):
        now = {(f["formula"], f["c"]): f for f in today["falls"]}
        for f in recorded["falls"]:
            new = now.get((f["formula"], f["c"]))
            if new and new["significant"] != f["significant"]:
                found.append({"images": schedule["images"], "formula": f["formula"],
                              "c": f["c"], "below": f["below"], "drop": f["drop"],
                              "se_recorded": f["se"], "se": new["se"],
                              "recorded": f["significant"], "significant": new["significant"]})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT.json")
    parser.add_argument("--out", default="rejudge_verdicts")
    parser.add_argument("--rebuilt", type=Path, metavar="DIR",
                        help="also write each report rebuilt under today's rule into DIR")
    args = parser.parse_args()
    if args.rebuilt and args.rebuilt.exists() and not args.rebuilt.is_dir():
        parser.error(f"--rebuilt {args.rebuilt}: not a folder")
    start, load = time.perf_counter(), os.getloadavg()[0]
    from tinyformula.core.files import write_atomically
    from tinyformula.core.version import VERSION

    reports = []
    with refusing(parser):
        for path in args.reports:
            reports.append((path, read_validation(path)))
    lines = [f"tinyformula {VERSION}: each recorded verdict against the verdict its scores give "
             f"today. A difference and its standard errors in top-1 points: as recorded "
             f"(pooled), the pair's own, and today's (the larger).", "",
             "| report | images | c | formula vs | n | difference | se recorded | se own | "
             "se today | recorded -> today |", "|---|---|---|---|---|---|---|---|---|---|"]
    data: dict = {"version": VERSION, "reports": {}}
    fixed, between = Counter(), Counter()
    fall_lines = []
    for path, report in reports:
        name = Path(path).parent.name if Path(path).name == "validation.json" else Path(path).stem
        rebuilt = rebuild(report)
        rows = rejudge(report, rebuilt)
        moved = changed_falls(report, rebuilt)
        data["reports"][name] = {"path": path, "base": report["base"], "comparisons": rows,
                                 "falls_changed": moved}
        fall_lines += [f"- {name}: `{f['formula']}` at c = {f['c']:g} below c = {f['below']:g} "
                       f"by {100 * f['drop']:.2f} ± {100 * f['se_recorded']:.2f} recorded, "
                       f"± {100 * f['se']:.2f} today: "
                       f"{'significant' if f['significant'] else 'within the noise'}"
                       for f in moved]
        if args.rebuilt:
            args.rebuilt.mkdir(parents=True, exist_ok=True)
            write_atomically(args.rebuilt / f"{name}.json",
                             json.dumps(rebuilt, indent=1) + "\n")
        for r in rows:
            (fixed if r["baseline"] in FIXED else between)[(r["recorded"], r["verdict"])] += 1
            if r["recorded"] != r["verdict"]:
                own = "-" if r["se_own"] is None else f"{100 * r['se_own']:.2f}"
                lines.append(f"| {name} | {r['images']:,} | {r['c']:g} | {r['formula']} vs "
                             f"{r['baseline']} | {r['n']} | {100 * r['difference']:+.2f} | "
                             f"{100 * r['se_recorded']:.2f} | {own} | {100 * r['se']:.2f} | "
                             f"{r['recorded']} -> {r['verdict']} |")

    def counts(counter: Counter) -> str:
        total = sum(counter.values())
        changed = sum(v for (a, b), v in counter.items() if a != b)
        kinds = ", ".join(f"{a} -> {b}: {v}" for (a, b), v in sorted(counter.items()) if a != b)
        return f"{changed} of {total} changed" + (f" ({kinds})" if kinds else "")

    lines += ["", f"Against the fixed formulas ({', '.join(FIXED)}): {counts(fixed)}.",
              f"Between formulas: {counts(between)}.", "",
              f"Falls whose significance changed: {len(fall_lines) or 'none'}.", *fall_lines]
    data["fixed"] = {f"{a}->{b}": v for (a, b), v in fixed.items()}
    data["between"] = {f"{a}->{b}": v for (a, b), v in between.items()}
    write_results(args.out, "\n".join(lines), data, start, load,
                  "Recorded verdicts judged again under today's rule")


if __name__ == "__main__":
    main()
