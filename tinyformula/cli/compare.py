"""``tinyformula compare``: a formula's configuration beside the inverted giant formula's."""

from __future__ import annotations

from ..core.errors import TinyFormulaError
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
from .output import multiplier, print_json
from .predict import budget_record

DESCRIPTION = ("The Tiny Formula's configuration beside EfficientNet's inverted compound (giant) "
               "formula at equal FLOPs: both widths are solved to land within 2% below c, so the "
               "two differ only in the r and d they choose.")


def register(sub) -> None:
    p = sub.add_parser("compare", help="Tiny Formula against the inverted giant formula",
                       description=DESCRIPTION,
                       epilog="examples: tinyformula compare --budget 0.25; "
                              "tinyformula compare --budget 0.06 0.13 100M")
    add_formula_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    """Each budget is answered on its own: a side that cannot reach one (the giant formula
    below its smallest network, a latency budget under the fastest candidate) says why, and
    the other side and the other budgets are still answered. Exit status 2 only when no
    budget got an answer on either side."""
    formula = load_formula_for(args)
    yardstick = formula.yardstick_for(args.num_classes, args.resolution_base)
    pairs = []
    for budget, c in relative_budgets(formula, args):
        answers = []
        for label, solve in (("tiny", formula.recommend), ("giant", formula.giant)):
            try:
                answers.append(solve(c, **budget_options(args)))
            except TinyFormulaError as error:
                answers.append(error)
        pairs.append((budget, c, *answers))
    failed = [(budget, a) for budget, _, *answers in pairs for a in answers
              if isinstance(a, TinyFormulaError)]
    if len(failed) == 2 * len(pairs):
        first_budget, first_error = failed[0]
        raise TinyFormulaError(f"neither formula reaches {first_budget.describe()}"
                               + (" (nor any other budget given)" if len(pairs) > 1 else "")
                               + f": {first_error}")
    for _, c, *answers in pairs:
        warn_if_extrapolated(formula, c)
        for label, answer in zip(("tiny: ", "giant: "), answers):
            if not isinstance(answer, TinyFormulaError):
                warn_if_short(c, answer.c, label)
    warn_if_untrusted(formula)
    if args.json:
        print_json(one_or_list([[_record(yardstick, budget, c, side, answer)
                                 for side, answer in zip(("tiny", "giant"), answers)]
                                for budget, c, *answers in pairs]))
        return 0
    for i, (budget, c, tiny, giant) in enumerate(pairs):
        if i:
            print()
        _print_comparison(formula, yardstick, budget, c, tiny, giant)
    print("\nBoth widths are solved to land within 2% below c: the formulas differ only in the "
          "r and d they choose.\nGiant: (r, d) = (1.15^phi, 1.2^phi) with the largest phi "
          "whose (r, d, 1.1^phi) fits c.")
    print(source_note(formula))
    return 0


def _record(yardstick, budget, c, side, answer) -> dict:
    extra = budget_record(yardstick, budget)
    if isinstance(answer, TinyFormulaError):
        return {"formula": side, "budget": c, "error": str(answer), **extra}
    return {**answer.to_dict(), **extra}


def _print_comparison(formula, yardstick, budget, c: float, tiny, giant) -> None:
    from .formulas import budget_rows

    print(f"Tiny Formula against EfficientNet's inverted giant formula, {formula.base} "
          f"at {budget.describe()}" + ("" if budget.relative else f" (c = {c:.4g})")
          + f", counting {yardstick.describe_cost()}\n")
    for label, value in budget_rows(yardstick, budget, c):
        print(f"{label:<12}{value}")
    print()

    def cells(read):
        return [("-" if isinstance(a, TinyFormulaError) else read(a)) for a in (tiny, giant)]

    def phi(a):
        return "" if a.phi is None else f"{a.phi:.3f}"

    meter = yardstick.meter
    rows = [("", ["tiny", "giant"]),
            ("r", cells(lambda a: multiplier(a.config.r))),
            ("d", cells(lambda a: multiplier(a.config.d))),
            ("w", cells(lambda a: multiplier(a.config.w))),
            ("phi", cells(phi)),
            ("resolution", cells(lambda a: f"{a.config.resolution} px")),
            ("FLOPs", cells(lambda a: f"{a.config.flops / 1e6:,.2f} M")),
            ("params", cells(lambda a: f"{a.config.params / 1e6:,.2f} M")),
            ("achieved", cells(lambda a: meter.format(a.config.c * yardstick.reference))),
            ("c achieved", cells(lambda a: f"{a.config.c:.4f}"))]
    if not all(isinstance(a, TinyFormulaError) for a in (tiny, giant)):
        for label, (a, b) in rows:
            print(f"{label:<12}{a:>14}{b:>14}")
    for label, answer in (("tiny", tiny), ("giant", giant)):
        if isinstance(answer, TinyFormulaError):
            print(f"{label}: unreachable: {answer}")
