"""``tinyformula compare``: a formula's configuration beside the inverted giant formula's."""

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
from .output import print_json

DESCRIPTION = ("The Tiny Formula's configuration beside EfficientNet's inverted compound (giant) "
               "formula at equal FLOPs: both widths are solved to land within 2% below c, so the "
               "two differ only in the r and d they choose.")


def register(sub) -> None:
    p = sub.add_parser("compare", help="Tiny Formula against the inverted giant formula",
                       description=DESCRIPTION,
                       epilog="examples: tinyformula compare --flops 0.25; "
                              "tinyformula compare --flops 0.06 0.13 100M")
    add_formula_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    formula = load_formula_for(args)
    pairs = []
    for c in relative_budgets(formula, args):
        tiny = formula.recommend(c, **budget_options(args))
        giant = formula.giant(c, **budget_options(args))
        warn_if_extrapolated(formula, c)
        warn_if_short(c, tiny.c, "tiny: ")
        warn_if_short(c, giant.c, "giant: ")
        pairs.append((c, tiny, giant))
    warn_if_untrusted(formula)
    if args.json:
        print_json(one_or_list([[tiny.to_dict(), giant.to_dict()] for _, tiny, giant in pairs]))
        return 0
    for i, (c, tiny, giant) in enumerate(pairs):
        if i:
            print()
        _print_comparison(formula, c, tiny, giant)
    print("\nBoth widths are solved to land within 2% below c: the formulas differ only in the "
          "r and d they choose.\nGiant: (r, d) = (1.15^phi, 1.2^phi) with the largest phi "
          "whose (r, d, 1.1^phi) fits c.")
    print(source_note(formula))
    return 0


def _print_comparison(formula, c: float, tiny, giant) -> None:
    t, g = tiny.config, giant.config
    print(f"Tiny Formula against EfficientNet's inverted giant formula, {formula.base} "
          f"at c = {c:g} ({formula.yardstick.describe_cost()})\n")
    rows = [("", "tiny", "giant"),
            ("r", f"{t.r:.4f}", f"{g.r:.4f}"),
            ("d", f"{t.d:.4f}", f"{g.d:.4f}"),
            ("w", f"{t.w:g}", f"{g.w:g}"),
            ("phi", "", f"{giant.phi:.3f}"),
            ("resolution", f"{t.resolution} px", f"{g.resolution} px"),
            ("FLOPs", f"{t.flops / 1e6:,.2f} M", f"{g.flops / 1e6:,.2f} M"),
            ("params", f"{t.params / 1e6:,.2f} M", f"{g.params / 1e6:,.2f} M"),
            ("c achieved", f"{t.c:.4f}", f"{g.c:.4f}")]
    for label, a, b in rows:
        print(f"{label:<12}{a:>12}{b:>12}")

