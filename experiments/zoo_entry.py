"""Add a validated formula to the zoo (``tinyformula/formulas/zoo/``) with its evidence.

    python experiments/zoo_entry.py --formula FILE --validation VALIDATION.json
        [--tested NAME] [--run RUN] [--into DIR] [--note TEXT ...] [--command TEXT ...]

``FILE`` is the formula to ship (a ``tinyformula fit`` formula file); ``VALIDATION.json`` a
``tinyformula validate`` report in which that formula (under the name ``--tested``, default
``fitted``) was trained against the baselines. The formula must recommend the same networks as
the one validated (checked: r and d at every validated budget within 0.001), so a refit that
only adds a band or a newer verdict can ship with the older validation. Writes
``BASE--DATASET.json`` (the formula, carrying this validation as its evidence, as a run's own
formula does after ``validate``: ``predict`` prints it) and ``BASE--DATASET.evidence.json``: the
search's settings (from the formula's source line and ``--run``'s config), the validation table
per budget at its longest schedule (top-1 mean, the paired difference to each baseline, and a
verdict: ``wins`` where it wins against every fixed formula, ``loses`` where it loses to any,
``ties`` otherwise), the validation's seeds, images, noise and date, the machine and the
commands. Nothing is trained.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

FIXED = ("giant", "published", "fast")
ZOO = Path(__file__).resolve().parents[1] / "tinyformula" / "formulas" / "zoo"


def budget_rows(report: dict, tested: str) -> list[dict]:
    """The tested formula's row per budget at the longest schedule."""
    schedule = report["by_schedule"][-1]
    rows = []
    for budget in schedule["budgets"]:
        mine = [f for f in budget["formulas"] if f["formula"] == tested]
        if not mine:
            continue
        vs = {cmp["baseline"]: cmp["difference"] for cmp in budget["comparisons"]
              if cmp["formula"] == tested}
        verdicts = {cmp["baseline"]: cmp["verdict"] for cmp in budget["comparisons"]
                    if cmp["formula"] == tested and cmp["baseline"] in FIXED}
        overall = ("loses" if "loses" in verdicts.values() else
                   "wins" if verdicts and set(verdicts.values()) == {"wins"} else "ties")
        rows.append({"c": budget["c"], "top1": mine[0]["mean"], "sd": mine[0]["sd"],
                     "n": mine[0]["n"], "verdict": overall, "vs": vs,
                     "verdicts": verdicts,
                     "se": next((cmp["se"] for cmp in budget["comparisons"]
                                 if cmp["formula"] == tested), None)})
    return rows


def main() -> None:
    from tinyformula import TinyFormula, load_run
    from tinyformula.formula.validation import formula_entry

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formula", type=Path, required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--tested", default="fitted")
    parser.add_argument("--run", type=Path, help="the search's run folder (its settings)")
    parser.add_argument("--into", type=Path, default=ZOO)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--command", action="append", default=[])
    parser.add_argument("--machine", default=f"{platform.machine()}, "
                        f"{platform.system()}; 2 CPU cores shared with other work")
    args = parser.parse_args()
    formula = TinyFormula.load(args.formula)
    report = json.loads(args.validation.read_text())
    entries = [e for e in report["entries"] if e["formula"] == args.tested]
    if not entries:
        sys.exit(f"{args.validation} did not test a formula named {args.tested!r}")
    for entry in entries:
        rec = formula.recommend(entry["c_budget"])
        if abs(rec.r - entry["r"]) > 1e-3 or abs(rec.d - entry["d"]) > 1e-3:
            sys.exit(f"{args.formula} recommends r={rec.r:.4f} d={rec.d:.4f} at c = "
                     f"{entry['c_budget']:g}, the validated formula r={entry['r']:.4f} "
                     f"d={entry['d']:.4f}: not the formula validated")
    name = f"{report['base']}/{report['data']}"
    stem = name.replace("/", "--")
    search = {"source": formula.source}
    if args.run:
        config = load_run(args.run).config
        search.update(preset=config.preset, trials=config.trials, seed=config.seed,
                      schedule=config.schedule, second_stage=config.second_stage,
                      train_size=config.train_size,
                      epochs=config.epochs, c_range=list(config.c_range))
    schedule = report["schedules"][-1]
    noise = report["by_schedule"][-1].get("noise", {})
    rows = budget_rows(report, args.tested)
    wins = sum(row["verdict"] == "wins" for row in rows)
    args.into.mkdir(parents=True, exist_ok=True)
    target = args.into / f"{stem}.json"
    formula.validation_ = formula_entry(report, args.tested, report["date"])
    formula.save(target)
    evidence = {
        "format": "tinyformula-zoo-evidence", "version": 1, "name": name,
        "base": report["base"], "dataset": report["data"],
        "formula_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "fit": formula.method, "search": search,
        "validation": {"schedule": f"{schedule['multiple']:g}x the search's images "
                                   f"({schedule['images']:,})",
                       "seeds": report["seeds"], "scored_on": report["scored_on"],
                       "date": report["date"], "noise": noise, "rule": report["rule"],
                       "budgets": rows},
        "quality": (formula.quality_ or {}).get("verdict"),
        "summary": (f"beats every fixed formula it was tested against "
                    f"({', '.join(b for b in FIXED if b in report['baselines'])}) by more "
                    f"than the noise at {wins} of {len(rows)} budgets"),
        "date": report["date"], "machine": args.machine,
        "commands": args.command, "notes": args.note,
    }
    (args.into / f"{stem}.evidence.json").write_text(json.dumps(evidence, indent=1) + "\n")
    print(f"zoo:{name}: {evidence['summary']} -> {target}")


if __name__ == "__main__":
    main()
