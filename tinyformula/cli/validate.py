"""``tinyformula validate``: check a search's formula on a longer schedule against the fixed
formulas, and print the tables."""

from __future__ import annotations

import argparse
import sys

from ..sweep.validation.config import (
    ALL_BASELINES,
    NO_BASELINES,
    VALIDATION_PRESETS,
    ValidationConfig,
)
from .arguments import checked
from .output import print_json

V = ValidationConfig.constraints


def register(sub) -> None:
    p = sub.add_parser(
        "validate", help="check a search's formula on a longer schedule against other formulas",
        description="Train, on a longer schedule than the search used and with seeds it never "
                    "used, the network each formula gives at each budget (each width solved to "
                    "the budget within 2%): the run's formula, the inverted giant formula, the "
                    "published Tiny Formula (efficientnet_b0), Dollár et al.'s fast compound "
                    "scaling, and the best network the search trained near the budget; score "
                    "them on the split the search never scored on, and say per budget whether "
                    "the formula wins, ties or loses against each (paired over seeds, against "
                    "the seed noise). Also retrains frontier points to measure the search's "
                    "fidelity. Every training is saved as it finishes: run the same command "
                    "again to resume. Writes validation.md, validation.json, validation.png "
                    "and the formula's evidence (formula.json) into --out.",
        epilog="presets: " + "; ".join(
            f"{name}: {p.multiple:g}x the search's images, {p.seeds} seeds, {p.fidelity} "
            f"frontier points retrained, {p.note}" for name, p in VALIDATION_PRESETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN", help="a finished run folder ('tinyformula fit --out')")
    checked(p, "--budgets", V["budgets"].inner.inner, nargs="+", metavar="C",
            help="relative budgets, inside the search's c range (default: 0.06 0.13 0.25 0.5, "
                 "those inside it)")
    p.add_argument("--preset", choices=list(VALIDATION_PRESETS),
                   help=f"validation size (default: {ValidationConfig.preset})")
    checked(p, "--images", V["images"], metavar="N",
            help="training images per network (default: the preset's multiple of the "
                 "search's), as many distinct as the dataset has; at least the search's")
    checked(p, "--epochs", V["epochs"], metavar="E",
            help="passes over them (alone: E passes over every training image)")
    checked(p, "--schedules", V["schedules"].inner.inner, nargs="+", metavar="M",
            help="two or more schedules, in multiples of the search's images (e.g. 2 8): "
                 "shows whether the ranking still moves; the longest decides the verdicts")
    checked(p, "--seeds", V["seeds"].inner.inner, nargs="+", metavar="S",
            help="training seeds, none the search used (default: the preset's count, from "
                 "100 on)")
    p.add_argument("--formula", action="append", dest="formulas", metavar="[NAME=]PATH",
                   help="a formula to test instead of the run's; repeat for several; 'run' "
                        "is the run's own (default: the run's, named fitted)")
    p.add_argument("--baselines", nargs="+", choices=[*ALL_BASELINES, NO_BASELINES],
                   metavar="NAME",
                   help=f"which of {', '.join(ALL_BASELINES)} to compare with, or "
                        f"{NO_BASELINES}: the tested formulas against each other only (to add "
                        f"formulas to a comparison trained before) (default: all)")
    checked(p, "--fidelity", V["fidelity"], metavar="N",
            help="frontier points retrained to measure the search's fidelity (default: the "
                 "preset's; 0: none)")
    checked(p, "--score-size", V["score_size"], metavar="N",
            help="held-out images each network is scored on (default: the preset's)")
    p.add_argument("--out", help="folder for the validation's files (default: the run folder)")
    p.add_argument("--executor", choices=["local", "dask"],
                   help="local processes or Dask distributed (default: local)")
    checked(p, "--workers", V["workers"], help="trainings at once (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="join a running Dask cluster (tcp://host:port)")
    p.add_argument("--device", metavar="DEVICE",
                   help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", default=None,
                   help="on GPUs, train eagerly instead of replaying a captured CUDA graph")
    checked(p, "--trials-per-gpu", V["trials_per_gpu"],
            help="trainings sharing one GPU at once (default: as many as fit)")
    p.add_argument("--no-plot", dest="plot", action="store_false",
                   help="do not draw validation.png")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(run=run)


SETTINGS = ("budgets", "preset", "images", "epochs", "schedules", "seeds", "baselines", "fidelity",
            "score_size", "out", "executor", "workers", "scheduler", "device", "cuda_graph",
            "trials_per_gpu")


def run(args) -> int:
    from ..sweep.validation.driver import validate

    options = {name: getattr(args, name) for name in SETTINGS}
    try:
        result = validate(args.run_dir, formulas=args.formulas, progress=not args.json, **options)
    except KeyboardInterrupt as interrupt:
        from ..core.signals import EXIT_TERMINATED, Terminated

        terminated = isinstance(interrupt, Terminated)
        print(f"tinyformula validate: {'terminated' if terminated else 'interrupted'}; every "
              f"finished training is saved in {args.out or args.run_dir}. Run the same command "
              f"again to continue.", file=sys.stderr)
        return EXIT_TERMINATED if terminated else 130
    written = [result.path / "validation.md", result.path / "validation.json"]
    if args.plot:
        from ..viz.validation import plot_validation

        written.append(plot_validation(result))
    if args.json:
        print_json(result.report)
        return 0
    print_report(result.report)
    print("\nWritten: " + ", ".join(str(p) for p in written)
          + (f", and the formula's evidence in {result.path / 'formula.json'}"
             if (result.path / "formula.json").exists() else ""))
    return 0


def print_report(report: dict) -> None:
    """The tables for a terminal (every top-1 in per cent)."""
    main = report["schedules"][-1]
    print(f"\nValidation of {report['run']} ({report['base']} on {report['data']}): "
          f"{main['images']:,} images per network ({main['multiple']:.3g}x the search's "
          f"{report['search_images']:,}), seeds {' '.join(map(str, report['seeds']))}, scored "
          f"on {report['scored_on']}.")
    for note in report["notes"]:
        print(f"note: {note}")
    configs = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
    for schedule, table in zip(report["schedules"], report["by_schedule"]):
        noise = table["noise"]
        print(f"\n{schedule['images']:,} images ({schedule['multiple']:.3g}x):", end=" ")
        if noise["difference_sd"] is None:
            print("seed noise not measured: every verdict is a tie")
        else:
            print(f"seed noise: a paired difference varies by {100 * noise['difference_sd']:.1f}"
                  f" points (sd, {noise['source']}; a noisier pair is judged on its own)")
        for t in report["tested"]:
            print(f"{'c':>6} {'formula':<12}{'r':>7}{'d':>7}{'w':>7}{'px':>5}"
                  f"{'top-1':>8}{'sd':>6}  {t + ' - this':>16}  verdict")
            for row in table["budgets"]:
                diffs = {x["baseline"]: x for x in row["comparisons"] if x["formula"] == t}
                for cell in row["formulas"]:
                    e = configs.get((row["c"], cell["formula"]), {})
                    x = diffs.get(cell["formula"])
                    sd = "-" if cell["sd"] is None else f"{100 * cell['sd']:.1f}"
                    diff = (f"{100 * x['difference']:+.1f} ± "
                            + ("-" if x["se"] is None else f"{100 * x['se']:.1f}")) if x else ""
                    print(f"{row['c']:6g} {cell['formula']:<12}{e.get('r', 0):7.3f}"
                          f"{e.get('d', 0):7.3f}{e.get('w', 0):7.3f}{e.get('resolution', 0):5d}"
                          f"{100 * cell['mean']:8.1f}{sd:>6}  {diff:>16}  "
                          f"{x['verdict'] if x else ''}")
        for fall in table["falls"]:
            if fall["formula"] in report["tested"]:
                print(f"FALL: {fall['formula']} at c = {fall['c']:g} scores "
                      f"{100 * fall['drop']:.1f} points below c = {fall['below']:g}"
                      + (" (more than 2 se)" if fall["significant"] else " (within the noise)"))
    if report.get("movement"):
        for b in report["movement"]["budgets"]:
            print(f"c = {b['c']:g}: leaders {' / '.join(x or '-' for x in b['leaders'])} "
                  f"across the schedules; {'still moving' if b['moving'] else 'settled'}")
    fid = report.get("fidelity") or {}
    if fid.get("retrained"):
        tau, rho = fid.get("kendall_tau"), fid.get("spearman")
        print(f"\nFidelity: {fid['retrained']} frontier points retrained; Kendall tau "
              + ("-" if tau is None else f"{tau:+.2f}") + ", Spearman "
              + ("-" if rho is None else f"{rho:+.2f}")
              + " between their search and validation top-1.")
