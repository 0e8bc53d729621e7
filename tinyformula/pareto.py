"""The Pareto frontier of a search: no other trial is both cheaper (c) and more accurate (top-1)."""

from __future__ import annotations

from .trial import Trial, TrialState


def pareto_frontier(trials: list[Trial], seed: int | None = None) -> list[Trial]:
    """Trials finished ok that no other ok trial dominates, sorted by c.

    A trial is dominated when another has c no larger and top-1 no smaller, one of them
    strictly. With ``seed``, only trials trained with that seed count: every candidate was
    trained on the same batches with it (common random numbers), so their differences come
    from the architecture; replicates with other seeds only measure the noise.
    """
    points = [t for t in trials if t.state is TrialState.OK and t.top1 is not None
              and (seed is None or t.seed == seed)]
    frontier, best = [], float("-inf")
    # Cheapest first; at equal c the most accurate first, so its twins are dominated.
    for trial in sorted(points, key=lambda t: (t.config.c, -t.top1)):
        if trial.top1 > best:
            frontier.append(trial)
            best = trial.top1
    return frontier
