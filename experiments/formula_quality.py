"""How much a search's formula can be trusted, with and without monotone GPs.

    python experiments/formula_quality.py RUN_DIR [RUN_DIR ...] [--out NAME]

Refits each finished run's formula on its own trials twice, once with unconstrained GPs (the
formula of tinyformula 0.1) and once monotone (r, d, top-1 non-decreasing in c), and reports
for each: the recommendations at c = 0.06, 0.13, 0.25, 0.5, the leave-one-out error of r, d
and top-1, whether r(c) and d(c) are non-decreasing, and the verdict. No training: seconds.
Writes ``experiments/results/NAME.md`` (default ``formula_quality``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, provenance  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)


def rows_for(run_dir: str) -> list[str]:
    from tinyformula import TrialStore, fit_formula, load_run

    run = load_run(run_dir)
    store = TrialStore.open(Path(run_dir) / "trials.sqlite", create=False)
    try:
        trials = store.trials()
    finally:
        store.close()
    rows = []
    for monotone in (False, True):
        formula = fit_formula(run.config, run.yardstick, trials, monotone=monotone)
        q = formula.quality_
        recs = []
        for c in BUDGETS:
            rec = formula.recommend(c)
            recs.append(f"{rec.r:.2f} / {rec.d:.2f} / {rec.w:.2f} ({rec.resolution} px, "
                        f"{rec.top1:.1%})")
        loo = q["loo_rmse"]
        top1 = f"{loo['top1']:.1%}" if loo["top1"] is not None else "-"
        loo_text = (f"{loo['r']:.3f} / {loo['d']:.3f} / {top1}" if loo["r"] is not None
                    else "too few points")
        shape = "".join("↑" if q["monotone"][k] else "↓" for k in ("r", "d"))
        rows.append(f"| {run_dir} | {'on' if monotone else 'off'} | " + " | ".join(recs)
                    + f" | {loo_text} | {shape} | {q['verdict']} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="formula_quality")
    args = parser.parse_args()
    start = time.perf_counter()
    header = ("| run | monotone | " + " | ".join(f"c = {c:g}: r / d / w (px, top-1)"
                                                for c in BUDGETS)
              + " | LOO RMSE r / d / top-1 | r, d non-decreasing | verdict |")
    table = [header, "|" + "---|" * (header.count("|") - 1)]
    for run in args.runs:
        table += rows_for(run)
    text = "\n".join(table)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(
        provenance(sys.argv, time.perf_counter() - start) + "\n" + text + "\n")


if __name__ == "__main__":
    main()
