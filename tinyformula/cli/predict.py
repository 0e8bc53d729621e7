"""``tinyformula predict``: the configuration a formula gives for one or more budgets."""

from __future__ import annotations

from .formulas import (
    add_formula_arguments,
    budget_options,
    load_formula_for,
    one_or_list,
    relative_budgets,
    source_note,
    warn_if_extrapolated,
    warn_if_short,
    warn_if_untrusted,
)
from .output import millions, print_json, print_rows

DESCRIPTION = ("r and d from the formula's Gaussian processes at budget c, the width w solved so "
               "the network lands within 2% below c (never above), with its resolution, FLOPs "
               "and parameters; for a formula fitted by 'tinyformula fit', also the expected "
               "top-1 (under that search's schedule) and the formula's quality report, with a "
               "warning on stderr when it is weak or noise. Without --formula, the built-in "
               "formula of --base, fitted on the published TinyNet A-E (ImageNet).")


def register(sub) -> None:
    p = sub.add_parser("predict", help="the configuration the Tiny Formula gives for a budget",
                       description=DESCRIPTION,
                       epilog="examples: tinyformula predict --flops 0.25; "
                              "tinyformula predict --flops 0.06 0.13 100M")
    add_formula_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    formula = load_formula_for(args)
    budgets = relative_budgets(formula, args)
    recs = [formula.recommend(c, **budget_options(args)) for c in budgets]
    for c, rec in zip(budgets, recs):
        warn_if_extrapolated(formula, c)
        warn_if_short(c, rec.c)
    warn_if_untrusted(formula)
    if args.json:
        print_json(one_or_list([{**rec.to_dict(), "quality": formula.quality_,
                                   "validation": getattr(formula, "validation_", None)}
                                  for rec in recs]))
        return 0
    for c, rec in zip(budgets, recs):
        _print_recommendation(formula, args, c, rec)
    from ..formula.quality import lines
    from ..formula.validation import describe

    print("\n".join(lines(formula.quality_)))
    if formula.quality_ or getattr(formula, "validation_", None):  # a search's formula
        print(describe(getattr(formula, "validation_", None)))
    print(source_note(formula))
    return 0


def _print_recommendation(formula, args, c: float, rec) -> None:
    config = rec.config
    print(f"Tiny Formula for {formula.base} at c = {c:g}\n")
    rows = [
        ("r", f"{config.r:.4f}  (GP std {rec.r_std:.3f})"),
        ("d", f"{config.d:.4f}  (GP std {rec.d_std:.3f})"),
        ("w", f"{config.w:g}  (widest that fits the budget)"),
        ("resolution", f"{config.resolution} px  "
                       f"(int({args.resolution_base or formula.resolution_base}"
                       f" x r))"),
        ("FLOPs", millions(config.flops)),
        ("params", millions(config.params)),
        ("c achieved", f"{config.c:.4f}  ({config.c / c - 1:+.1%} of the budget)"),
    ]
    if rec.top1 is not None:
        rows.append(("top-1", f"about {rec.top1:.1%} +- {2 * rec.top1_std:.1%} (2 GP std; the "
                              f"frontier's, under the search's schedule)"))
    print_rows(rows)
    print()

