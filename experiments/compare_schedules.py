"""Full, halving and two-stage searches at equal training compute: what each cost and found.

    python experiments/compare_schedules.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--out NAME]

For each finished run folder: its schedule, candidates, trials, training compute (images,
images x FLOPs, worker-seconds) and wall time (first trial start to last trial end, from the
store), the top rung's frontier, and its formula at c = 0.06, 0.13, 0.25, 0.5. Every trial in
the store counts, including any the formula was not fitted on (a second stage read back
shorter than it was planned). The formulas' validated scores side by side come from
``seed_agreement_validated.py`` on a validation that trained them. No training. Writes
``experiments/results/NAME.md`` (default ``schedules``) and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)


def describe(name: str, run_dir: Path) -> dict:
    from tinyformula import load_run

    run = load_run(run_dir)
    trials = run.trials
    done = trials[trials["status"] != "pending"]
    start = (done["finished_at"] - done["seconds"]).min()
    compute = run.fidelity["compute"]
    formula = run.formula
    budgets = []
    for c in BUDGETS:
        try:
            rec = formula.recommend(c)
            budgets.append({"c": c, "r": rec.r, "d": rec.d, "w": rec.w, "px": rec.resolution,
                            "band": rec.band})
        except Exception as error:  # noqa: BLE001 - reported, not fatal
            budgets.append({"c": c, "error": str(error)})
    config = run.config
    return {"name": name, "run": str(run_dir), "schedule": config.schedule,
            "second_stage": config.second_stage, "candidates": int(
                trials[trials["seed"] == config.seed]["candidate"].nunique()),
            "trials": len(trials), "images": compute["images"],
            "image_flops": compute["image_flops"], "worker_seconds": compute["seconds"],
            "wall_seconds": float(done["finished_at"].max() - start),
            "top_rung_trials": int((trials["rung"] == config.top_rung).sum()),
            "frontier": len(run.frontier), "fit": formula.method,
            "verdict": formula.quality_["verdict"], "budgets": budgets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN_DIR")
    parser.add_argument("--out", default="schedules")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    rows = [describe(name, Path(folder)) for name, folder in args.runs]
    first = rows[0]
    lines = ["| run | schedule | candidates | trials | top-rung trials | frontier | images | "
             "images x FLOPs | worker-s | wall | fit | verdict |", "|" + "---|" * 12]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['schedule']}"
            + (f" + second stage {row['second_stage']}" if row["second_stage"] else "")
            + f" | {row['candidates']} | {row['trials']} | {row['top_rung_trials']} | "
            f"{row['frontier']} | {row['images']:,} ({row['images'] / first['images']:.0%}) | "
            f"{row['image_flops']:.3g} ({row['image_flops'] / first['image_flops']:.0%}) | "
            f"{row['worker_seconds']:,.0f} ({row['worker_seconds'] / first['worker_seconds']:.0%})"
            f" | {row['wall_seconds'] / 60:.0f} min | {row['fit']} | {row['verdict']} |")
    lines += ["", "| run | " + " | ".join(f"c = {c:g}: r / d / w (px)" for c in BUDGETS) + " |",
              "|" + "---|" * (len(BUDGETS) + 1)]
    for row in rows:
        cells = ["unreachable" if "error" in b else
                 f"{b['r']:.2f} / {b['d']:.2f} / {b['w']:.2f} ({b['px']} px)"
                 for b in row["budgets"]]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    write_results(args.out, table, rows, start, load)


if __name__ == "__main__":
    main()
