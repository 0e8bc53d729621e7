"""``tinyformula predict``: the configuration a formula gives for one or more budgets."""

from __future__ import annotations

from .formulas import (
    add_formula_arguments,
    budget_options,
    budget_rows,
    load_formula_for,
    one_or_list,
    relative_budgets,
    source_note,
    warn_if_extrapolated,
    warn_if_short,
    warn_if_untrusted,
)
from .output import millions, multiplier, print_json, print_rows

DESCRIPTION = ("r and d from the formula's Gaussian processes at budget c, the width w solved so "
               "the network lands within 2% below c (never above), with its resolution, FLOPs "
               "and parameters; for a formula fitted by 'tinyformula fit', also the expected "
               "top-1 (under that search's schedule) and the formula's quality report, with a "
               "warning on stderr when it is weak or noise. Without --formula, the built-in "
               "formula of --base, fitted on the published TinyNet A-E (ImageNet).")


def register(sub) -> None:
    p = sub.add_parser("predict", help="the configuration the Tiny Formula gives for a budget",
                       description=DESCRIPTION,
                       epilog="examples: tinyformula predict --budget 0.25; "
                              "tinyformula predict --budget 0.06 0.13 100M; "
                              "tinyformula predict --formula runs/smoke/formula.json "
                              "--budget 100M --resolution-base 224")
    add_formula_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    """Each budget is answered on its own: one the formula cannot reach says why (on stdout,
    and as ``error`` in --json) and the others are still answered; exit status 2 only when
    none could be."""
    from ..core.errors import TinyFormulaError

    formula = load_formula_for(args)
    budgets = relative_budgets(formula, args)
    recs: list = []
    for _, c in budgets:
        try:
            recs.append(formula.recommend(c, **budget_options(args)))
        except TinyFormulaError as error:
            if len(budgets) == 1:
                raise
            recs.append(error)
    if all(isinstance(rec, TinyFormulaError) for rec in recs):
        raise recs[0]
    for (_, c), rec in zip(budgets, recs):
        warn_if_extrapolated(formula, c)
        if not isinstance(rec, TinyFormulaError):
            warn_if_short(c, rec.c)
    warn_if_untrusted(formula)
    yardstick = formula.yardstick_for(args.num_classes, args.resolution_base)
    if args.json:
        print_json(one_or_list([
            {**({"formula": "tiny", "budget": c, "error": str(rec)}
                if isinstance(rec, TinyFormulaError) else rec.to_dict()),
             **budget_record(yardstick, budget), "quality": formula.quality_,
             "validation": getattr(formula, "validation_", None)}
            for (budget, c), rec in zip(budgets, recs)]))
        return 0
    for (budget, c), rec in zip(budgets, recs):
        if isinstance(rec, TinyFormulaError):
            print(f"Tiny Formula for {formula.base} at {budget.describe()}: unreachable: "
                  f"{rec}\n")
        else:
            _print_recommendation(formula, yardstick, budget, c, rec)
    from ..formula.quality import lines
    from ..formula.validation import describe

    print("\n".join(lines(formula.quality_,
                          validated=bool(getattr(formula, "validation_", None)))))
    if formula.quality_ or getattr(formula, "validation_", None):  # a search's formula
        print(describe(getattr(formula, "validation_", None)))
    print(source_note(formula))
    return 0


def budget_record(yardstick, budget) -> dict:
    """The JSON keys that convert c and absolute amounts: the budget as typed, the cost and
    its unit, what c = 1 is and where it is counted."""
    return {"budget_as_typed": budget.text, "cost": yardstick.cost, "unit": yardstick.unit,
            "reference": yardstick.reference, "resolution_base": yardstick.resolution_base,
            "num_classes": yardstick.num_classes}


def _print_recommendation(formula, yardstick, budget, c: float, rec) -> None:
    config = rec.config
    print(f"Tiny Formula for {formula.base} at {budget.describe()}"
          + ("" if budget.relative else f" (c = {c:.4g})")
          + f", counting {yardstick.describe_cost()}\n")
    rows = budget_rows(yardstick, budget, c) + [
        ("r", f"{multiplier(config.r)}  (GP std {rec.r_std:.3f})"),
        ("d", f"{multiplier(config.d)}  (GP std {rec.d_std:.3f})"),
        ("w", f"{multiplier(config.w)}  (widest that fits the budget)"),
        ("resolution", f"{config.resolution} px  (int({yardstick.resolution_base} x r); "
                       f"{yardstick.num_classes} classes)"),
        ("FLOPs", f"{millions(config.flops)}  (= multiply-adds)"),
        ("params", millions(config.params)),
        ("achieved", f"c = {config.c:.4f} = "
                     f"{yardstick.meter.format(config.c * yardstick.reference)}"
                     f"  ({config.c / c - 1:+.1%} of the budget)"),
    ]
    if rec.top1 is not None:
        extrapolated = "; extrapolated" if rec.extrapolated else ""
        along = ("the surrogate's best path" if getattr(formula, "method", None) == "surrogate"
                 else "the frontier's")
        rows.append(("top-1", f"about {rec.top1:.1%} +- {200 * rec.top1_std:.1f} pp (2 std of one "
                              f"training: the seed noise and the GP's uncertainty; "
                              f"{along}, under the search's schedule{extrapolated})"))
    if rec.band is not None:
        band = rec.band
        rows.append(("band", f"r {band['r_lo']:.3f}-{band['r_hi']:.3f}, d {band['d_lo']:.3f}-"
                             f"{band['d_hi']:.3f} (80% of refits on resampled trials; "
                             f"{getattr(formula, 'method', 'frontier')} fit)"))
        rows.append(("band's cost", f"about {100 * band['top1_cost']:.1f} pp top-1 expected "
                                    f"lost to that uncertainty (under the search's schedule)"))
    print_rows(rows)
    print()
