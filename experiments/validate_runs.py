"""Validate the default preset's formulas (issue 20, items 1 and 4).

    python experiments/validate_runs.py [--runs DIR] [--work DIR] [--preset default]
                                        [--workers N] [--seeds S ...] [--budgets C ...]
                                        [--multiple M] [--fidelity K] [--baselines B ...]
                                        [--bases B ...]
                                        [--report-only]

For each base, the seed-0 default-preset run is copied from ``--runs`` (never written there)
into ``--work`` and validated with ``tinyformula.validate`` (its own formula against giant,
published, fast compound and the search's best, 4x the search's images, 3 unused seeds,
scored on Fashion-MNIST's test set). For EfficientNet-B0 the formulas of the seed-1 and
seed-2 runs are validated beside seed 0's on the same trainings (``formulas=``), to see how
far apart three searches' formulas are. A run that has not finished yet is skipped; running
the script again continues every validation where it stopped (nothing is trained twice) and
adds what has become available. ``--report-only`` trains nothing.

Writes ``experiments/results/validation.md`` (+ ``.json``, ``validation_scores.csv``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, provenance, write_csv  # noqa: E402

BASES = {"efficientnet_b0": ("s0", "s1", "s2"), "mobilenetv2_100": ("s0",)}
RUN_FILES = ("trials.sqlite", "trials.csv", "frontier.csv", "formula.json")


def run_name(base: str, seed: str) -> str:
    return f"default-{base}-{seed}"


def finished(source: Path) -> bool:
    """A search that has written its formula and closed its store (no WAL left)."""
    return (source / "formula.json").is_file() and not (source / "trials.sqlite-wal").exists()


def copy_run(source: Path, target: Path) -> Path:
    """The run's files copied once (a copy being validated keeps its validation files)."""
    if not (target / "trials.sqlite").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            shutil.copy2(source / name, target / name)
    return target


def load() -> float:
    return os.getloadavg()[0]


def validate_base(base: str, args) -> Path | None:
    """Validate the base's seed-0 run (with the other seeds' formulas when they exist)."""
    from tinyformula import validate

    seeds = [s for s in BASES[base] if finished(args.runs / run_name(base, s))]
    if "s0" not in seeds:
        print(f"{run_name(base, 's0')}: not finished yet, skipped", file=sys.stderr)
        return None
    copies = {s: copy_run(args.runs / run_name(base, s), args.work / run_name(base, s))
              for s in seeds}
    own = copies["s0"]
    formulas = ["s0=run"] + [f"{s}={copies[s] / 'formula.json'}" for s in seeds if s != "s0"]
    if not args.report_only:
        validate(own, formulas=formulas, preset=args.preset, workers=args.workers,
                 seeds=args.seeds, budgets=args.budgets, fidelity=args.fidelity,
                 baselines=args.baselines,
                 schedules=None if args.multiple is None else [args.multiple], device="cpu")
    return own if (own / "validation.json").exists() else None


def rows_of(report: dict) -> list[dict]:
    return [{"run": report["run"], **score} for score in report["scores"]]


def base_section(base: str, result) -> list[str]:
    """Per budget: the formulas' top-1, the seed-0 formula's differences and verdicts."""
    report = result.report
    main = report["by_schedule"][-1]
    noise = main["noise"]
    schedule = report["schedules"][-1]
    entries = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
    tested = "s0"
    out = [f"## {base} (run {Path(report['run']).name})", "",
           f"{schedule['images']:,} images per network ({schedule['multiple']:.3g}x the "
           f"search's {report['search_images']:,}), seeds {' '.join(map(str, report['seeds']))}"
           f", scored on {report['scored_on']}. Seed noise: one score's sd "
           f"{100 * (noise['score_sd'] or 0):.2f} points, a paired difference's sd "
           f"{100 * (noise['difference_sd'] or 0):.2f} points ({noise['difference_dof']} dof)."
           f" Quality verdict of the formula (from the search alone): "
           f"{report.get('quality_verdict', '-')}.", "",
           "| c | formula | r | d | w | px | top-1 mean ± sd (%) | s0 - this (± se) | verdict |",
           "|---" * 9 + "|"]
    for row in main["budgets"]:
        diffs = {x["baseline"]: x for x in row["comparisons"] if x["formula"] == tested}
        for cell in row["formulas"]:
            e = entries[(row["c"], cell["formula"])]
            x = diffs.get(cell["formula"])
            sd = "-" if cell["sd"] is None else f"{100 * cell['sd']:.1f}"
            diff = f"{100 * x['difference']:+.2f} ± {100 * x['se']:.2f}" if x and x["se"] \
                else ""
            out.append(f"| {row['c']:g} | {cell['formula']} | {e['r']:.3f} | {e['d']:.3f} | "
                       f"{e['w']:.3f} | {e['resolution']} | {100 * cell['mean']:.2f} ± {sd} | "
                       f"{diff} | {x['verdict'] if x else ''} |")
    out += [""]
    for b in ("giant", "fast", "published", "searched"):
        line = [(row["c"], x) for row in main["budgets"] for x in row["comparisons"]
                if x["formula"] == tested and x["baseline"] == b]
        if not line:
            continue
        wins = sum(x["verdict"] == "wins" for _, x in line)
        above = sum(x["difference"] > (noise["score_sd"] or 0) for _, x in line)
        verdicts = ", ".join(f"{c:g}: {x['verdict']}" for c, x in line)
        out.append(f"- against {b}: wins (difference > 2 se) at {wins} of {len(line)} budgets; "
                   f"ahead by more than one score's seed sd at {above} of {len(line)}; "
                   f"verdicts {verdicts}")
    falls = [f for f in main["falls"] if f["formula"] == tested]
    out.append("- falls of s0: " + ("; ".join(
        f"c = {f['c']:g} below c = {f['below']:g} by {100 * f['drop']:.2f} points"
        + (" (significant)" if f["significant"] else " (within the noise)") for f in falls)
        if falls else "none"))
    fid = report.get("fidelity") or {}
    tau, rho = fid.get("kendall_tau"), fid.get("spearman")
    out.append(f"- fidelity: {fid.get('retrained', 0)} frontier points retrained, Kendall tau "
               + ("-" if tau is None else f"{tau:+.2f}") + ", Spearman "
               + ("-" if rho is None else f"{rho:+.2f}"))
    return out


