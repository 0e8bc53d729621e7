"""How far apart are formulas fitted on different trials of the same search? (no training)

    python experiments/seed_agreement.py --full RUN --refits DIR [--other RUN] [--out NAME]

Issue 20 asks that formulas from different search seeds agree. Training two more default
searches is out of a shared 2-core CPU's reach, so this measures what stored trials allow:

* ``halves``: the full run's candidates split by parity (each with all its trials, its
  replicate included): two searches of half the size that share nothing but the preset;
* ``other seed``: ``--other``, a search of the same preset with another seed (unfinished is
  fine: its finished trials are used), against the full run's candidates of the same indices
  (both without replicates, so the two differ only in the seed);

each refitted with both fits (``frontier``, ``surrogate``; no band, no training). Each
recommendation at c = 0.06, 0.13, 0.25, 0.5 is compared with the full run's formula of the same
fit, read from ``--refits`` (``DIR/NAME-FIT/formula.json``, written by refit_runs.py with its
band): r / d / w and px, and whether r and d fall inside the full formula's band, the bootstrap's
claim of where a rerun would land. Long-schedule top-1 is not measured here (see the results
file for the command that measures it). Prints and writes ``experiments/results/NAME.md``
(+ ``.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
FITS = ("frontier", "surrogate")


def stored(run_dir: Path):
    """The run's config and its finished trials (read only)."""
    from tinyformula import TrialStore, load_run

    run = load_run(run_dir)
    store = TrialStore.open(run_dir / "trials.sqlite", create=False)
    try:
        trials = [t for t in store.trials() if t.top1 is not None
                  and t.state.name == "OK"]
    finally:
        store.close()
    return run, trials


def recommendations(formula) -> list[dict]:
    rows = []
    for c in BUDGETS:
        try:
            rec = formula.recommend(c)
        except Exception as error:  # noqa: BLE001 - reported as unreachable
            rows.append({"c": c, "error": str(error)})
            continue
        rows.append({"c": c, "r": rec.r, "d": rec.d, "w": rec.w, "px": rec.resolution,
                     "band": rec.band, "extrapolated": rec.extrapolated})
    return rows


def subset_fit(run, trials, fit: str) -> tuple[list[dict] | str, float]:
    from tinyformula import fit_formula

    start = time.perf_counter()
    try:
        formula = fit_formula(run.config, run.yardstick, trials, fit=fit, draws=0)
    except Exception as error:  # noqa: BLE001 - a subset too thin to fit is a finding
        return str(error), time.perf_counter() - start
    return recommendations(formula), time.perf_counter() - start


def compare(entry: dict, full: dict) -> dict:
    """``entry`` against the full formula's recommendation at the same c."""
    if "error" in entry or "error" in full:
        return {"c": entry["c"], "error": entry.get("error") or full.get("error")}
    band = full["band"]
    inside = {"r": None, "d": None}
    if band:
        inside = {key: band[f"{key}_lo"] <= entry[key] <= band[f"{key}_hi"] for key in "rd"}
    return {**entry, "px_diff": entry["px"] - full["px"], "r_ratio": entry["r"] / full["r"],
            "d_ratio": entry["d"] / full["d"], "in_band": inside}


def cell(entry: dict) -> str:
    if "error" in entry:
        return "unreachable"
    text = f"{entry['r']:.2f} / {entry['d']:.2f} / {entry['w']:.2f} ({entry['px']} px)"
    inside = entry.get("in_band", {})
    if inside.get("r") is not None:
        text += "; band: " + ", ".join(f"{key} {'in' if inside[key] else 'OUT'}"
                                       for key in "rd")
    return text


def main() -> None:
    from tinyformula import TinyFormula

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", type=Path, required=True, help="a finished search")
    parser.add_argument("--refits", type=Path, required=True,
                        help="refit_runs.py's folder holding FULL-FIT/formula.json")
    parser.add_argument("--other", type=Path, help="the same preset with another search seed")
    parser.add_argument("--out", default="seed_agreement")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    run, trials = stored(args.full)
    seed = run.config.seed
    subsets = {
        "even half": (run, [t for t in trials if t.candidate % 2 == 0]),
        "odd half": (run, [t for t in trials if t.candidate % 2 == 1]),
    }
    if args.other:
        other_run, other = stored(args.other)
        other = [t for t in other if t.seed == other_run.config.seed]
        names = {t.candidate for t in other}
        subsets[f"seed {seed}, same {len(names)} candidates"] = (run, [
            t for t in trials if t.candidate in names and t.seed == seed])
        subsets[f"seed {other_run.config.seed} ({len(other)} trials)"] = (other_run, other)
    rows = []
    for fit in FITS:
        full = TinyFormula.load(args.refits / f"{args.full.name}-{fit}" / "formula.json")
        reference = recommendations(full)
        rows.append({"fit": fit, "subset": f"full ({len(trials)} trials, with its band)",
                     "trials": len(trials), "budgets": reference, "seconds": None})
        for name, (subset_run, subset) in subsets.items():
            result, seconds = subset_fit(subset_run, subset, fit)
            row = {"fit": fit, "subset": name, "trials": len(subset), "seconds": seconds}
            if isinstance(result, str):
                row["error"] = result
            else:
                row["budgets"] = [compare(e, f) for e, f in zip(result, reference)]
            rows.append(row)
            print(f"{fit} {name}: {len(subset)} trials, {seconds:.0f} s"
                  + (f" ({row['error']})" if "error" in row else ""), file=sys.stderr)
    header = ("| fit | trials | " + " | ".join(f"c = {c:g}: r / d / w (px)" for c in BUDGETS)
              + " |")
    lines = [header, "|" + "---|" * (len(BUDGETS) + 2)]
    for row in rows:
        cells = (["no formula: " + row["error"]] + [""] * (len(BUDGETS) - 1) if "error" in row
                 else [cell(entry) for entry in row["budgets"]])
        lines.append(f"| {row['fit']} | {row['subset']} | " + " | ".join(cells) + " |")
    spread = []
    for fit in FITS:
        fitted = [row for row in rows if row["fit"] == fit and "budgets" in row]
        for i, c in enumerate(BUDGETS):
            px = [row["budgets"][i]["px"] for row in fitted if "px" in row["budgets"][i]]
            inside = [row["budgets"][i].get("in_band", {}) for row in fitted[1:]]
            counts = ", ".join(f"{key} {sum(1 for v in inside if v.get(key))}" for key in "rd")
            if px:
                spread.append(f"{fit} at c = {c:g}: {min(px)}-{max(px)} px over "
                              f"{len(px)} formulas; inside the full one's band of {len(inside)}:"
                              f" {counts}")
    table = "\n".join(lines) + "\n\n" + "\n".join(f"- {line}" for line in spread)
    write_results(args.out, table, rows, start, load)


if __name__ == "__main__":
    main()
