"""How commands print: JSON, aligned rows, counts with their millions, warnings on stderr."""

from __future__ import annotations

import json
import sys


def millions(n: int) -> str:
    return f"{n:,} ({n / 1e6:.2f} M)" if n < 1e9 else f"{n:,} ({n / 1e9:.3f} G)"


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"tinyformula: warning: {message}", file=sys.stderr)


def multiplier(value: float) -> str:
    """A multiplier r, d or w as Python writes it back (the shortest repr): what is printed
    is what builds the network when typed again."""
    return repr(float(value))
