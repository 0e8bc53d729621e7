"""Budgets: a relative cost c, checked; how an absolute amount is written with a unit; the
budgets every summary shows a formula at."""

from __future__ import annotations

import math

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError

BUDGET = Real(0, None, closed="right")
# Where summaries, figures and validation show a formula: a twentieth to a half of the base.
SUMMARY_BUDGETS = (0.06, 0.13, 0.25, 0.5)


def check_budget(c) -> float:
    """A relative budget: a finite number above 0."""
    return check("the budget c", c, BUDGET)


UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def with_unit(amount: float) -> str:
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