def seeds_section(result) -> list[str]:
    """The three searches' formulas side by side: their networks and long-schedule top-1."""
    report = result.report
    tested = list(report["tested"])
    if len(tested) < 2:
        return ["## Three search seeds", "", "Only the seed-0 run has finished so far."]
    main = report["by_schedule"][-1]
    entries = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
    out = ["## Three search seeds (efficientnet_b0): their formulas side by side", "",
           "| c | " + " | ".join(f"{t}: r / d / w (px)" for t in tested) + " | "
           + " | ".join(f"{t} top-1 (%)" for t in tested) + " | spread (points) |",
           "|---" * (2 * len(tested) + 2) + "|"]
    spreads = []
    for row in main["budgets"]:
        cells = {cell["formula"]: cell for cell in row["formulas"]}
        nets = []
        for t in tested:
            e = entries[(row["c"], t)]
            nets.append("-" if e.get("r") is None else
                        f"{e['r']:.3f} / {e['d']:.3f} / {e['w']:.3f} ({e['resolution']})")
        means = [cells[t]["mean"] for t in tested if t in cells]
        spread = 100 * (max(means) - min(means)) if means else None
        spreads.append(spread)
        out.append(f"| {row['c']:g} | " + " | ".join(nets) + " | "
                   + " | ".join(f"{100 * cells[t]['mean']:.2f}" if t in cells else "-"
                                for t in tested)
                   + f" | {'-' if spread is None else f'{spread:.2f}'} |")
    within = sum(s is not None and s <= 1.0 for s in spreads)
    out += ["", f"Target: long-schedule top-1 within 1 point of each other at every budget: met at "
                f"{within} of {len(spreads)} budgets."]
    pairs = [(row["c"], x) for row in main["budgets"] for x in row["comparisons"]
             if x["baseline"] in tested]
    if pairs:
        out.append("Pairwise verdicts: " + "; ".join(
            f"c = {c:g} {x['formula']} vs {x['baseline']}: {x['verdict']} "
            f"({100 * x['difference']:+.2f})" for c, x in pairs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("/work/runs"))
    parser.add_argument("--work", type=Path, default=Path("/work/runs/validate"))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="validation seeds (default: the preset's); a later call with more "
                             "seeds trains only the new ones")
    parser.add_argument("--budgets", type=float, nargs="+",
                        help="budgets c (default: the summary's four inside the run's range)")
    parser.add_argument("--multiple", type=float,
                        help="schedule as a multiple of the search's images (default: the "
                             "preset's, 4x for default)")
    parser.add_argument("--fidelity", type=int,
                        help="frontier points retrained for the fidelity (default: the preset's)")
    parser.add_argument("--baselines", nargs="+",
                        choices=("giant", "published", "fast", "searched"),
                        help="baselines to train (default: all)")
    parser.add_argument("--bases", nargs="+", choices=tuple(BASES), default=list(BASES),
                        help="which bases to validate (default: all)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    start, load_before = time.perf_counter(), load()
    from tinyformula import TinyFormula, load_validation

    sections, reports, rows = [], {}, []
    for base in args.bases:
        folder = validate_base(base, args)
        if folder is None:
            sections += [f"## {base}", "", "Not validated yet: its seed-0 run has not finished."]
            continue
        result = load_validation(folder)
        quality = TinyFormula.load(folder / "formula.json").quality_ or {}
        result.report["quality_verdict"] = quality.get("verdict")
        reports[base] = result.report
        rows += rows_of(result.report)
        sections += base_section(base, result) + [""]
        if base == "efficientnet_b0":
            sections += seeds_section(result) + [""]
    load_after = load()
    command = [Path(sys.argv[0]).name, *sys.argv[1:]]
    header = (provenance(["experiments/" + command[0], *command[1:]],
                         time.perf_counter() - start)
              + f"Load average (1 min) {load_before:.1f} before, {load_after:.1f} after; the "
                f"trainings' times are in validation.sqlite of each folder under {args.work}.\n")
    text = "\n".join(["# Validation of the default preset's formulas (issue 20)", "", header,
                      *sections])
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validation.md").write_text(text + "\n")
    (RESULTS / "validation.json").write_text(json.dumps(reports, indent=1) + "\n")
    if rows:
        write_csv(rows, RESULTS / "validation_scores.csv")


if __name__ == "__main__":
    main()
