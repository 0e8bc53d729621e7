"""Declared schemas for the files the toolkit reads: every field, nested ones included, and
every number checked for its range before anything uses it.

A schema is a :class:`~.constraints.Constraint` made of constraints, declared once beside the
file format it describes, in the style of the settings' constraints::

    UNIT = Record({"p10_ms": Real(0, 1e6, closed="neither"), "reps": Integer(1)},
                  optional={"flops": OrNone(Integer(0))})
    TABLE = Record({"units": MapOf(UNIT), "calibrations": MapOf(CALIBRATION)})
    body = validate(data, TABLE, origin="latency table x.json")

:func:`validate` returns the value converted (numbers in their canonical types) or raises one
:class:`~.errors.TinyFormulaError` naming the file, the field's path (``units.k3.p10_ms``),
what it must be and what it is. A checksum proves only that a file was not changed by
accident: a file edited with care (or written by another program) passes it, so every reader
validates after verifying.

Every schema can also make malformed versions of a valid value (:func:`mutations`: each field
left out, and each replaced by every value its constraint refuses), which the tests feed to
every reader of every file kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .constraints import INVALID, Constraint, OrNone, check
from .errors import TinyFormulaError


class SchemaError(TinyFormulaError):
    """A value that does not fit its schema; ``path`` names the field (``a.b[2].c``)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path} {message}" if path else message)
        self.path = path
        self.detail = message


class Compound(Constraint):
    """A constraint over a structure: :meth:`validated` raises with the failing path."""

    def validated(self, value, path: str = ""):
        raise NotImplementedError

    def convert(self, value):
        try:
            return self.validated(value)
        except SchemaError:
            return INVALID

    def mutate(self, value, path: str) -> Iterator[tuple[str, Any]]:
        """(path, malformed copy of ``value``) pairs; ``value`` is valid."""
        for bad in self.invalid_values():
            yield path or "(whole)", bad


def _at(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _leaf(value, constraint: Constraint, path: str):
    if isinstance(constraint, OrNone) and isinstance(constraint.inner, Compound):
        return None if value is None else constraint.inner.validated(value, path)
    if isinstance(constraint, Compound):
        return constraint.validated(value, path)
    try:
        return check(path or "value", value, constraint)
    except SchemaError:
        raise
    except TinyFormulaError as error:
        message = str(error)
        prefix = f"{path or 'value'} "
        raise SchemaError(path, message[len(prefix):] if message.startswith(prefix)
                          else message) from None


@dataclass(frozen=True)
class Anything(Compound):
    """Any value (a field whose content another reader checks)."""

    why: str = ""

    def describe(self) -> str:
        return "anything"

    def validated(self, value, path: str = ""):
        return value

    def invalid_values(self) -> list:
        return []


@dataclass(frozen=True)
class Number(Compound):
    """Any int or float (not a bool), nan included: a statistic that may be undefined."""

    why: str = ""

    def describe(self) -> str:
        return "a number"

    def validated(self, value, path: str = ""):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, f"must be a number, got {_shown(value)}")
        return value

    def invalid_values(self) -> list:
        return ["1", None, [1.0], True]


@dataclass(frozen=True)
class Text(Compound):
    """A string of at most ``max_length`` characters (at least one unless ``empty``)."""

    max_length: int = 10_000
    empty: bool = True
    why: str = ""

    def describe(self) -> str:
        return f"text of at most {self.max_length:,} characters" + \
            ("" if self.empty else ", not empty")

    def validated(self, value, path: str = ""):
        if not isinstance(value, str) or len(value) > self.max_length \
                or (not self.empty and not value):
            raise SchemaError(path, f"must be {self.describe()}, got {_shown(value)}")
        return value

    def invalid_values(self) -> list:
        return [3, None, ["text"], "x" * (self.max_length + 1)] + ([] if self.empty else [""])


@dataclass(frozen=True)
class Record(Compound):
    """A JSON object with ``fields`` (required) and ``optional`` ones; keys it does not
    declare are kept as they are (files from newer versions may add some)."""

    fields: Mapping[str, Constraint]
    optional: Mapping[str, Constraint] = field(default_factory=dict)
    why: str = ""

    def describe(self) -> str:
        return "an object with " + ", ".join(self.fields) if self.fields else "an object"

    def validated(self, value, path: str = ""):
        if not isinstance(value, Mapping):
            raise SchemaError(path, f"must be an object, got {_shown(value)}")
        out = dict(value)
        for name, constraint in self.fields.items():
            if name not in value:
                raise SchemaError(_at(path, name), "is missing")
            out[name] = _leaf(value[name], constraint, _at(path, name))
        for name, constraint in self.optional.items():
            if name in value:
                out[name] = _leaf(value[name], constraint, _at(path, name))
        return out

    def invalid_values(self) -> list:
        return [None, "text", [1, 2], 7]

    def mutate(self, value, path: str) -> Iterator[tuple[str, Any]]:
        yield from super().mutate(value, path)
        for name, constraint in {**self.fields, **self.optional}.items():
            if name not in value:
                continue
            where = _at(path, name)
            if name in self.fields:
                yield where + " (missing)", {k: v for k, v in value.items() if k != name}
            for sub, bad in mutations(constraint, value[name], where):
                yield sub, {**value, name: bad}


