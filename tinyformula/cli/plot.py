"""``tinyformula plot``: draw a run folder's figures."""

from __future__ import annotations

from ..core.constraints import Real
from ..cost.budgets import BUDGET
from .arguments import checked
from .output import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "plot", help="draw a finished search: accuracy against FLOPs, the formula, one budget",
        description="Write three PNGs into RUN_DIR/plots and list them (a run without a "
                    "formula, unfinished or refused, gets the first and the third, and a note "
                    "on stderr): top1_vs_flops.png "
                    "(every trial's top-1 against c, the Pareto frontier, where the inverted "
                    "giant formula's configurations fall), formula_vs_c.png (r, d, w of the "
                    "frontier against c with the GP mean +-2 sigma, the solved width and the "
                    "giant formula) and top1_at_cBUDGET.png (top-1 of the trials near one "
                    "budget against their r, d and w).",
        epilog="example: tinyformula plot runs/search --budget 0.25")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder from 'tinyformula fit'")
    checked(p, "--budget", BUDGET, default=None, metavar="C",
            help="the budget of the third figure (default 0.5; a run with no trial near 0.5 "
                 "yet draws the other figures and says so)")
    checked(p, "--window", Real(1, None, closed="neither", why="1.25 means c/1.25 to c*1.25"),
            default=1.25, metavar="F",
            help="trials with c from C/F to C*F count as near the budget (default 1.25)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for the PNGs (default: RUN_DIR/plots; the run itself is only "
                        "read, so it may be on read-only storage)")
    p.add_argument("--json", action="store_true", help="print the PNGs' paths as a JSON list")
    p.set_defaults(run=run)


def run(args) -> int:
    # matplotlib is imported here, not at the top: every other command stays light.
    from ..viz.run import plot_run

    paths = plot_run(args.run_dir, budget=args.budget, window=args.window, out=args.out)
    if args.json:
        print_json([str(path) for path in paths])
    else:
        for path in paths:
            print(path)
    return 0

