"""One place that checks user-facing values, in the spirit of scikit-learn's ``_parameter_constraints``.

A constraint is declared once, next to the parameter it guards, and :func:`check` applies it::

    SEED = Integer(0, 2**63 - 1)
    seed = check("seed", value, SEED)

Every failure is a :class:`~tinyformula.errors.TinyFormulaError` naming the parameter, the
allowed range (and, where given, why), and the value received: the CLI prints it as one line
with exit status 2. Booleans are never accepted as numbers (``True`` is no trial count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import TinyFormulaError


@dataclass(frozen=True)
class Integer:
    """A whole number in ``[low, high]`` (either bound may be None: unbounded)."""

    low: int | None = None
    high: int | None = None
    why: str = ""

    def describe(self) -> str:
        if self.high is None:
            return f"a whole number of at least {self.low}" if self.low is not None \
                else "a whole number"
        if self.low is None:
            return f"a whole number of at most {self.high:,}"
        return f"a whole number from {self.low} to {self.high:,}"

    def convert(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return None
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            return None
        return value


@dataclass(frozen=True)
class Real:
    """A finite number between ``low`` and ``high``; ``closed`` says which ends are allowed
    (``"both"``, ``"left"``, ``"right"`` or ``"neither"``)."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    why: str = ""

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        if self.low is not None and self.high is not None:
            return f"a finite number in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"a finite number {'at least' if left == '[' else 'above'} {self.low:g}"
        if self.high is not None:
            return f"a finite number {'at most' if right == ']' else 'below'} {self.high:g}"
        return "a finite number"

    def convert(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            return None
        if not math.isfinite(value):
            return None
        if self.low is not None and (value < self.low or
                                     (value == self.low and self.closed in ("right", "neither"))):
            return None
        if self.high is not None and (value > self.high or
                                      (value == self.high and self.closed in ("left", "neither"))):
            return None
        return value


@dataclass(frozen=True)
class Options:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]
    why: str = ""

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def convert(self, value):
        return value if isinstance(value, str) and value in self.choices else None


def check(name: str, value, constraint, *, allow_none: bool = False):
    """``value`` converted to the constraint's type, or a one-line error naming ``name``."""
    if value is None and allow_none:
        return None
    converted = constraint.convert(value)
    if converted is None:
        why = f" ({constraint.why})" if constraint.why else ""
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise TinyFormulaError(f"{name} must be {constraint.describe()}{why}, got {shown}")
    return converted


POSITIVE_INT = Integer(1)
SEED = Integer(0, 2**63 - 1, why="torch seeds are 64-bit")
