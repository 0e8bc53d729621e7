"""Do formulas from different search seeds agree? Their networks and validated scores, side by side.

    python experiments/seed_agreement_validated.py VALIDATION.json NAME [NAME ...]
        [--out RESULT] [--title T]

``VALIDATION.json`` is a ``tinyformula validate`` report that trained the formulas ``NAME ...``
(its ``--formula NAME=FILE`` names: one per search seed of the same preset) at the same budgets,
seeds and schedule. For each budget it prints what each formula recommends (r / d / w and the
input size in pixels), its long-schedule top-1 (mean and spread over the training seeds), how
far apart the formulas are (r and d as the ratio of the largest to the smallest, px as a range,
top-1 as the largest gap between means) and the paired difference of the two formulas furthest
apart, with its standard error and the validation's verdict. The issue's target is a gap of at
most 1 point at every budget. Each formula's verdict against the fixed formulas the validation
trained (giant, fast, published) is listed too.

How much can such a test say? From the same report, the spread of a per-seed difference between
two distinct networks of these formulas at one budget (``seed_spread``: every such pair, over
all budgets; the fixed formulas' networks left out) gives each network's mean its noise. The
chance that as many formulas *of exactly equal quality*, on distinct networks, would land
within 1 point of each other is then simulated (``equal_quality_chance``), at one budget and at
all budgets at once, at the report's seed count and at more. Formulas that give the same
network agree exactly, so this is the chance for formulas that differ only by noise. With more
than three formulas it also counts, over every group of three, how many would have passed the
issue's three-seed test (``triples``). No training: seconds. Writes
``experiments/results/RESULT.md`` and ``.json`` (default ``seed_agreement_validated_run``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, network_scores, provenance, read_validation, refusing  # noqa: E402

TARGET = 0.01           # the target: within 1 point of each other
FIXED = ("giant", "fast", "published")
DRAWS = 200_000         # simulated validations per chance (its error: about 0.001)
MORE_SEEDS = (16, 32)   # seed counts the chance is also given at


def seed_spread(report: dict, names: list[str]) -> tuple[float, int, int]:
    """The root mean square, over every pair of distinct networks that the formulas ``names``
    give at one budget (all budgets of the longest schedule), of the standard deviation of their
    per-seed top-1 difference; the number of such pairs; and the fewest seeds a network has.
    The fixed formulas are left out: their networks can be less stable (fast compound scaling's
    spread reached 4.8 points at c = 0.06), which is not the formulas' noise."""
    import itertools

    import numpy as np

    networks = list(network_scores(report, names).values())
    spreads = []
    for a, b in itertools.combinations(networks, 2):
        if a["entry"]["c_budget"] != b["entry"]["c_budget"]:
            continue
        seeds = sorted(set(a["scores"]) & set(b["scores"]))
        if len(seeds) >= 2:
            spreads.append(float(np.std([a["scores"][s] - b["scores"][s] for s in seeds],
                                        ddof=1)))
    fewest = min((len(n["scores"]) for n in networks), default=0)
    if not spreads:
        return float("nan"), 0, fewest
    return float(np.sqrt(np.mean(np.square(spreads)))), len(spreads), fewest


def equal_quality_chance(spread: float, seeds: int, formulas: int) -> float:
    """The chance that ``formulas`` means over ``seeds`` of networks of equal quality, each
    pair's per-seed difference spread ``spread``, lie within ``TARGET`` of each other."""
    import numpy as np

    noise = spread / np.sqrt(2) / np.sqrt(seeds)   # one network's mean, its own part
    draws = np.random.default_rng(0).normal(0.0, noise, (DRAWS, formulas))
    return float(np.mean(draws.max(axis=1) - draws.min(axis=1) <= TARGET))


