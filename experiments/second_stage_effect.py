"""What a second stage changes in a formula: each two-stage search refitted on its first stage.

    python experiments/second_stage_effect.py NAME=RUN [NAME=RUN ...]
        [--before NAME=RUN ...] [--out NAME]

For each finished two-stage run folder (``fit ... --second-stage N``): its formula as fitted
(both stages), the formula the same fit gives on the first stage's trials alone (the second
stage's candidates, numbered from ``STAGE_OFFSET``, left out), and, with ``--before``, another
run's formula shown beside it (paired in order: a search without a second stage at the same
seed, or the same search with another stage), at
c = 0.06, 0.13, 0.25, 0.5. Then the top rung's trials in 0.1 <= c <= 0.6, where the stage
moved the formulas, by resolution multiplier r: how many each stage trained and their mean
top-1. Shows whether the formulas moved because of the stage's trainings (first stage alone
vs both) or because the first stage has fewer candidates than a search without one (before
vs first stage alone). Fits only, no training: about 10 s per run. Writes
``experiments/results/NAME.md`` (default ``second_stage_effect``) and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, recommendation_cells, refusing, write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
C_RANGE = (0.1, 0.6)
R_BINS = ((0.0, 0.8), (0.8, 1.1), (1.1, 9.0))


def recommendations(formula) -> list[str]:
    return recommendation_cells(formula, BUDGETS)


def refit(run_dir: Path) -> dict:
    """The run's formula and its first stage's formula, and its top rung's trials."""
    from tinyformula import TinyFormula, TinyFormulaError, fit_formula
    from tinyformula.sweep.results import read_search
    from tinyformula.sweep.stages import STAGE_OFFSET, is_second_stage

    config, yardstick, trials = read_search(Path(run_dir))
    if not config.second_stage:
        raise TinyFormulaError(f"{run_dir} was not searched with a second stage")
    # a folder refitted with a shorter stage than it trained keeps the extra trainings: the
    # formula reads the first ``second_stage`` candidates, and so does this table
    trials = [t for t in trials if t.candidate < STAGE_OFFSET + config.second_stage]
    first = [t for t in trials if not is_second_stage(t.candidate)]
    both = TinyFormula.load(run_dir / "formula.json")
    alone = fit_formula(config, yardstick, first)
    top = [{"stage": 2 if is_second_stage(t.candidate) else 1, "r": t.config.r,
            "c": t.config.c, "top1": t.top1}
           for t in trials if t.rung == config.top_rung and t.top1 is not None]
    return {"both": both, "first": alone, "top": top,
            "stage_trials": sum(is_second_stage(t.candidate) for t in trials)}


def main() -> None:
    from tinyformula import TinyFormula

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN (two-stage searches)")
    parser.add_argument("--before", nargs="*", default=[], type=named,
                        help="NAME=RUN: formulas to show beside them, paired in order")
    parser.add_argument("--out", default="second_stage_effect")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    runs, before = args.runs, args.before
    rows, bins, data = [], [], []
    for index, (name, folder) in enumerate(runs):
        with refusing(parser):
            fitted = refit(Path(folder))
        if index < len(before):
            old_name, old_folder = before[index]
            with refusing(parser):
                old = TinyFormula.load(Path(old_folder) / "formula.json")
            rows.append((f"{old_name} (--before)", recommendations(old)))
        rows.append((f"{name}, first stage alone", recommendations(fitted["first"])))
        rows.append((f"{name}, both stages", recommendations(fitted["both"])))
        summary = {"name": name, "run": folder, "stage_trials": fitted["stage_trials"],
                   "bins": []}
        for lo, hi in R_BINS:
            cells = []
            for stage in (1, 2):
                scores = [t["top1"] for t in fitted["top"] if t["stage"] == stage
                          and lo <= t["r"] < hi and C_RANGE[0] <= t["c"] <= C_RANGE[1]]
                mean = sum(scores) / len(scores) if scores else None
                cells.append((len(scores), mean))
                summary["bins"].append({"stage": stage, "r": [lo, hi], "n": len(scores),
                                        "mean_top1": mean})
            bins.append((name, lo, hi, cells))
        data.append({**summary, "recommendations": {label: cells for label, cells in rows
                                                    if label.startswith(name)}})
    lines = ["| formula | " + " | ".join(f"c = {c:g}: r / d / w (px)" for c in BUDGETS)
             + " |", "|" + "---|" * (len(BUDGETS) + 1)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines += ["", f"Top-rung trials with {C_RANGE[0]:g} <= c <= {C_RANGE[1]:g}, by r: how "
              "many each stage trained, and their mean top-1 under the search's schedule.", "",
              "| run | r | first stage: n | mean top-1 | second stage: n | mean top-1 |",
              "|---|---|---|---|---|---|"]
    for name, lo, hi, cells in bins:
        span = f"< {hi:g}" if lo == 0 else (f">= {lo:g}" if hi > 5 else f"{lo:g}-{hi:g}")
        text = [f"{n} | {mean:.1%}" if mean is not None else f"{n} | -" for n, mean in cells]
        lines.append(f"| {name} | {span} | " + " | ".join(text) + " |")
    table = "\n".join(lines)
    write_results(args.out, table, data, start, load, "What the second stage changes in a formula")


if __name__ == "__main__":
    main()
