"""What ``predict`` and ``compare`` share: the formula they answer from (loaded for use, with
every check), the budgets as typed (relative or absolute, one or several), and the warnings
that go with an answer."""

from __future__ import annotations

import sys

from ..core.constraints import Integer
from ..cost.budgets import BUDGET_HELP as BUDGETS_HELP
from ..cost.budgets import Budget, parse_budget, reference_line
from ..cost.yardstick import COST_NAMES
from ..nets.bases.spec import NUM_CLASSES
from .arguments import checked

BUDGET_HELP = ("one or more budgets, answered in order: " + BUDGETS_HELP + ". With several "
               "budgets, --json prints a list, one entry per budget")


def add_formula_arguments(p) -> None:
    """The flags of a command that answers budgets from a formula."""
    p.add_argument("--budget", "--flops", dest="budget", nargs="+", required=True,
                   metavar="BUDGET", help=BUDGET_HELP)
    p.add_argument("--formula", metavar="PATH",
                   help="a fitted formula file (formula.json from 'tinyformula fit'), or "
                        "zoo:BASE/DATASET for a formula of the zoo ('tinyformula zoo')")
    p.add_argument("--base", default=None,
                   help="base network, for its built-in formula (default: efficientnet_b0)")
    checked(p, "--num-classes", NUM_CLASSES, default=None,
            help="classes c is measured with (default: the formula's)")
    checked(p, "--resolution-base", Integer(1, 4096), default=None,
            help="input size at r = 1 (default: the formula's, 224 built in)")
    p.add_argument("--cost", choices=list(COST_NAMES), default=None,
                   help="the cost c is in; must be the one the formula was fitted for "
                        "(default: the formula's; flops for the built-in one)")
    p.add_argument("--json", action="store_true", help="print JSON")


def load_formula_for(args):
    """The formula of ``--formula`` (or ``--base``'s built-in one), checked for ``--base``,
    ``--cost`` and this machine."""
    from ..formula.loading import load_formula

    return load_formula(args.formula, base=args.base, cost=args.cost)


def budget_options(args) -> dict:
    return {"num_classes": args.num_classes, "resolution_base": args.resolution_base}


def relative_budgets(formula, args) -> list[tuple[Budget, float]]:
    """Each --budget as typed and as a relative c under the formula's yardstick (with
    --num-classes and --resolution-base): c itself, or the amount / the base's."""
    yardstick = formula.yardstick_for(args.num_classes, args.resolution_base)
    typed = [parse_budget(text, yardstick.meter) for text in args.budget]
    return [(budget, formula.budget_c(budget, args.num_classes, args.resolution_base,
                                      "--budget")) for budget in typed]


def budget_rows(yardstick, budget: Budget, c: float) -> list[tuple[str, str]]:
    """The budget in both units and what c = 1 is, so either converts to the other."""
    amount = yardstick.meter.format(c * yardstick.reference)
    asked = (f"c = {c:g} = {amount}" if budget.relative else
             f"{budget.describe()} = c {c:.4g}")
    return [("budget", asked), ("reference", reference_line(yardstick))]


def warn_if_extrapolated(formula, c: float) -> None:
    if formula.is_extrapolation(c):
        lo, hi = formula.c_range_
        print(f"tinyformula: warning: c={c:g} is outside the range the formula was fitted on "
              f"({lo:.3g} to {hi:.3g}); r and d are extrapolated", file=sys.stderr)


def warn_if_short(c: float, achieved: float, label: str = "") -> None:
    if achieved < 0.98 * c:
        print(f"tinyformula: warning: {label}no resolution within 8% and width lands within 2% "
              f"below c={c:g}; the closest is c={achieved:.4g} ({achieved / c - 1:+.1%})",
              file=sys.stderr)


def warn_if_untrusted(formula) -> None:
    """A weak or noise formula says so on stderr, once per call."""
    from ..formula.quality import describe

    quality = formula.quality_
    if quality and quality.get("verdict") in ("weak", "noise"):
        advice = ("its r and d follow noise: do not build on them" if quality["verdict"] ==
                  "noise" else "read its r and d as rough")
        judged: dict[str, list[str]] = {}
        for entry in quality.get("budgets", ()):
            judged.setdefault(str(entry.get("verdict")), []).append(f"{entry['c']:g}")
        if quality["verdict"] == "weak" and judged.get("weak") and judged.get("trustworthy"):
            # weak at some budgets only: say where, not "rough" everywhere
            advice = (f"read its r and d as rough near c = {', '.join(judged['weak'])} "
                      f"(trustworthy at c = {', '.join(judged['trustworthy'])})")
        print(f"tinyformula: warning: this formula's {describe(quality)}; {advice}",
              file=sys.stderr)


def source_note(formula) -> str:
    note = f"Formula: {formula.source or formula.base}."
    if "built-in" in formula.source:
        note += (" It is ImageNet's; a formula does not transfer across data and training "
                 "regimes, so fit your own with 'tinyformula fit'.")
    return note


def one_or_list(items: list):
    """One budget answers one object (as before 0.2), several a list in their order."""
    return items[0] if len(items) == 1 else items