@dataclass(frozen=True)
class ListOf(Compound):
    """A list of ``min_length`` to ``max_length`` items, each meeting ``item``."""

    item: Constraint
    min_length: int = 0
    max_length: int = 1_000_000
    why: str = ""

    def describe(self) -> str:
        return f"a list of {self.min_length} to {self.max_length:,} items"

    def validated(self, value, path: str = ""):
        if not isinstance(value, (list, tuple)):
            raise SchemaError(path, f"must be a list, got {_shown(value)}")
        if not self.min_length <= len(value) <= self.max_length:
            raise SchemaError(path, f"must be {self.describe()}, got {len(value):,}")
        return [_leaf(item, self.item, _at(path, i)) for i, item in enumerate(value)]

    def invalid_values(self) -> list:
        out: list = [None, "text", {"a": 1}]
        if self.min_length:
            out.append([])
        return out

    def mutate(self, value, path: str) -> Iterator[tuple[str, Any]]:
        yield from super().mutate(value, path)
        if value:
            for sub, bad in mutations(self.item, value[0], _at(path, 0)):
                yield sub, [bad, *value[1:]]
        if len(value) < self.max_length and self.item.convert(None) is INVALID:
            yield _at(path, len(value)), [*value, None]


@dataclass(frozen=True)
class MapOf(Compound):
    """A JSON object whose keys are names (``keys``) and whose values each meet ``item``."""

    item: Constraint
    keys: Constraint = Text(max_length=1000)
    max_length: int = 10_000_000
    why: str = ""

    def describe(self) -> str:
        return "an object of named entries"

    def validated(self, value, path: str = ""):
        if not isinstance(value, Mapping):
            raise SchemaError(path, f"must be an object, got {_shown(value)}")
        if len(value) > self.max_length:
            raise SchemaError(path, f"must have at most {self.max_length:,} entries")
        return {_leaf(key, self.keys, path): _leaf(item, self.item, _at(path, key))
                for key, item in value.items()}

    def invalid_values(self) -> list:
        return [None, [1], "text"]

    def mutate(self, value, path: str) -> Iterator[tuple[str, Any]]:
        yield from super().mutate(value, path)
        if value:
            key = next(iter(value))
            for sub, bad in mutations(self.item, value[key], _at(path, key)):
                yield sub, {**value, key: bad}


@dataclass(frozen=True)
class OneOf(Compound):
    """A value meeting any of ``options`` (the first that accepts it converts it)."""

    options: tuple[Constraint, ...]
    why: str = ""

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)

    def validated(self, value, path: str = ""):
        for option in self.options:
            try:
                return _leaf(value, option, path)
            except TinyFormulaError:
                continue
        raise SchemaError(path, f"must be {self.describe()}, got {_shown(value)}")

    def invalid_values(self) -> list:
        candidates = [v for option in self.options for v in option.invalid_values()]
        return [v for v in candidates if self.convert(v) is INVALID][:6]


def validate(value, schema: Constraint, origin: str, advice: str = "") -> Any:
    """``value`` checked (and converted) against ``schema``, or one line: ``origin is
    damaged (path must be ..., got ...)`` and the ``advice``."""
    try:
        return _leaf(value, schema, "")
    except TinyFormulaError as error:
        text = f"{origin} is damaged ({error})"
        raise TinyFormulaError(text + (f"; {advice}" if advice else "")) from None


def mutations(schema: Constraint, value, path: str = "") -> Iterator[tuple[str, Any]]:
    """Malformed versions of the valid ``value``: at every field of ``schema``, the field left
    out (where required) and each value its constraint refuses. For the tests."""
    if isinstance(schema, OrNone) and isinstance(schema.inner, Compound) and value is not None:
        for where, bad in schema.inner.mutate(value, path):
            if not (bad is None and where == (path or "(whole)")):  # None is allowed here
                yield where, bad
        return
    if isinstance(schema, Compound):
        yield from schema.mutate(value, path)
        return
    for bad in schema.invalid_values():
        yield path or "(whole)", bad


def _shown(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
