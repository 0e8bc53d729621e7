"""Could the quality verdict judge fast compound scaling too? The trials' expected gain over it.

    python experiments/verdict_vs_fast.py FORMULA.json=VALIDATION.json@NAME ... [--out NAME]

The verdict (``formula/quality.py``) calls a budget trustworthy when the search's own trials
expect the formula's network to beat the inverted giant formula's by more than the band's
cost plus one seed standard deviation (rules 3). It does not look at fast compound scaling
(d = c^0.1, r = c^0.05, w solved), the other fixed formula ``validate`` trains; a formula can
win against giant and tie or lose against fast. This reads, for each formula on record, the
same surrogate of every trial the verdict reads (refitted from the run folder beside the
formula file: a search's ``trials.sqlite``, or a pool's ``pool.json``) and the top-1 it
expects the formula's network to gain over fast's at each judged budget, and sets it beside
the validated verdict against fast. Each spec is as for ``verdict_agreement.py``. No training:
about 10 s per formula. Writes ``experiments/results/NAME.md`` (default ``verdict_vs_fast``)
and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import refusing, write_results  # noqa: E402
from verdict_agreement import validated  # noqa: E402

RULE = 1.0     # gain over fast, less the band's cost, in seed standard deviations (as rules 3)


def search_of(folder: Path):
    """(config, yardstick, trials) of the search or pool in ``folder``."""
    from tinyformula.sweep.pooling import pool_searches
    from tinyformula.sweep.results import read_search

    if (folder / "pool.json").exists():
        manifest = json.loads((folder / "pool.json").read_text())
        sources = [Path(source["path"]) for source in manifest["sources"]]
        sources = [s if s.exists() else folder.parent.parent / s for s in sources]
        pool = pool_searches(sources)
        return pool.config, pool.yardstick, pool.trials
    return read_search(folder)


def rows_for(spec: str) -> list[dict]:
    from tinyformula import TinyFormula
    from tinyformula.formula.baselines import fast_compound_recommendation
    from tinyformula.formula.quality import noise_sigma
    from tinyformula.formula.surrogate import Surrogate
    from tinyformula.sweep.fitting import trial_points

    formula_path, _, rest = spec.partition("=")
    validation_path, _, name = rest.partition("@")
    name = name or "fitted"
    formula = TinyFormula.load(formula_path)
    data = json.loads(Path(formula_path).read_text())
    quality = data["quality"]
    sigma = noise_sigma(quality["seed_noise"])
    outcomes = validated(data, validation_path, name)
    config, yardstick, trials = search_of(Path(formula_path).parent)
    surrogate = Surrogate(sigma).fit(trial_points(trials))
    label = f"{Path(formula_path).parent.name}/{name}"
    rows = []
    for judged in quality["budgets"]:
        c = judged["c"]
        found = [v for budget, v in outcomes.items() if math.isclose(budget, c)]
        if judged.get("top1_cost") is None or not found or "fast" not in found[0]:
            continue
        mine, fast = formula.recommend(c), fast_compound_recommendation(yardstick, c)
        gain = None
        if surrogate.supported(mine.r, mine.d, c) and surrogate.supported(fast.r, fast.d, c):
            expected = surrogate.predict([mine.r, fast.r], [mine.d, fast.d], [c, c])
            gain = float(expected[0] - expected[1])
        verdict, difference, se = found[0]["fast"]
        rows.append({"formula": label, "c": c, "sigma": sigma,
                     "cost": judged["top1_cost"] / sigma,
                     "gain_fast": gain / sigma if gain is not None else None,
                     "verdict_then": judged["verdict"], "fast": verdict,
                     "fast_diff": difference, "se": se,
                     "giant": found[0].get("giant", (None,))[0]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("specs", nargs="+", help="FORMULA.json=VALIDATION.json@NAME")
    parser.add_argument("--out", default="verdict_vs_fast")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    with refusing(parser):
        rows = [row for spec in args.specs for row in rows_for(spec)]
    lines = ["| formula | c | sigma | cost / sigma | gain over fast / sigma | verdict then | "
             "vs fast (diff ± se) | vs giant |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gain = f"{r['gain_fast']:+.1f}" if r["gain_fast"] is not None else "cannot say"
        lines.append(f"| {r['formula']} | {r['c']:g} | {r['sigma']:.1%} | {r['cost']:.2f} | "
                     f"{gain} | {r['verdict_then']} | {r['fast']} ({r['fast_diff']:+.1%} ± "
                     f"{r['se']:.1%}) | {r['giant']} |")
    said = [r for r in rows if r["gain_fast"] is not None]
    passes = [r for r in said if r["gain_fast"] - r["cost"] >= RULE]
    fails = [r for r in said if r["gain_fast"] - r["cost"] < RULE]
    trusted = [r for r in rows if r["verdict_then"] == "trustworthy"]

    def tally(group: list[dict]) -> str:
        counts = {v: sum(r["fast"] == v for r in group) for v in ("wins", "ties", "loses")}
        return f"{len(group)}: {counts['wins']} won, {counts['ties']} tied, {counts['loses']} lost"

    lines += ["", f"Against fast, in validation, of the budgets on record ({len(rows)}; the "
              f"trials cannot say at {len(rows) - len(said)}):", "",
              f"- called trustworthy by the verdict in force (against giant): {tally(trusted)}",
              f"- gain over fast - cost >= {RULE:g} sigma: {tally(passes)}",
              f"- gain over fast - cost < {RULE:g} sigma: {tally(fails)}"]
    table = "\n".join(lines)
    write_results(args.out, table, rows, start, load,
                  "Could the verdict judge fast compound scaling too?")


if __name__ == "__main__":
    main()
