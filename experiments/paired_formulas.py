"""Two versions of the same searches' formulas, validated side by side: paired differences.

    python experiments/paired_formulas.py REPORT.json OLD=NEW [OLD=NEW ...]
        [--also REPORT.json OLD=NEW ...] ... [--label TEXT] [--out NAME]

Each report is a ``tinyformula validate`` run that trained both versions of each search's
formula (``--formula OLD=FILE --formula NEW=FILE``, one pair per search seed): the formula as
one default fitted it and as another does. For each budget it prints each pair's top-1
(OLD -> NEW), the paired difference NEW - OLD over the shared training seeds with its standard
error and the report's verdict, and the mean difference over the pairs; then the same pooled
over every report given. No training: seconds. Writes ``experiments/results/NAME.md``
(default ``paired_formulas``) and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import read_validation, refusing, write_results  # noqa: E402

FLIPPED = {"wins": "loses", "loses": "wins"}


def validated_pairs(path: str, pairs: list[tuple[str, str]]) -> dict:
    """Per budget of the report's longest schedule: each pair's paired NEW - OLD difference,
    standard error and verdict (the report's own comparison, taken either way round)."""
    from tinyformula import TinyFormulaError

    report = read_validation(path)
    rows = []
    for budget in report["by_schedule"][-1]["budgets"]:
        compared = {(x["formula"], x["baseline"]): x for x in budget["comparisons"]}
        means = {f["formula"]: f["mean"] for f in budget["formulas"]}
        cells = []
        for old, new in pairs:
            if (new, old) in compared:
                x = compared[(new, old)]
                sign, verdict = 1, x["verdict"]
            elif (old, new) in compared:
                x = compared[(old, new)]
                sign, verdict = -1, FLIPPED.get(x["verdict"], x["verdict"])
            else:
                raise TinyFormulaError(f"{path} holds no comparison of {new} with {old} at "
                                       f"c = {budget['c']:g}")
            cells.append({"old": old, "new": new, "old_top1": means[old],
                          "new_top1": means[new], "difference": sign * x["difference"],
                          "se": x["se"], "verdict": verdict})
        rows.append({"c": budget["c"], "pairs": cells,
                     "mean_difference": sum(x["difference"] for x in cells) / len(cells)})
    return {"validation": path, "base": report["base"], "out": report["out"],
            "images": report["schedules"][-1]["images"], "seeds": report["seeds"], "rows": rows}


def validated_table(result: dict, label: str) -> list[str]:
    """The markdown table of one report's pairs."""
    pairs = [(x["old"], x["new"]) for x in result["rows"][0]["pairs"]]
    lines = ["", f"Validated (`{result['out']}`: {result['base']}, {result['images']:,} images, "
             f"seeds {' '.join(map(str, result['seeds']))}): top-1 of {label}, and the paired "
             "difference (± its standard error, verdict):", "",
             "| c | " + " | ".join(f"`{old}` -> `{new}`" for old, new in pairs)
             + " | mean difference |", "|---|" + "---|" * (len(pairs) + 1)]
    for row in result["rows"]:
        cells = [f"{100 * x['old_top1']:.2f} -> {100 * x['new_top1']:.2f}: "
                 f"{100 * x['difference']:+.2f} ± {100 * x['se']:.2f} {x['verdict']}"
                 for x in row["pairs"]]
        lines.append(f"| {row['c']:g} | " + " | ".join(cells)
                     + f" | {100 * row['mean_difference']:+.2f} |")
    return lines


def pooled_table(results: list[dict]) -> list[str]:
    """Every pair of every report, per budget: the mean difference and the verdicts counted."""
    budgets = sorted({row["c"] for result in results for row in result["rows"]})
    lines = ["", "Pooled over every pair:", "",
             "| c | pairs | mean difference | wins | ties | loses |", "|---|---|---|---|---|---|"]
    for c in budgets:
        cells = [x for result in results for row in result["rows"] if row["c"] == c
                 for x in row["pairs"]]
        count = {v: sum(x["verdict"] == v for x in cells) for v in ("wins", "ties", "loses")}
        mean = sum(x["difference"] for x in cells) / len(cells)
        lines.append(f"| {c:g} | {len(cells)} | {100 * mean:+.2f} | {count['wins']} | "
                     f"{count['ties']} | {count['loses']} |")
    return lines


def parse_spec(parser, spec: list[str]) -> tuple[str, list[tuple[str, str]]]:
    if len(spec) < 2 or any("=" not in pair for pair in spec[1:]):
        parser.error("give a report and at least one OLD=NEW pair")
    return spec[0], [tuple(pair.split("=", 1)) for pair in spec[1:]]  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", nargs="+", metavar="REPORT.json OLD=NEW")
    parser.add_argument("--also", nargs="+", action="append", default=[],
                        metavar="REPORT.json OLD=NEW", help="another report and its pairs")
    parser.add_argument("--label", default="the old formula -> the new one")
    parser.add_argument("--out", default="paired_formulas")
    args = parser.parse_args()
    specs = [parse_spec(parser, spec) for spec in [args.report, *args.also]]
    start, load = time.perf_counter(), os.getloadavg()[0]
    with refusing(parser):
        results = [validated_pairs(path, pairs) for path, pairs in specs]
    lines = []
    for result in results:
        lines += validated_table(result, args.label)
    if len(results) > 1:
        lines += pooled_table(results)
    write_results(args.out, "\n".join(lines).lstrip("\n"), {"reports": results}, start, load,
                  f"Paired: {args.label}")


if __name__ == "__main__":
    main()
