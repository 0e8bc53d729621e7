"""The three multipliers TinyNet twists: resolution r, depth d and width w."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validate import Real, check

MULTIPLIER = Real(0, None, closed="right")


def scaled_resolution(resolution_base: int, r: float) -> int:
    """``int(resolution_base * r)``, robust to float error just below an integer.

    ``int(224 * r)`` is TinyNet's rule; the tiny epsilon only stops a representation error
    (97 / 224 * 224 == 96.99999999999999) from losing a pixel.
    """
    return int(math.floor(resolution_base * r + 1e-9))


@dataclass(frozen=True)
class Scale:
    """Resolution, depth and width multipliers relative to a base network (all 1 = the base).

    Each must be a finite number above zero.
    """

    r: float = 1.0
    d: float = 1.0
    w: float = 1.0

    def __post_init__(self):
        for name in ("r", "d", "w"):
            object.__setattr__(self, name, check(name, getattr(self, name), MULTIPLIER))

    def resolution(self, resolution_base: int) -> int:
        return scaled_resolution(resolution_base, self.r)

    def __str__(self) -> str:
        return f"r={self.r:g} d={self.d:g} w={self.w:g}"
