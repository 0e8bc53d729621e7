"""``tinyformula pool``: one formula fitted on the trials of several searches that differ only in
their seed."""

from __future__ import annotations

from ..formula.fits import DEFAULT_FIT, FITS
from .output import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "pool", help="fit one formula on several searches' trials (same search, other seeds)",
        description="Fit one formula on every trial of several finished searches that differ "
                    "only in --seed (same base, data, preset sizes, schedule and cost): the "
                    "same fits, band and quality report as a search's, from all of their "
                    "evidence; nothing is trained. Where a search's quality report calls its "
                    "formula weak, run another seed and pool the two. Writes formula.json "
                    "and pool.json (the searches pooled) into --out; check the formula with "
                    "'tinyformula validate RUN --formula pooled=OUT/formula.json', RUN one "
                    "of the searches, with seeds none of them used.",
        epilog="example: tinyformula fit --seed 1 --out runs/s1; tinyformula pool runs/s0 "
               "runs/s1 --out runs/pooled; tinyformula predict --formula "
               "runs/pooled/formula.json --flops 0.25")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="two or more finished run folders ('tinyformula fit --out')")
    p.add_argument("--out", required=True,
                   help="folder for the pooled formula (new, empty, or an earlier pool's)")
    p.add_argument("--fit", choices=FITS,
                   help=f"how the formula is fitted on the pooled trials (default: "
                        f"{DEFAULT_FIT}, as for a search)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..sweep.pooling import write_pool
    from .fit import print_summary

    log = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    summary = write_pool(args.runs, args.out, fit=args.fit, log=log)
    if args.json:
        print_json(summary)
        return 0
    seeds = ", ".join(map(str, summary["pool"]["seeds"]))
    print_summary(summary, what=f"Pool of {len(summary['pool']['sources'])} searches "
                                f"(seeds {seeds})")
    return 0
