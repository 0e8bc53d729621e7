"""The three multipliers TinyNet twists: resolution r, depth d and width w."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..core.constraints import Real, check_fields

# Each multiplier is above 0 and at most 16: far past the search's [0.25, 4], short of sizes
# whose cost (and analytic count) would overflow or take minutes to build.
MULTIPLIERS = {
    "r": Real(0, 16, closed="right", why="r above 16 makes a 3584 px input from 224 px"),
    "d": Real(0, 16, closed="right", why="d above 16 repeats every stage's blocks 16-fold"),
    "w": Real(0, 16, closed="right", why="w above 16 makes every layer 16 times as wide"),
}


def scaled_resolution(resolution_base: int, r: float) -> int:
    """``int(resolution_base * r)``, robust to float error just below an integer.

    ``int(224 * r)`` is TinyNet's rule; the tiny epsilon only stops a representation error
    (97 / 224 * 224 == 96.99999999999999) from losing a pixel.
    """
    return int(math.floor(resolution_base * r + 1e-9))


@dataclass(frozen=True)
class Scale:
    """Resolution, depth and width multipliers relative to a base network (all 1 = the base).

    Each must be a finite number above 0 and at most 16 (``MULTIPLIERS``).
    """

    r: float = 1.0
    d: float = 1.0
    w: float = 1.0

    constraints: ClassVar[dict] = MULTIPLIERS

    def __post_init__(self):
        check_fields(self)

    def resolution(self, resolution_base: int) -> int:
        return scaled_resolution(resolution_base, self.r)

    def __str__(self) -> str:
        # Python's shortest repr: what is printed builds the same network when typed again.
        return f"r={float(self.r)!r} d={float(self.d)!r} w={float(self.w)!r}"
