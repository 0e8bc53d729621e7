"""``tinyformula predict`` and ``tinyformula compare``: a formula's answer for budgets.

Budgets are relative (c) or absolute with a unit (``100M``), one or several a call; the
formula is a fitted ``formula.json`` or the base's built-in one, and must be in the cost the
user asks for. Helpers shared with the other handlers come from :mod:`tinyformula.commands`.
"""

from __future__ import annotations

import math
import sys

from .commands import _millions, _print_json, _print_rows
from .errors import TinyFormulaError


# -- tinyformula predict / compare ---------------------------------------------------------------

def _load_formula(args):
    from .formula import TinyFormula

    if args.formula:
        formula = TinyFormula.load(args.formula)
        if args.base and args.base != formula.base:
            raise TinyFormulaError(f"{args.formula} was fitted on {formula.base}, not {args.base}; "
                                   f"drop --base or pass a formula for {args.base}")
    else:
        formula = TinyFormula.builtin(args.base or "efficientnet_b0")
    if args.cost and args.cost != formula.cost:
        raise TinyFormulaError(
            f"{args.formula or 'the built-in formula'} was fitted with c in "
            f"{formula.yardstick.describe_cost()}, not {args.cost}: a formula answers budgets "
            f"in its own cost only; fit one with 'tinyformula fit --cost {args.cost}'")
    if formula.cost == "latency":
        from .measure import machine_description

        here = machine_description(formula.device)
        if formula.machine_ and formula.machine_ != here:
            raise TinyFormulaError(f"{args.formula} was fitted for latency on {formula.machine_}; "
                                   f"this is {here}: fit a latency formula on this machine")
    return formula


def _budget_options(args) -> dict:
    return {"num_classes": args.num_classes, "resolution_base": args.resolution_base}


UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _with_unit(amount: float) -> str:
    """An absolute amount written with the largest unit that keeps it at least 1 (250M)."""
    for unit in ("T", "G", "M", "K"):
        if amount >= UNITS[unit]:
            return f"{amount / UNITS[unit]:.4g}{unit}"
    return f"{amount:g}"


def parse_budget(text: str) -> tuple[float, bool]:
    """A budget as typed: ``(value, absolute)``. A plain number is a relative c; a number with
    a unit K, M, G or T (optionally followed by "FLOPs") is absolute FLOPs: ``100M``,
    ``1.2G``, ``500K``."""
    body = text.strip()
    if body.lower().endswith("flops"):
        body = body[:-5].strip()
    scale = UNITS.get(body[-1:].upper()) if body else None
    number = body[:-1] if scale else body
    try:
        value = float(number)
    except ValueError:
        raise TinyFormulaError(f"budget {text!r} is not a number: give a relative c (0.25) or "
                               f"FLOPs with a unit (100M, 1.2G, 500K)") from None
    if not math.isfinite(value) or value <= 0:
        raise TinyFormulaError(f"budget {text!r} must be a finite number above 0")
    return (value * scale, True) if scale else (value, False)


def _relative_budgets(formula, args) -> list[float]:
    """Each --flops value as a relative c under the formula's yardstick (with --num-classes
    and --resolution-base): absolute FLOPs / the base's FLOPs at r = d = w = 1."""
    yardstick = formula._yardstick_for(args.num_classes, args.resolution_base)
    limit = max(1.0, formula.c_range_[1])
    budgets = []
    for text in args.flops:
        value, absolute = parse_budget(text)
        if absolute:
            if yardstick.cost != "flops":
                raise TinyFormulaError(f"this formula's c is relative {yardstick.unit}, so "
                                       f"--flops {text} cannot be turned into c; give c itself")
            value = value / yardstick.reference
            if value > limit:
                raise TinyFormulaError(
                    f"--flops {text} is {value:.3g}x the {_with_unit(yardstick.reference)} "
                    f"FLOPs of {yardstick.base} at r = d = w = 1 ({yardstick.resolution_base} px, "
                    f"{yardstick.num_classes} classes); the Tiny Formula shrinks networks: give "
                    f"at most {_with_unit(limit * yardstick.reference)}")
        elif value > limit and value >= UNITS["K"]:
            raise TinyFormulaError(
                f"--flops {text} cannot be a relative budget c (c is at most {limit:g}: a "
                f"share of the base's {_with_unit(yardstick.reference)} FLOPs); for absolute "
                f"FLOPs add a unit: --flops {_with_unit(value)}")
        budgets.append(formula.check_budget(value))
    return budgets


def _warn_if_extrapolated(formula, c: float) -> None:
    if formula.is_extrapolation(c):
        lo, hi = formula.c_range_
        print(f"tinyformula: warning: c={c:g} is outside the range the formula was fitted on "
              f"({lo:.3g} to {hi:.3g}); r and d are extrapolated", file=sys.stderr)


def _warn_if_short(c: float, achieved: float, label: str = "") -> None:
    if achieved < 0.98 * c:
        print(f"tinyformula: warning: {label}no resolution within 8% and width lands within 2% "
              f"below c={c:g}; the closest is c={achieved:.4g} ({achieved / c - 1:+.1%})",
              file=sys.stderr)


def _warn_if_untrusted(formula) -> None:
    """A weak or noise formula says so on stderr, once per call."""
    from .quality import describe

    quality = formula.quality_
    if quality and quality.get("verdict") in ("weak", "noise"):
        advice = ("its r and d follow noise: do not build on them" if quality["verdict"] ==
                  "noise" else "read its r and d as rough")
        print(f"tinyformula: warning: this formula's {describe(quality)}; {advice}",
              file=sys.stderr)


def _source_note(formula) -> str:
    note = f"Formula: {formula.source or formula.base}."
    if "built-in" in formula.source:
        note += (" It is ImageNet's; a formula does not transfer across data and training "
                 "regimes, so fit your own with 'tinyformula fit'.")
    return note


def _one_or_list(items: list):
    """One budget answers one object (as before 0.2), several a list in their order."""
    return items[0] if len(items) == 1 else items


def cmd_predict(args) -> int:
    formula = _load_formula(args)
    budgets = _relative_budgets(formula, args)
    recs = [formula.recommend(c, **_budget_options(args)) for c in budgets]
    for c, rec in zip(budgets, recs):
        _warn_if_extrapolated(formula, c)
        _warn_if_short(c, rec.c)
    _warn_if_untrusted(formula)
    if args.json:
        _print_json(_one_or_list([{**rec.to_dict(), "quality": formula.quality_}
                                  for rec in recs]))
        return 0
    for c, rec in zip(budgets, recs):
        _print_recommendation(formula, args, c, rec)
    from .quality import lines

    print("\n".join(lines(formula.quality_)))
    print(_source_note(formula))
    return 0


def _print_recommendation(formula, args, c: float, rec) -> None:
    config = rec.config
    print(f"Tiny Formula for {formula.base} at c = {c:g}\n")
    rows = [
        ("r", f"{config.r:.4f}  (GP std {rec.r_std:.3f})"),
        ("d", f"{config.d:.4f}  (GP std {rec.d_std:.3f})"),
        ("w", f"{config.w:g}  (widest that fits the budget)"),
        ("resolution", f"{config.resolution} px  (int({args.resolution_base or formula.resolution_base}"
                       f" x r))"),
        ("FLOPs", _millions(config.flops)),
        ("params", _millions(config.params)),
        ("c achieved", f"{config.c:.4f}  ({config.c / c - 1:+.1%} of the budget)"),
    ]
    if rec.top1 is not None:
        rows.append(("top-1", f"about {rec.top1:.1%} +- {2 * rec.top1_std:.1%} (2 GP std; the "
                              f"frontier's, under the search's schedule)"))
    _print_rows(rows)
    print()


def cmd_compare(args) -> int:
    formula = _load_formula(args)
    pairs = []
    for c in _relative_budgets(formula, args):
        tiny = formula.recommend(c, **_budget_options(args))
        giant = formula.giant(c, **_budget_options(args))
        _warn_if_extrapolated(formula, c)
        _warn_if_short(c, tiny.c, "tiny: ")
        _warn_if_short(c, giant.c, "giant: ")
        pairs.append((c, tiny, giant))
    _warn_if_untrusted(formula)
    if args.json:
        _print_json(_one_or_list([[tiny.to_dict(), giant.to_dict()] for _, tiny, giant in pairs]))
        return 0
    for i, (c, tiny, giant) in enumerate(pairs):
        if i:
            print()
        _print_comparison(formula, c, tiny, giant)
    print("\nBoth widths are solved to land within 2% below c: the formulas differ only in the "
          "r and d they choose.\nGiant: (r, d) = (1.15^phi, 1.2^phi) with the largest phi "
          "whose (r, d, 1.1^phi) fits c.")
    print(_source_note(formula))
    return 0


def _print_comparison(formula, c: float, tiny, giant) -> None:
    t, g = tiny.config, giant.config
    print(f"Tiny Formula against EfficientNet's inverted giant formula, {formula.base} "
          f"at c = {c:g}\n")
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
