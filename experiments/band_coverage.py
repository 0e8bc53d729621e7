"""Do formula bands mean what they say? Each search's band against other seeds' formulas.

    python experiments/band_coverage.py NAME=RUN [NAME=RUN ...] [--group G ...] [--out NAME]

A formula's band is where its r(c) and d(c) would land if the search were run again (the
central ``LEVEL`` share of refits on resampled trials, ``tinyformula.formula.band``). Searches
of the same base and data at other seeds are exactly that: a rerun. For every ordered pair of
runs in a group (``--group`` gives each run's group, default one group), at c = 0.06, 0.13,
0.25, 0.5, this counts whether the other run's recommended r (and d) falls inside this run's
band. If both were independent estimates with the same spread and the band held exactly
``LEVEL`` of it, another estimate would land inside with probability
``2 Phi(z / sqrt 2) - 1`` (z the band's two-sided normal quantile): 63% for an 80% band,
because the other estimate carries its own noise. Fewer means bands too narrow; more, too wide.
No training. Writes ``experiments/results/NAME.md`` (default ``band_coverage``) and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, refusing, write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)


def expected_coverage(level: float) -> float:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return 2 * NormalDist().cdf(z / 2 ** 0.5) - 1


def pairs(group: list[tuple[str, object]]) -> list[dict]:
    rows = []
    for c in BUDGETS:
        for name, formula in group:
            band = formula.band_.at(c) if formula.band_ is not None else None
            for other_name, other in group:
                if other_name == name:
                    continue
                rec = other.recommend(c)
                row = {"c": c, "band_of": name, "other": other_name, "r": rec.r, "d": rec.d}
                if band is None:
                    row.update(r_in=None, d_in=None)
                else:
                    row.update(r_lo=band["r_lo"], r_hi=band["r_hi"], d_lo=band["d_lo"],
                               d_hi=band["d_hi"],
                               r_in=band["r_lo"] <= rec.r <= band["r_hi"],
                               d_in=band["d_lo"] <= rec.d <= band["d_hi"])
                rows.append(row)
    return rows


def share(rows: list[dict], key: str) -> tuple[int, int]:
    judged = [row[key] for row in rows if row[key] is not None]
    return sum(judged), len(judged)


def main() -> None:
    from tinyformula import TinyFormula
    from tinyformula.formula.band import LEVEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN")
    parser.add_argument("--group", nargs="*", default=[],
                        help="each run's group (a base), in the order of the runs")
    parser.add_argument("--out", default="band_coverage")
    args = parser.parse_args()
    if args.group and len(args.group) != len(args.runs):
        parser.error("--group needs one name per run")
    start, load = time.perf_counter(), os.getloadavg()[0]
    groups: dict[str, list] = {}
    for index, (name, folder) in enumerate(args.runs):
        group = args.group[index] if args.group else "all"
        with refusing(parser):
            formula = TinyFormula.load(Path(folder) / "formula.json")
        groups.setdefault(group, []).append((name, formula))
    expected = expected_coverage(LEVEL)
    lines = [f"Bands hold {LEVEL:.0%} of refits; calibrated, another seed's recommendation "
             f"lands inside {expected:.0%} of the time.", "",
             "| group | c | pairs | r inside | d inside |", "|---|---|---|---|---|"]
    data = {"level": LEVEL, "expected": expected, "groups": {}}
    totals = {"r": [0, 0], "d": [0, 0]}
    for group, members in groups.items():
        rows = pairs(members)
        data["groups"][group] = rows
        for c in (*BUDGETS, None):
            chosen = [row for row in rows if c is None or row["c"] == c]
            r_in, r_n = share(chosen, "r_in")
            d_in, d_n = share(chosen, "d_in")
            label = f"{c:g}" if c is not None else "**all**"
            lines.append(f"| {group} | {label} | {r_n} | {r_in} ({r_in / max(r_n, 1):.0%}) | "
                         f"{d_in} ({d_in / max(d_n, 1):.0%}) |")
            if c is None:
                totals["r"][0] += r_in
                totals["r"][1] += r_n
                totals["d"][0] += d_in
                totals["d"][1] += d_n
    (r_in, r_n), (d_in, d_n) = totals["r"], totals["d"]
    lines.append(f"| every group | all | {r_n} | {r_in} ({r_in / max(r_n, 1):.0%}) | "
                 f"{d_in} ({d_in / max(d_n, 1):.0%}) |")
    data["totals"] = totals
    table = "\n".join(lines)
    write_results(args.out, table, data, start, load,
                  "Do formula bands cover other seeds' formulas?")


if __name__ == "__main__":
    main()
