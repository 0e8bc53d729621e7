"""Does "resolution and depth before width" hold on a modern base? Formulas of finished default
searches on different bases, side by side.

    python experiments/base_formulas.py RUN_DIR[@N] [RUN_DIR[@N] ...] [--out NAME] [--note TEXT]
        [--keep RUN_DIR ...]

For each finished run folder (read only, nothing is trained): the base, the search's size and
noise, the formula's (r, d, w) at c = 0.06, 0.13, 0.25, 0.5, and how the shrinking is shared
out. The share of a dimension at budget c is its part of log c in the cost model
``c ~ r^2 d w^2`` (2 log r / log c, log d / log c, 2 log w / log c; they need not add up to 1:
fixed parts of a network, its classifier, the rounding of widths): TinyNet's finding,
"resolution and depth before width", is a w share above the r and d shares (width shrinks
first; resolution and depth are kept). The frontier's own slopes (least squares of log r, log
d, log w on log c over the Pareto frontier) say the same without the GPs. Writes
``experiments/results/NAME.md`` and ``.json`` (default ``base_formulas``).

``--keep RUN_DIR`` keeps that run's summary from the existing ``NAME.json`` as it was measured
(for a run folder no longer at hand), marked as kept, ahead of the runs read now.
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

BUDGETS = (0.06, 0.13, 0.25, 0.5)


def slope(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return None if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def _frontier(trials, seed: int):
    """The Pareto frontier (lower c, higher top-1) of the ok trials of ``seed``, by c."""
    ok = trials[(trials["status"] == "ok") & (trials["seed"] == seed)].sort_values(
        ["c", "top1"], ascending=[True, False])
    return ok[ok["top1"] > ok["top1"].cummax().shift(fill_value=-1.0)]


def summarise(run_dir: str, first: int | None = None) -> dict:
    """A run's formula and frontier. ``first``: only the trials with id < first (the first
    ones the search ran), and the formula refitted on them in memory; a run without a formula
    (an unfinished search) is refitted on its finished trials. Nothing is written."""
    from tinyformula import TrialStore, fit_formula, load_run

    run = load_run(run_dir)
    formula, trials, frontier, spread = run.formula, run.trials, run.frontier, run.seed_spread
    partial = None
    if first is not None or formula is None:
        store = TrialStore.open(Path(run_dir) / "trials.sqlite", create=False)
        try:
            stored, config, yardstick = store.trials(), store.config(), store.yardstick()
        finally:
            store.close()
        kept = [t for t in stored if t.state.value != "pending"
                and (first is None or t.id < first)]
        formula = fit_formula(config, yardstick, kept)
        trials = trials[trials["id"].isin({t.id for t in kept})]
        frontier = _frontier(trials, config.seed)
        spread = {} if len({t.seed for t in kept}) < 2 else spread
        partial = (f"refitted here on {len(kept)} of the run's {len(stored)} trials "
                   f"({'ids below ' + str(first) if first is not None else 'those finished'}); "
                   f"nothing written")
    budgets = []
    for c in BUDGETS:
        try:
            rec = formula.recommend(c).config
        except Exception as error:  # an unreachable budget is a finding, not a crash
            budgets.append({"c": c, "error": str(error)})
            continue
        log_c = math.log(rec.c)
        budgets.append({"c": c, "achieved": rec.c, "r": rec.r, "d": rec.d, "w": rec.w,
                        "resolution": rec.resolution,
                        "share_r": 2 * math.log(rec.r) / log_c,
                        "share_d": math.log(rec.d) / log_c,
                        "share_w": 2 * math.log(rec.w) / log_c})
    log_c = [math.log(v) for v in frontier["c"]]
    slopes = {k: slope(log_c, [math.log(v) for v in frontier[k]]) for k in ("r", "d", "w")}
    quality = formula.quality_ or {}
    return {"run": str(run_dir), "base": run.config.base, "data": run.config.data,
            "preset": run.config.preset, "seed": run.config.seed,
            "trials": int(len(trials)), "ok": int((trials["status"] == "ok").sum()),
            "best_top1": float(trials["top1"].max()),
            "frontier": frontier[["c", "r", "d", "w", "resolution", "top1"]].to_dict("records"),
            "seed_spread": spread, "partial": partial, "verdict": quality.get("verdict"),
            "c_range": list(formula.c_range_), "budgets": budgets, "frontier_slopes": slopes}


def table(summary: dict) -> list[str]:
    lines = [f"### {summary['base']} ({summary['run']})", "",
             f"{summary['trials']} trials ({summary['ok']} ok), {summary['preset']} preset on "
             f"{summary['data']}, seed {summary['seed']}; best top-1 "
             f"{summary['best_top1']:.1%}; frontier of {len(summary['frontier'])} points over c = "
             f"{summary['c_range'][0]:.3g}..{summary['c_range'][1]:.3g}; seed-to-seed noise "
             f"{(summary['seed_spread'] or {}).get('mean_abs_diff', float('nan')):.1%}; verdict: "
             f"{summary['verdict']}." + (f" Formula {summary['partial']}." if summary.get(
                 "partial") else "") + (f" {summary['kept']}" if summary.get("kept") else ""),
             "",
             "| c | r | d | w | px | r share | d share | w share |",
             "|---|---|---|---|---|---|---|---|"]
    for b in summary["budgets"]:
        if "error" in b:
            lines.append(f"| {b['c']:g} | unreachable: {b['error'][:80]} | | | | | | |")
            continue
        lo, hi = summary["c_range"]
        outside = "" if lo <= b["c"] <= hi else " (extrapolated)"
        lines.append(f"| {b['c']:g}{outside} | {b['r']:.3f} | {b['d']:.3f} | {b['w']:.3f} | "
                     f"{b['resolution']} | {b['share_r']:.2f} | {b['share_d']:.2f} | "
                     f"{b['share_w']:.2f} |")
    s = summary["frontier_slopes"]
    lines += ["", "Frontier slopes d log x / d log c: " + ", ".join(
        f"{k} {v:.2f}" if v is not None else f"{k} -" for k, v in s.items()), ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders; RUN_DIR@N: only its trials with "
                        "id < N (the first N it ran), the formula refitted on them")
    parser.add_argument("--out", default="base_formulas")
    parser.add_argument("--note", default="", help="a paragraph to add (how the runs were made)")
    parser.add_argument("--keep", nargs="+", default=[], metavar="RUN_DIR",
                        help="runs whose summaries are kept from the existing NAME.json as "
                             "measured (their folders need not exist)")
    args = parser.parse_args()
    start = time.perf_counter()
    summaries = []
    if args.keep:
        saved = RESULTS / f"{args.out}.json"
        earlier = json.loads(saved.read_text()) if saved.exists() else []
        for run in args.keep:
            found = [s for s in earlier if s["run"] == run and not s.get("partial")]
            if not found:
                raise SystemExit(f"{saved} holds no whole summary of {run}")
            kept = dict(found[0])
            kept.setdefault("kept", "Kept as measured in an earlier report of this script "
                                    "(the run folder is not read again).")
            summaries.append(kept)
    for run in args.runs:
        folder, _, first = run.partition("@")
        summaries.append(summarise(folder, int(first) if first else None))
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summaries, indent=1) + "\n")
    lines = ["# Formulas of default searches on different bases", "",
             provenance(["experiments/base_formulas.py"] + sys.argv[1:],
                        time.perf_counter() - start), ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["Shares: each dimension's part of log c under c ~ r^2 d w^2 (see the script's "
              "docstring); a w share above the r and d shares is TinyNet's \"resolution and "
              "depth before width\".", ""]
    for summary in summaries:
        lines += table(summary)
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
