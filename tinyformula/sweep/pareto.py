"""Pareto dominance over (c lower, top-1 higher): the one home of the rule, the frontier a
formula is fitted on, and the non-dominated fronts successive halving promotes by.

A point *dominates* another when its c is no larger and its top-1 no smaller, one of them
strictly (:func:`dominates`). Points are anything with ``config.c`` and ``top1`` (trials).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ..execution.jobs import TrialState
from .trials import Trial


def dominates(a, b) -> bool:
    """Whether ``a`` dominates ``b``: c no larger, top-1 no smaller, one strictly."""
    return (a.config.c <= b.config.c and a.top1 >= b.top1
            and (a.config.c < b.config.c or a.top1 > b.top1))


def pareto_fronts(points: Sequence) -> list[list]:
    """Non-dominated sorting: the fronts, best first, each ordered by c (then top-1 falling,
    then input order). O(n log n) for two objectives.

    Points are taken by c (rising), top-1 (falling): every point of a front then has a
    larger top-1 than the front's earlier points (or equals its twin at the same c), so the
    last point placed in a front holds its largest top-1, and those fall from front to front;
    a point joins the first front whose last point does not dominate it (a binary search).
    """
    order = sorted(points, key=lambda p: (p.config.c, -p.top1))
    fronts: list[list] = []
    keys: list[tuple[float, float]] = []   # per front, its last point as (-top1, c)
    for point in order:
        # Front k's last point q dominates ``point`` when q.top1 > top1, or q.top1 == top1
        # with a smaller c: (-q.top1, q.c) < (-top1, c), q.c <= c being given.
        k = bisect.bisect_left(keys, (-point.top1, point.config.c))
        if k == len(fronts):
            fronts.append([point])
            keys.append((-point.top1, point.config.c))
        else:
            fronts[k].append(point)
            keys[k] = (-point.top1, point.config.c)
    return fronts


def pareto_frontier(trials: list[Trial], seed: int | None = None) -> list[Trial]:
    """Trials finished ok that no other ok trial dominates, sorted by c; of twins (equal c and
    top-1) only the first in input order.

    With ``seed``, only trials trained with that seed count: every candidate was trained on
    the same batches with it (common random numbers), so their differences come from the
    architecture; replicates with other seeds only measure the noise.
    """
    points = [t for t in trials if t.state is TrialState.OK and t.top1 is not None
              and (seed is None or t.seed == seed)]
    fronts = pareto_fronts(points)
    frontier, seen = [], set()
    for trial in fronts[0] if fronts else []:
        if (trial.config.c, trial.top1) not in seen:
            seen.add((trial.config.c, trial.top1))
            frontier.append(trial)
    return frontier
