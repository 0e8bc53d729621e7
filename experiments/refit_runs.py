"""Refit finished searches with every fit, post hoc, and compare the formulas and their bands.

    python experiments/refit_runs.py RUN_DIR [RUN_DIR ...] --into DIR [--out NAME]

Each run folder is copied (read, never written) to ``DIR/NAME-FIT/`` for each fit
(``frontier``, ``surrogate``) and its formula refitted there on the stored trials, with its
band (32 resamples) and quality report: no training. The copies are run folders that
``tinyformula validate`` (or ``predict``, ``plot``) takes as they are. Prints and writes
``experiments/results/NAME.md`` (default ``refits``): per run and fit, the recommendation at
c = 0.06, 0.13, 0.25, 0.5 (r / d / w, px), the band of r and d there with its top-1 cost, the
verdict and the seconds the fit took.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
FITS = ("frontier", "surrogate")
COPIED = ("trials.sqlite", "trials.csv", "frontier.csv")


def refit(run_dir: Path, into: Path, fit: str) -> tuple[Path, dict]:
    """Copy ``run_dir`` to ``into/NAME-FIT`` and refit its formula there."""
    from tinyformula import TrialStore, fit_formula, load_run

    target = into / f"{run_dir.name}-{fit}"
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, target / name)
    run = load_run(target)
    store = TrialStore.open(target / "trials.sqlite", create=False)
    try:
        trials = store.trials()
    finally:
        store.close()
    planned = run.config.trials
    trials = [t for t in trials if t.candidate < planned or t.candidate >= 1_000_000]
    start = time.perf_counter()
    formula = fit_formula(run.config, run.yardstick, trials, fit=fit)
    seconds = time.perf_counter() - start
    formula.save(target / "formula.json")
    row = {"run": run_dir.name, "fit": fit, "seconds": seconds,
           "verdict": formula.quality_["verdict"], "reasons": formula.quality_["reasons"],
           "budgets": []}
    for c in BUDGETS:
        try:
            rec = formula.recommend(c)
        except Exception as error:  # noqa: BLE001 - reported, not fatal
            row["budgets"].append({"c": c, "error": str(error)})
            continue
        row["budgets"].append({"c": c, "r": rec.r, "d": rec.d, "w": rec.w,
                               "px": rec.resolution, "band": rec.band,
                               "extrapolated": rec.extrapolated})
    return target, row


def cell(entry: dict) -> str:
    if "error" in entry:
        return "unreachable"
    text = f"{entry['r']:.2f} / {entry['d']:.2f} / {entry['w']:.2f} ({entry['px']} px)"
    band = entry["band"]
    if band:
        text += (f"; r {band['r_lo']:.2f}-{band['r_hi']:.2f}, d {band['d_lo']:.2f}-"
                 f"{band['d_hi']:.2f}, cost {band['top1_cost']:.1%}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--into", type=Path, required=True, help="folder for the refitted copies")
    parser.add_argument("--out", default="refits")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    rows = []
    for run_dir in args.runs:
        for fit in FITS:
            target, row = refit(run_dir, args.into, fit)
            rows.append(row)
            print(f"{run_dir.name} {fit}: {row['verdict']} ({row['seconds']:.0f} s) -> {target}",
                  file=sys.stderr)
    header = ("| run | fit | " + " | ".join(f"c = {c:g}: r / d / w (px); band, its top-1 cost"
                                            for c in BUDGETS) + " | verdict | fit time |")
    lines = [header, "|" + "---|" * (len(BUDGETS) + 4)]
    for row in rows:
        lines.append(f"| {row['run']} | {row['fit']} | "
                     + " | ".join(cell(entry) for entry in row["budgets"])
                     + f" | {row['verdict']} | {row['seconds']:.0f} s |")
    table = "\n".join(lines)
    write_results(args.out, table, rows, start, load)


if __name__ == "__main__":
    main()
