"""Declared constraints: the one way every value a user gives is checked.

In the spirit of scikit-learn's ``_parameter_constraints`` (``utils/_param_validation.py``):
a constraint is declared once, next to the setting it guards, and :func:`check` applies it::

    SEED = Integer(0, 2**63 - 1, why="seeds are stored as 64-bit SQLite integers")
    seed = check("seed", value, SEED)

A dataclass of settings declares all of its constraints in one mapping and checks them on
construction with :func:`check_fields`::

    @dataclass(frozen=True)
    class TrainConfig:
        epochs: int = 1
        constraints: ClassVar = {"epochs": Integer(1, 1000)}

        def __post_init__(self):
            check_fields(self)

The command line parses its flags with the same constraints (:meth:`Constraint.parse`), so a
value gets the same answer from ``tinyformula fit --epochs 0`` as from ``search(epochs=0)``.
Every constraint can also say which values it refuses (:meth:`Constraint.invalid_values`, as
scikit-learn's ``generate_invalid_param_val``): the tests feed each of them to every config and
every flag and expect one line and exit status 2.

Every failure is a :class:`~tinyformula.core.errors.TinyFormulaError` naming the setting, the
allowed values (and, where given, why), and the value received. Booleans are never accepted as
numbers (``True`` is no trial count).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import TinyFormulaError

INVALID: Any = object()   # what ``convert`` returns for a value the constraint refuses


class Constraint:
    """What a value must be. Subclasses define :meth:`describe`, :meth:`convert` and
    :meth:`invalid_values`; ``why`` (optional) says what the limit protects."""

    why: str = ""

    def describe(self) -> str:
        raise NotImplementedError

    def convert(self, value):
        """The value in its canonical type, or :data:`INVALID`."""
        raise NotImplementedError

    def parse(self, text: str):
        """A command-line string as this constraint's type (before :meth:`convert`)."""
        return text

    def invalid_values(self) -> list:
        """Values this constraint must refuse (for the tests)."""
        return []


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer(Constraint):
    """A whole number in ``[low, high]`` (either bound may be None: unbounded). A float with
    an integral value (``5.0``) is accepted as that integer."""

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
        if not _is_number(value):
            return INVALID
        if isinstance(value, float):
            if not value.is_integer():
                return INVALID
            value = int(value)
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            return INVALID
        return value

    def parse(self, text: str):
        try:
            return int(text)
        except ValueError:
            try:  # "1e4": a whole number written as a float
                value = float(text)
            except ValueError:
                return text
            return value if math.isfinite(value) else text

    def invalid_values(self) -> list:
        out: list = ["7", True, 2.5, float("nan"), None]
        if self.low is not None:
            out.append(self.low - 1)
        if self.high is not None:
            out.append(self.high + 1)
        return out


@dataclass(frozen=True)
class Real(Constraint):
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
        if not _is_number(value):
            return INVALID
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            return INVALID
        if not math.isfinite(value):
            return INVALID
        if self.low is not None and (value < self.low or
                                     (value == self.low and self.closed in ("right", "neither"))):
            return INVALID
        if self.high is not None and (value > self.high or
                                      (value == self.high and self.closed in ("left", "neither"))):
            return INVALID
        return value

    def parse(self, text: str):
        try:
            return float(text)
        except ValueError:
            return text

    def invalid_values(self) -> list:
        out: list = ["abc", True, float("nan"), float("inf"), None]
        if self.low is not None:
            out.append(self.low if self.closed in ("right", "neither") else self.low - 1)
        if self.high is not None:
            out.append(self.high if self.closed in ("left", "neither") else self.high * 2 + 1)
        return out


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]
    why: str = ""

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def convert(self, value):
        return value if isinstance(value, str) and value in self.choices else INVALID

    def invalid_values(self) -> list:
        return ["no-such-choice", "", 3, None]


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or False (not 0, 1 or a string)."""

    why: str = ""

    def describe(self) -> str:
        return "True or False"

    def convert(self, value):
        return value if isinstance(value, bool) else INVALID

    def invalid_values(self) -> list:
        return [1, "yes", None]


@dataclass(frozen=True)
class OrNone(Constraint):
    """``inner``, or None (which usually means "the default")."""

    inner: Constraint
    meaning: str = "the default"

    @property
    def why(self) -> str:  # type: ignore[override]
        return self.inner.why

    def describe(self) -> str:
        return f"{self.inner.describe()}, or None for {self.meaning}"

    def convert(self, value):
        return None if value is None else self.inner.convert(value)

    def parse(self, text: str):
        return self.inner.parse(text)

    def invalid_values(self) -> list:
        return [v for v in self.inner.invalid_values() if v is not None]


@dataclass(frozen=True)
class Pair(Constraint):
    """Two values, each meeting ``inner``, the first below the second (a range LO HI)."""

    inner: Constraint
    why: str = ""

    def describe(self) -> str:
        return f"two values LO HI with LO < HI, each {self.inner.describe()}"

    def convert(self, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            return INVALID
        try:
            items = list(value)
        except TypeError:
            return INVALID
        if len(items) != 2:
            return INVALID
        lo, hi = (self.inner.convert(v) for v in items)
        if lo is INVALID or hi is INVALID or not lo < hi:
            return INVALID
        return (lo, hi)

    def invalid_values(self) -> list:
        inner = [v for v in self.inner.invalid_values() if v is not None]
        return [(1.0,), (0.5, 0.1), "ab", None] + [(v, v) for v in inner[:2]]


@dataclass(frozen=True)
class Items(Constraint):
    """One or more values (a list or tuple, at most ``most``), each meeting ``inner``, none
    repeated; converted to a tuple."""

    inner: Constraint
    most: int = 1000
    why: str = ""

    def describe(self) -> str:
        return f"one or more values, none repeated, each {self.inner.describe()}"

    def convert(self, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            return INVALID
        try:
            items = [self.inner.convert(v) for v in value]
        except TypeError:
            return INVALID
        if not 1 <= len(items) <= self.most or any(v is INVALID for v in items) \
                or len(set(items)) != len(items):
            return INVALID
        return tuple(items)

    def invalid_values(self) -> list:
        inner = [v for v in self.inner.invalid_values() if v is not None]
        return [(), "ab", None, 3] + [(v,) for v in inner[:2]]


def check(name: str, value, constraint: Constraint, *, allow_none: bool = False):
    """``value`` converted to the constraint's type, or a one-line error naming ``name``."""
    if value is None and allow_none:
        return None
    converted = constraint.convert(value)
    if converted is INVALID:
        raise TinyFormulaError(f"{name} must be {_wanted(constraint)}, got {_shown(value)}")
    return converted