def spread(report: dict, names: list[str]) -> list[dict]:
    """One row per budget of the report's longest schedule."""
    schedule = report["by_schedule"][-1]
    entries = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
    rows = []
    for budget in schedule["budgets"]:
        c = budget["c"]
        scored = {f["formula"]: f for f in budget["formulas"]}
        missing = [name for name in names if name not in scored or (c, name) not in entries]
        if missing:
            from tinyformula import TinyFormulaError

            raise TinyFormulaError(f"{', '.join(missing)} not trained at c = {c:g} in this "
                                   f"validation (its formulas: {', '.join(scored)})")
        nets = {name: entries[(c, name)] for name in names}
        means = {name: scored[name]["mean"] for name in names}
        order = sorted(names, key=means.get)   # two distinct names even when the means tie
        worst, best = order[0], order[-1]
        pair = next((x for x in budget["comparisons"]
                     if x["formula"] == best and x["baseline"] == worst), None)
        rows.append({
            "c": c,
            "formulas": {name: {"r": nets[name]["r"], "d": nets[name]["d"],
                                "w": nets[name]["w"], "px": nets[name]["resolution"],
                                "c": nets[name]["c"], "top1": means[name],
                                "sd": scored[name]["sd"], "n": scored[name]["n"],
                                "vs": {x["baseline"]: (x["verdict"], x["difference"], x["se"])
                                       for x in budget["comparisons"]
                                       if x["formula"] == name and x["baseline"] in FIXED}}
                         for name in names},
            "r_ratio": max(n["r"] for n in nets.values()) / min(n["r"] for n in nets.values()),
            "d_ratio": max(n["d"] for n in nets.values()) / min(n["d"] for n in nets.values()),
            "px": [min(n["resolution"] for n in nets.values()),
                   max(n["resolution"] for n in nets.values())],
            "gap": means[best] - means[worst], "best": best, "worst": worst,
            "gap_se": pair["se"] if pair else None,
            "gap_verdict": pair["verdict"] if pair else None,
            "within_target": means[best] - means[worst] <= TARGET,
        })
    return rows


def triples(rows: list[dict], names: list[str], size: int = 3) -> dict:
    """With more than ``size`` formulas: over every group of ``size`` of them, the share whose
    validated means lie within ``TARGET`` of each other, per budget and at every budget at once.
    What the issue's test (three seeds) would have found, had it drawn these seeds instead."""
    import itertools

    groups = list(itertools.combinations(names, size))
    within = [[max(r["formulas"][n]["top1"] for n in g) - min(r["formulas"][n]["top1"]
                                                               for n in g) <= TARGET
               for r in rows] for g in groups]
    return {"size": size, "groups": len(groups),
            "per_budget": [sum(w[j] for w in within) / len(groups) for j in range(len(rows))],
            "every_budget": sum(all(w) for w in within) / len(groups),
            "passing": [list(g) for g, w in zip(groups, within) if all(w)]}


