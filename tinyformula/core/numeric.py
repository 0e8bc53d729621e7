"""Small numerical routines the stages share, in plain Python (no numpy, no torch): one home
each for bisection, a least-squares line and rank correlations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def last_true(predicate: Callable[[float], bool], low: float, high: float, *,
              tolerance: float = 1e-6, log: bool = False) -> float:
    """Bisection for the largest x in ``[low, high]`` where a monotone ``predicate`` still
    holds, given that it holds at ``low`` and not at ``high``: the returned x satisfies it and
    lies within ``tolerance`` of where it stops (measured in log x with ``log=True``, for
    multipliers whose steps are relative)."""
    if log:
        a, b = math.log(low), math.log(high)
    else:
        a, b = low, high
    while b - a > tolerance:
        mid = (a + b) / 2
        if predicate(math.exp(mid) if log else mid):
            a = mid
        else:
            b = mid
    return math.exp(a) if log else a


def least_squares_line(xs: Sequence[float], ys: Sequence[float],
                       weights: Sequence[float] | None = None) -> tuple[float, float] | None:
    """``(intercept, slope)`` of the (weighted) least-squares line through the points; None
    when the x values do not vary (no slope is defined)."""
    weights = [1.0] * len(xs) if weights is None else list(weights)
    total = sum(weights)
    if len(xs) < 2 or total <= 0:
        return None
    mean_x = sum(w * x for w, x in zip(weights, xs)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys)) / total
    var = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs))
    if var <= 0:
        return None
    slope = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys)) / var
    return mean_y - slope * mean_x, slope


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (as ``pandas.Series.rank``)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and values[order[stop + 1]] == values[order[start]]:
            stop += 1
        for k in range(start, stop + 1):
            out[order[k]] = (start + stop) / 2 + 1
        start = stop + 1
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation; nan when undefined (fewer than 2 points, a constant series)."""
    n = len(x)
    if n < 2 or n != len(y):
        return math.nan
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx <= 0 or syy <= 0:
        return math.nan
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's on average ranks); nan when undefined."""
    x, y = list(x), list(y)
    return pearson(ranks(x), ranks(y))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either series accounted for); nan when undefined."""
    x, y = list(x), list(y)
    n = len(x)
    if n < 2 or n != len(y):
        return math.nan
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan
