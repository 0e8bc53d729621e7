"""Budgets: a relative cost c, or an absolute amount written in a cost's own unit (``100M``
FLOPs, ``1.5Mparams``, ``3ms``), turned into c under a yardstick; the budgets every summary
shows a formula at.

Each meter (:mod:`.meters`) reads and writes its own unit; this module only splits what was
typed into a number and a unit, asks the meters which cost the unit is, and says in one line
why a budget cannot be turned into c. FLOPs are fvcore's count: one multiply-add is one FLOP,
so FLOPs here are MACs (``100M``, ``100MFLOPs`` and ``100MMACs`` are the same budget). Papers
that count two FLOPs per multiply-add give twice the number: halve it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError
from .meters import METERS, PREFIXES, Meter, with_prefix

if TYPE_CHECKING:
    from .yardstick import Yardstick

BUDGET = Real(0, None, closed="right")
# Where summaries, figures and validation show a formula: a twentieth to a half of the base.
SUMMARY_BUDGETS = (0.06, 0.13, 0.25, 0.5)
UNITS = PREFIXES          # the SI prefixes of counted amounts (the name of versions up to 0.2)
with_unit = with_prefix   # a count with its SI prefix (the name of versions up to 0.2)

# How a budget is typed, for every command's --help and the docs.
BUDGET_HELP = ("a plain number is a relative c (the model's cost / the base's at r = d = w = "
               "1: 0.25 is a quarter); a number with a unit is absolute, in the formula's own "
               "cost: FLOPs or MACs with K, M, G (100M, 1.2G, 100MFLOPs, 100MMACs: FLOPs are "
               "fvcore's count, one multiply-add = one FLOP, so FLOPs here = MACs; papers "
               "counting 2 FLOPs per multiply-add give twice the number), parameters "
               "(1.5Mparams) for a --cost params formula, milliseconds (3ms) for a --cost "
               "latency formula. Absolute budgets are counted at the formula's base "
               "resolution and classes unless --resolution-base / --num-classes say otherwise "
               "(e.g. --resolution-base 224 for a model fed 224 px images)")

_TYPED = re.compile(r"^\s*(?P<number>[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?|[-+]?(inf(inity)?|nan))"
                    r"\s*(?P<unit>.*?)\s*$", re.IGNORECASE)


def check_budget(c) -> float:
    """A relative budget: a finite number above 0."""
    return check("the budget c", c, BUDGET)


@dataclass(frozen=True)
class Budget:
    """A budget as typed: ``value`` is c when ``cost`` is None, else an amount in that cost's
    unit (FLOPs, parameters, activations, ms). ``text`` is what was typed."""

    text: str
    value: float
    cost: str | None = None

    @property
    def relative(self) -> bool:
        return self.cost is None

    def describe(self) -> str:
        """The budget in words: ``c = 0.25`` or ``100M FLOPs``."""
        if self.cost is None:
            return f"c = {self.value:g}"
        return METERS[self.cost].format(self.value)


def parse_budget(text, meter: Meter | None = None, name: str = "budget") -> Budget:
    """A budget as typed (a string, or a number for c) as a :class:`Budget`.

    A plain number is a relative c. A number with a unit is an absolute amount of the cost
    whose meter reads that unit; ``meter`` (the formula's) is asked first, so a bare prefix
    such as ``100M`` is FLOPs unless the formula's own cost is another count. One line
    (:class:`TinyFormulaError`) for anything else: no number, an unknown unit, a budget not
    above 0 or not finite. ``name`` is what the messages call the value (a flag, or a
    parameter such as ``c``).
    """
    if isinstance(text, bool):
        raise TinyFormulaError(f"{name} {text!r} is not a number")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value) or value <= 0:
            raise TinyFormulaError(f"{name} {text!r} must be a finite number above 0")
        return Budget(str(text), value)
    if not isinstance(text, str):
        raise TinyFormulaError(f"{name} {text!r} is not a number or a string such as '100M'")
    match = _TYPED.match(text)
    if match is None:
        raise TinyFormulaError(f"{name} {text!r} is not a number: give a relative c (0.25) or "
                               f"an amount with a unit (100M FLOPs, 1.5Mparams, 3ms)")
    value = float(match["number"])
    unit = re.sub(r"\s+", "", match["unit"])
    if not math.isfinite(value) or value <= 0:
        raise TinyFormulaError(f"{name} {text!r} must be a finite number above 0")
    if not unit:
        return Budget(text, value)
    meters = ([meter] if meter is not None else []) + [m for m in METERS.values()
                                                        if m is not meter]
    for candidate in meters:
        factor = candidate.parse(unit, own=candidate is meter)
        if factor is not None:
            amount = value * factor
            if not math.isfinite(amount):
                raise TinyFormulaError(f"{name} {text!r} must be a finite number above 0")
            return Budget(text, amount, candidate.name)
    known = ", ".join(f"{m.unit} ({m.example})" for m in METERS.values())
    raise TinyFormulaError(f"{name} {text!r}: unknown unit {match['unit']!r}; give a relative "
                           f"c (0.25) or an amount in {known}")


def where(yardstick: Yardstick) -> str:
    """Where a yardstick counts: ``efficientnet_b0 at r = d = w = 1, 32 px, 10 classes``."""
    return (f"{yardstick.base} at r = d = w = 1, {yardstick.resolution_base} px, "
            f"{yardstick.num_classes} classes")


def reference_line(yardstick: Yardstick) -> str:
    """What c = 1 is, so c and an absolute budget convert both ways:
    ``c = 1 is 399.4M FLOPs (efficientnet_b0 at r = d = w = 1, 224 px, 1000 classes)``."""
    return f"c = 1 is {yardstick.meter.format(yardstick.reference)} ({where(yardstick)})"


def relative_budget(budget, yardstick: Yardstick, limit: float = 1.0,
                    flag: str = "--budget") -> float:
    """``budget`` (typed, a number or a :class:`Budget`) as a relative c under
    ``yardstick``: c itself, or the amount divided by the base's (``yardstick.reference``).

    Refused in one line: an amount of another cost than the yardstick's (``3ms`` for a FLOPs
    formula), an amount above ``limit`` times the base's (the line says where budgets are
    counted and how to count them elsewhere), a plain number above ``limit`` that reads as an
    amount without its unit. ``flag`` names the option in messages.
    """
    if not isinstance(budget, Budget):
        budget = parse_budget(budget, yardstick.meter, flag)
    meter = yardstick.meter
    if budget.relative:
        if budget.value > limit and budget.value >= PREFIXES["K"]:
            raise TinyFormulaError(
                f"{flag} {budget.text} cannot be a relative budget c (c is at most {limit:g}: "
                f"a share of {meter.format(yardstick.reference)}, {where(yardstick)}); for an "
                f"absolute amount add its unit: {flag} {with_prefix(budget.value)}")
        return budget.value
    if budget.cost != meter.name:
        other = METERS[budget.cost]
        raise TinyFormulaError(
            f"{flag} {budget.text} is {other.name} ({other.unit}), but this formula's c is "
            f"relative {yardstick.describe_cost()}: give c or {meter.unit} ({meter.example}); "
            f"a budget in {other.unit} needs a formula fitted with 'tinyformula fit --cost "
            f"{other.name}'")
    c = budget.value / yardstick.reference
    if c > limit:
        full = yardstick.network.default_resolution
        hint = (f". Budgets are counted at the formula's base resolution and classes; to count "
                f"this one for a model fed {full} px images, add --resolution-base {full} (and "
                f"--num-classes 1000 for ImageNet's classes; in Python resolution_base={full}, "
                f"num_classes=1000)" if yardstick.resolution_base < full else "")
        raise TinyFormulaError(
            f"{flag} {budget.text} is {c:.3g}x the {meter.format(yardstick.reference)} of "
            f"{where(yardstick)}, and the Tiny Formula shrinks networks: give at most "
            f"{meter.format(limit * yardstick.reference)}{hint}")
    return c
