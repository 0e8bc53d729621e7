"""A formula's band: how far r(c) and d(c) could move, and what that costs in top-1.

A search's trials are one sample of what its schedule could have scored. The band resamples
them (a bootstrap over candidates: each resample refits the formula exactly as the search did)
and keeps, at each budget of a grid, the central ``level`` share of the resampled r(c) and d(c).
Its *top-1 cost* at a budget is the expected value of perfect information about the top-1
surface, measured with the surrogate of every trial (:mod:`.surrogate`), refitted on each
resample: the mean, over resamples, of (that resample's best expected top-1 at c) minus (its
expected top-1 at the formula's r(c), d(c)). It is the top-1 the formula is expected to leave
on the table because the trials cannot pin r and d down; a wide band at a flat optimum costs
nothing, a narrow one at a sharp optimum may cost a lot.

A :class:`Band` is plain floats, stored in the formula file and answered in pure Python:
``tinyformula predict`` interpolates it in log c (no numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError

LEVEL = 0.8            # the central share of the resampled curves the band holds
DRAWS = 32             # resamples by default
MIN_SHARE = 0.5        # a budget needs this share of the resamples to reach it
MAX_GRID = 1000

BAND_VALUES = {"c": Real(0, 1e6, closed="right"), "r_lo": Real(0, 1e3, closed="right"),
               "r_hi": Real(0, 1e3, closed="right"), "d_lo": Real(0, 1e3, closed="right"),
               "d_hi": Real(0, 1e3, closed="right"), "top1_cost": Real(-1, 1)}
COLUMNS = tuple(BAND_VALUES)


@dataclass(frozen=True)
class Band:
    """The band of r(c) and d(c) on a grid of budgets ``c`` (rising), with the top-1 cost of
    that uncertainty (a share, 0.01 = one point); ``draws`` resamples, ``level`` the central
    share held."""

    c: tuple[float, ...]
    r_lo: tuple[float, ...]
    r_hi: tuple[float, ...]
    d_lo: tuple[float, ...]
    d_hi: tuple[float, ...]
    top1_cost: tuple[float, ...]
    draws: int
    level: float = LEVEL

    def at(self, c: float) -> dict | None:
        """The band at budget ``c``, interpolated linearly in log c: ``r_lo, r_hi, d_lo, d_hi,
        top1_cost``; None outside the grid (the band is not extrapolated)."""
        grid = self.c
        if not grid or not grid[0] * (1 - 1e-9) <= c <= grid[-1] * (1 + 1e-9):
            return None
        if len(grid) == 1:
            return {key: getattr(self, key)[0] for key in COLUMNS[1:]}
        x = math.log(min(max(c, grid[0]), grid[-1]))
        i = max(j for j in range(len(grid) - 1) if math.log(grid[j]) <= x + 1e-12) \
            if x > math.log(grid[0]) else 0
        i = min(i, len(grid) - 2)
        lo, hi = math.log(grid[i]), math.log(grid[i + 1])
        t = (x - lo) / (hi - lo) if hi > lo else 0.0
        return {key: getattr(self, key)[i] + t * (getattr(self, key)[i + 1]
                                                  - getattr(self, key)[i])
                for key in COLUMNS[1:]}

    def widest(self) -> float:
        """The budget where the band is widest: the largest sum of log(r_hi / r_lo) and
        log(d_hi / d_lo)."""
        widths = [math.log(rh / rl) + math.log(dh / dl)
                  for rl, rh, dl, dh in zip(self.r_lo, self.r_hi, self.d_lo, self.d_hi)]
        return self.c[max(range(len(widths)), key=widths.__getitem__)]

    def to_dict(self) -> dict:
        return {**{key: list(getattr(self, key)) for key in COLUMNS}, "draws": self.draws,
                "level": self.level}

    @classmethod
    def from_dict(cls, data) -> "Band":
        """A stored band, every value checked (a formula file is untrusted input)."""
        if not isinstance(data, dict) or set(data) != set(COLUMNS) | {"draws", "level"}:
            raise TinyFormulaError(f"a band must hold {', '.join(COLUMNS)}, draws and level")
        n = len(data["c"]) if isinstance(data["c"], list) else -1
        if not 1 <= n <= MAX_GRID or any(not isinstance(data[k], list) or len(data[k]) != n
                                         for k in COLUMNS):
            raise TinyFormulaError(f"a band's columns must be lists of one length (1 to "
                                   f"{MAX_GRID})")
        columns = {key: tuple(check(f"the band's {key}", v, limit) for v in data[key])
                   for key, limit in BAND_VALUES.items()}
        if any(b <= a for a, b in zip(columns["c"], columns["c"][1:])):
            raise TinyFormulaError("a band's budgets must rise")
        for key in ("r", "d"):
            if any(lo > hi for lo, hi in zip(columns[f"{key}_lo"], columns[f"{key}_hi"])):
                raise TinyFormulaError(f"a band's {key}_lo must not exceed its {key}_hi")
        draws = data["draws"]
        if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= 100_000:
            raise TinyFormulaError("a band's draws must be a whole number from 1 to 100,000")
        level = check("the band's level", data["level"], Real(0, 1, closed="neither"))
        return cls(**columns, draws=draws, level=level)


def summarize(grid, r_draws, d_draws, regrets, level: float = LEVEL) -> Band | None:
    """The band from resampled curves: ``r_draws`` and ``d_draws`` (resamples x budgets, nan
    where a resample's formula does not reach a budget) and ``regrets`` (the same shape: each
    resample's top-1 regret at the formula's r, d). Budgets reached by fewer than
    ``MIN_SHARE`` of the resamples are left out; None when none is left."""
    import numpy as np

    r_draws, d_draws, regrets = (np.asarray(a, dtype=float) for a in (r_draws, d_draws, regrets))
    tail = 100 * (1 - level) / 2
    keep = [j for j in range(len(grid))
            if np.isfinite(r_draws[:, j] + d_draws[:, j]).mean() >= MIN_SHARE]
    if not keep:
        return None

    def percentile(values, q):
        finite = values[np.isfinite(values)]
        return float(np.percentile(finite, q))

    def mean(values):
        finite = values[np.isfinite(values)]
        return float(np.clip(finite.mean(), -1, 1)) if len(finite) else 0.0

    return Band(c=tuple(float(grid[j]) for j in keep),
                r_lo=tuple(percentile(r_draws[:, j], tail) for j in keep),
                r_hi=tuple(percentile(r_draws[:, j], 100 - tail) for j in keep),
                d_lo=tuple(percentile(d_draws[:, j], tail) for j in keep),
                d_hi=tuple(percentile(d_draws[:, j], 100 - tail) for j in keep),
                top1_cost=tuple(mean(regrets[:, j]) for j in keep),
                draws=int(r_draws.shape[0]), level=level)
