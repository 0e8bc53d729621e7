"""Does the quality verdict say what validation finds? Its rules, scored against validations.

    python experiments/verdict_agreement.py FORMULA.json[=VALIDATION.json[@NAME]] ... [--out NAME]

Each argument pairs a search's formula file (its quality report holds, per summary budget, the
band's top-1 cost and the top-1 the search's trials expect it to gain over the inverted giant
formula, both under the search's schedule) with a ``validation.json`` that trained it on a
longer schedule (``@NAME``: the formula's name there; default ``fitted``); a formula file alone
is read with the validation it carries (a zoo entry's). For every budget
both cover, it reads the validated verdict against the giant and fast formulas (the longest
schedule's) and asks each candidate rule whether it would have called the budget trustworthy.

A budget called trustworthy should win against the giant formula in validation; one called
weak should not be relied on to (a weak budget that wins is a *miss*: the verdict was more
careful than it needed to be; a trustworthy one that does not win is *wrong*). No training:
seconds. Writes ``experiments/results/NAME.md`` and ``.json`` (default ``verdict_agreement``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, provenance  # noqa: E402

from tinyformula.formula.quality import (  # noqa: E402
    RULES_VERSION,
    WEAK_ADVANTAGE,
    WEAK_BAND_COST,
    noise_sigma,
)

# name -> rule(cost, gain) in units of one trial's seed standard deviation; gain None: the
# trials cannot say. Rules 2 were in force until this measurement (0.4). The rules in force
# read their thresholds from the package, so this scores what `fit` does today.
RULES = {
    "rules 2: cost <= 1, gain >= 1": lambda cost, gain: gain is not None and cost <= 1
    and gain >= 1,
    "cost <= 1.5, gain >= 1": lambda cost, gain: gain is not None and cost <= 1.5 and gain >= 1,
    "gain - cost >= 1": lambda cost, gain: gain is not None and gain - cost >= 1,
    f"rules {RULES_VERSION} (in force): cost <= {WEAK_BAND_COST:g}, gain - cost >= "
    f"{WEAK_ADVANTAGE:g}": lambda cost, gain: gain is not None and cost <= WEAK_BAND_COST
    and gain - cost >= WEAK_ADVANTAGE,
    "cost <= 2, gain - cost >= 1": lambda cost, gain: gain is not None and cost <= 2
    and gain - cost >= 1,
}


def validated(formula: dict, validation_path: str, name: str) -> dict:
    """Budget -> {baseline: (verdict, difference, se)} of the validation's longest schedule."""
    if not validation_path:
        carried = formula["validation"]
        return {float(c): {b: (carried["verdicts"][b][c], *carried["differences"][b][c])
                           for b in ("giant", "fast") if c in carried["verdicts"].get(b, {})}
                for c in carried["budgets"]}
    schedule = json.loads(Path(validation_path).read_text())["by_schedule"][-1]
    return {budget["c"]: {x["baseline"]: (x["verdict"], x["difference"], x["se"])
                          for x in budget["comparisons"] if x["formula"] == name}
            for budget in schedule["budgets"]}


def rows_for(spec: str) -> list[dict]:
    formula_path, _, rest = spec.partition("=")
    validation_path, _, name = rest.partition("@")
    name = name or "fitted"
    formula = json.loads(Path(formula_path).read_text())
    quality = formula["quality"]
    outcomes = validated(formula, validation_path, name)
    s = noise_sigma(quality["seed_noise"])
    label = (f"{Path(formula_path).parent.name}/{name}" if validation_path
             else Path(formula_path).stem)
    rows = []
    for judged in quality["budgets"]:
        found = [v for c, v in outcomes.items() if math.isclose(c, judged["c"])]
        if judged.get("top1_cost") is None or not found or "giant" not in found[0]:
            continue          # outside the band, or not validated there
        giant, fast = found[0]["giant"], found[0].get("fast")
        gain = judged["advantage_over_giant"]
        rows.append({"formula": label, "c": judged["c"], "sigma": s,
                     "cost": judged["top1_cost"] / s,
                     "gain": gain / s if gain is not None else None,
                     "verdict_then": judged["verdict"], "giant": giant[0],
                     "giant_diff": giant[1], "se": giant[2],
                     "fast": fast[0] if fast else None})
    return rows


def score(rows: list[dict]) -> list[dict]:
    out = []
    for rule, trusts in RULES.items():
        calls = [(trusts(r["cost"], r["gain"]), r["giant"] == "wins",
                  r["giant"] == "wins" and r["fast"] in (None, "wins")) for r in rows]
        trusted = [c for c in calls if c[0]]
        out.append({"rule": rule, "budgets": len(calls), "trustworthy": len(trusted),
                    "won_giant": sum(c[1] for c in trusted),
                    "won_both": sum(c[2] for c in trusted),
                    "weak": len(calls) - len(trusted),
                    "weak_not_won": sum(not c[0] and not c[1] for c in calls),
                    "agree": sum(c[0] == c[1] for c in calls)})
    return out


def report(rows: list[dict], scores: list[dict], args, seconds: float) -> str:
    lines = ["# Does the quality verdict say what validation finds?", "",
             provenance(["experiments/verdict_agreement.py", *args.pairs], seconds), "",
             "Per budget: the band's top-1 cost and the trials' expected gain over the inverted "
             "giant formula, in units of one trial's seed standard deviation (sigma) under the "
             "search's schedule, beside the validated verdict against giant and fast (paired "
             "over seeds, longer schedule).", "",
             "| formula | c | sigma | cost / sigma | gain / sigma | vs giant (diff ± se) | "
             "vs fast | " + " | ".join(f"`{name}`" for name in RULES) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(RULES)]
    for r in rows:
        gain = f"{r['gain']:+.1f}" if r["gain"] is not None else "cannot say"
        calls = " | ".join("T" if trusts(r["cost"], r["gain"]) else "w"
                           for trusts in RULES.values())
        lines.append(f"| {r['formula']} | {r['c']:g} | {r['sigma']:.1%} | {r['cost']:.2f} | "
                     f"{gain} | {r['giant']} ({100 * r['giant_diff']:+.1f} ± "
                     f"{100 * r['se']:.1f}) | {r['fast'] or '-'} | {calls} |")
    lines += ["", "T: trustworthy, w: weak. Scored: a trustworthy budget should win against "
              "giant (*right*); a weak one that wins is a *miss*.", "",
              "| rule | budgets | trustworthy | of which won vs giant | won vs both | weak | "
              "of which did not win | agree |", "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| `{s['rule']}` | {s['budgets']} | {s['trustworthy']} | "
                     f"{s['won_giant']} | {s['won_both']} | {s['weak']} | "
                     f"{s['weak_not_won']} | {s['agree']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", metavar="FORMULA[=VALIDATION[@NAME]]")
    parser.add_argument("--out", default="verdict_agreement")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = [row for spec in args.pairs for row in rows_for(spec)]
    scores = score(rows)
    text = report(rows, scores, args, time.perf_counter() - start)
    (RESULTS / f"{args.out}.md").write_text(text)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"rows": rows, "scores": scores},
                                                         indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