def render(rows: list[dict], names: list[str], report: dict, args, seconds: float) -> str:
    schedule = report["schedules"][-1]
    lines = [f"# {args.title}", "",
             provenance(["experiments/seed_agreement_validated.py", str(args.validation),
                         *args.names], seconds), "",
             f"Validation `{report['out']}` ({report['date']}, tinyformula "
             f"{report['version_written_by']}): {report['base']} on {report['data']}, "
             f"{schedule['images']:,} training images ({schedule['multiple']:g}x the search's), "
             f"training seeds {' '.join(map(str, report['seeds']))}, scored on "
             f"{report['scored_on']}.", "",
             "| c | " + " | ".join(f"`{n}` r / d / w, px" for n in names)
             + " | " + " | ".join(f"`{n}` top-1" for n in names)
             + " | r max/min | d max/min | px | top-1 gap (paired ± se) | within 1 pt |",
             "|---|" + "---|" * (2 * len(names) + 5)]
    for row in rows:
        f = row["formulas"]
        nets = [f"{f[n]['r']:g} / {f[n]['d']:g} / {f[n]['w']:g}, {f[n]['px']}" for n in names]
        scores = [f"{100 * f[n]['top1']:.2f} ± {100 * f[n]['sd']:.2f}" for n in names]
        se = f" ({row['gap_verdict']}, ± {100 * row['gap_se']:.2f})" if row["gap_se"] else ""
        lines.append(f"| {row['c']:g} | " + " | ".join(nets) + " | " + " | ".join(scores)
                     + f" | {row['r_ratio']:.2f} | {row['d_ratio']:.2f} | "
                     f"{row['px'][0]}-{row['px'][1]} | {100 * row['gap']:.2f} "
                     f"(`{row['best']}` − `{row['worst']}`){se} | "
                     f"{'yes' if row['within_target'] else '**no**'} |")
    lines += ["", "Each formula against the fixed formulas (paired difference in points, "
              "verdict):", "",
              "| c | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for row in rows:
        cells = []
        for n in names:
            vs = row["formulas"][n]["vs"]
            cells.append("; ".join(f"{b} {100 * d:+.1f} {v}" for b, (v, d, _) in vs.items())
                         or "no fixed formula trained")
        lines.append(f"| {row['c']:g} | " + " | ".join(cells) + " |")
    met = sum(r["within_target"] for r in rows)
    lines += ["", f"Within 1 point at {met} of {len(rows)} budgets; largest gap "
              f"{100 * max(r['gap'] for r in rows):.2f} points."]
    if len(names) > 3:
        share = triples(rows, names)
        lines += ["", f"Of the {share['groups']} groups of three of these {len(names)} formulas, "
                  "the share within 1 point of each other: "
                  + ", ".join(f"{100 * v:.0f}% at c = {r['c']:g}"
                              for v, r in zip(share["per_budget"], rows))
                  + f"; at every budget, {100 * share['every_budget']:.0f}%"
                  + (f" ({'; '.join(' '.join(g) for g in share['passing'])})."
                     if share["passing"] else ".")]
    spread_all, pairs, seeds = seed_spread(report, names)
    if pairs:
        counts = [n for n in (seeds, *MORE_SEEDS) if n >= seeds]
        chance = {n: equal_quality_chance(spread_all, n, len(names)) for n in counts}
        lines += ["", f"What the 1-point test can tell at {seeds} seeds: the per-seed top-1 "
                  f"difference between two of these formulas' distinct networks at one budget "
                  f"spreads {100 * spread_all:.2f} points (sd, root mean square over {pairs} "
                  f"pairs), so {len(names)} formulas of exactly equal quality, on distinct "
                  f"networks, land within 1 point of each other at one budget with a chance of "
                  + ", ".join(f"{chance[n]:.2f} at {n} seeds" for n in counts)
                  + f"; at all {len(rows)} budgets at once (taken as independent), "
                  + ", ".join(f"{chance[n] ** len(rows):.2f}" for n in counts) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("validation", type=Path)
    parser.add_argument("names", nargs="+", help="the formulas' names in the validation")
    parser.add_argument("--out", default="seed_agreement_validated_run")
    parser.add_argument("--title", default="Formulas from three search seeds, side by side")
    args = parser.parse_args()
    if len(args.names) < 2:
        parser.error("name at least two formulas")
    start = time.perf_counter()
    with refusing(parser):
        report = read_validation(args.validation)
        rows = spread(report, args.names)
    text = render(rows, args.names, report, args, time.perf_counter() - start)
    extra = {"triples": triples(rows, args.names)} if len(args.names) > 3 else {}
    print(text)
    from tinyformula.core.files import write_atomically

    write_atomically(RESULTS / f"{args.out}.md", text)
    write_atomically(RESULTS / f"{args.out}.json", json.dumps(
        {"validation": str(args.validation), "names": args.names, "rows": rows, **extra},
        indent=1))


if __name__ == "__main__":
    main()