def _wanted(constraint: Constraint) -> str:
    return constraint.describe() + (f" ({constraint.why})" if constraint.why else "")


def _shown(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check_fields(obj, constraints: Mapping[str, Constraint] | None = None,
                 label: str = "{name}") -> None:
    """Check (and convert) every field of the dataclass ``obj`` that its class declares in
    ``constraints`` (default: the class attribute ``constraints``), in declaration order.
    ``label`` names a field in the error: a format of ``{name}`` (``train_size``), ``{flag}``
    (``--train-size``) or ``{words}`` (``train size``)."""
    constraints = type(obj).constraints if constraints is None else constraints
    for name, constraint in constraints.items():
        shown = label.format(name=name, flag="--" + name.replace("_", "-"),
                             words=name.replace("_", " "))
        value = check(shown, getattr(obj, name), constraint)
        object.__setattr__(obj, name, value)


F = TypeVar("F", bound=Callable[..., Any])


def declared(constraints: Mapping[str, Constraint]) -> Callable[[F], F]:
    """A function's arguments checked by declared constraints, as scikit-learn's
    ``validate_params`` decorator does::

        @declared({"num_classes": OrNone(NUM_CLASSES), "seed": OrNone(SEED)})
        def create_model(base=None, num_classes=None, seed=None): ...

    Each named argument that is passed (defaults are trusted) is checked and converted before
    the function runs; the function keeps its declarations in ``.constraints`` (the tests
    feed every public function each value its constraints refuse)."""
    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__name__} has no parameter(s) {sorted(unknown)}")

        @functools.wraps(function)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name, constraint in constraints.items():
                if name in bound.arguments:
                    bound.arguments[name] = check(name, bound.arguments[name], constraint)
            return function(*bound.args, **bound.kwargs)

        checked.constraints = dict(constraints)  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate


def parser_for(constraint: Constraint, flag: str):
    """An argparse ``type=`` that parses a flag's text with ``constraint``: the flag is
    checked by the same declaration as the setting it fills."""
    import argparse

    typed = constraint.inner if isinstance(constraint, OrNone) else constraint  # no None here

    def parse(text: str):
        try:
            return check(flag, typed.parse(text), typed)
        except TinyFormulaError as error:
            raise argparse.ArgumentTypeError(str(error).replace(f"{flag} ", "", 1)) from None

    parse.__name__ = flag  # argparse names the type in "invalid ... value" messages
    parse.constraint = constraint  # type: ignore[attr-defined]
    return parse


POSITIVE_INT = Integer(1)
SEED = Integer(0, 2**63 - 1, why="seeds are stored as 64-bit SQLite integers")
COUNT_LIMIT = 100_000_000
COUNT = Integer(1, COUNT_LIMIT, why="no dataset or schedule here needs more")
