"""The search space: draw candidate (r, d, w) mutations of a base and keep those inside a budget.

Two samplers, both deterministic functions of the seed whose first n candidates do not depend
on how many are asked for (so a search can be extended with more trials):

* ``random`` is the paper's: r, d and w log-uniform in [0.25, 4], kept when c falls inside the
  range studied (most draws are thrown away);
* ``budgeted`` draws c log-uniform in the range, r and d log-uniform in [0.25, 4], solves the
  widest w that fits c exactly and rejects w outside [0.25, 4], so no draw is wasted on a
  budget nobody asked about.

Both plan distinct networks only: a draw that builds the same network as an earlier candidate
(same input size and layer tree: at 32 px several r give one resolution, and d rounds per
stage) is skipped, so no network is trained twice under two names. ``planner=1`` gives the
plans of tinyformula 0.1, which kept repeats: a run folder it planned continues with it.
"""

from __future__ import annotations

import math
import random

from ..core.constraints import POSITIVE_INT, Pair, Real, check
from ..core.errors import TinyFormulaError
from ..cost.yardstick import Configuration, Yardstick
from ..formula.solve import solve_width
from ..nets.scale import Scale

# Which planner made a plan (part of a search's identity): 2 skips repeated networks; a run
# folder planned by 1 (tinyformula 0.1) keeps planning with 1, so its plan stays the same.
PLANNER = 2
MULTIPLIER_RANGE = (0.25, 4.0)
SAMPLERS = ("random", "budgeted")
BUDGETED_TRIES_PER_C = 200
# Multipliers tried in a row without a new candidate before the range is called unreachable
# (a budgeted draw that finds no width tries BUDGETED_TRIES_PER_C): seconds, not hours.
MAX_TRIES_IN_A_ROW = 5_000


C_RANGE = Pair(Real(0, None, closed="neither"), why="the relative costs a search studies")


def check_c_range(c_range) -> tuple[float, float]:
    """The range of c a search studies: two numbers 0 < LO < HI."""
    return check("the c range", c_range, C_RANGE)


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _round(value: float) -> float:
    """Multipliers are stored to 4 decimals so a plan reads and re-types cleanly."""
    return round(value, 4)


def network_key(yardstick: Yardstick, config: Configuration) -> tuple:
    """What makes two configurations the same network: input size and layer tree."""
    return (config.resolution, yardstick.network.structure(config.scale, yardstick.num_classes))


def plan_candidates(yardstick: Yardstick, n: int, *, sampler: str = "budgeted",
                    c_range=(0.03, 1.0), seed: int = 0,
                    planner: int = PLANNER) -> list[Configuration]:
    """The first ``n`` distinct candidates of the sampler's stream for this seed, c measured
    by ``yardstick``; candidate i of a plan is its i-th element (whatever ``n``)."""
    if sampler not in SAMPLERS:
        raise TinyFormulaError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    n = check("the number of trials", n, POSITIVE_INT)
    lo, hi = check_c_range(c_range)
    check_reachable(yardstick, lo, hi)
    rng = random.Random(seed)
    draw = _draw_random if sampler == "random" else _draw_budgeted
    candidates: list[Configuration] = []
    seen: set = set()
    misses = 0
    while len(candidates) < n:
        if misses >= MAX_TRIES_IN_A_ROW:
            raise TinyFormulaError(
                f"after {misses:,} tries in a row found no new candidate with c in {lo:g}..{hi:g} "
                f"({len(candidates)} of {n} found); widen --c-range towards 0.03..1 or use "
                f"--sampler budgeted")
        scale = draw(rng, yardstick, lo, hi)
        if scale is None:
            misses += BUDGETED_TRIES_PER_C
            continue
        if scale.resolution(yardstick.resolution_base) >= 1:
            config = yardstick.measure(scale)
            if lo <= config.c <= hi:
                key = network_key(yardstick, config) if planner >= 2 else len(candidates)
                if key not in seen:
                    seen.add(key)
                    candidates.append(config)
                    misses = 0
                    continue
        misses += 1
    return candidates


def reachable_c(yardstick: Yardstick) -> tuple[float, float]:
    """The smallest and largest c of any candidate (cost grows with each multiplier), as the
    yardstick estimates them (for latency, without timing blocks the table lacks)."""
    low, high = (yardstick.amount(Scale(m, m, m), exact=False) / yardstick.reference
                 for m in MULTIPLIER_RANGE)
    return low, high


def check_reachable(yardstick: Yardstick, lo: float, hi: float) -> None:
    """Refuse a c range no candidate with multipliers in [0.25, 4] can fall in (and a base
    whose feature map vanishes at the smallest input the search draws)."""
    yardstick.network.check_input(Scale(MULTIPLIER_RANGE[0]).resolution(
        yardstick.resolution_base))
    smallest, largest = reachable_c(yardstick)
    if hi < smallest or lo > largest:
        raise TinyFormulaError(
            f"no candidate can have c in {lo:g}..{hi:g}: with r, d and w in "
            f"{MULTIPLIER_RANGE[0]:g}..{MULTIPLIER_RANGE[1]:g}, {yardstick.base} at "
            f"{yardstick.resolution_base} px spans c = {smallest:.3g}..{largest:.3g}; give a "
            f"--c-range inside that")


def _draw_random(rng, yardstick, lo, hi) -> Scale:
    return Scale(*(_round(_log_uniform(rng, *MULTIPLIER_RANGE)) for _ in range(3)))


def _draw_budgeted(rng, yardstick, lo, hi) -> Scale | None:
    # Redraw (r, d) for the same c until w fits: rejecting the c itself would skew the plan
    # towards large budgets, where more (r, d) pairs leave room for a width in range.
    c = _log_uniform(rng, lo, hi)
    for _ in range(BUDGETED_TRIES_PER_C):
        r = _round(_log_uniform(rng, *MULTIPLIER_RANGE))
        d = _round(_log_uniform(rng, *MULTIPLIER_RANGE))
        if Scale(r, d).resolution(yardstick.resolution_base) < 1:
            continue
        config = solve_width(yardstick, c, r, d, exact=False)  # the plan measures it exactly
        if config is not None and MULTIPLIER_RANGE[0] <= config.w <= MULTIPLIER_RANGE[1]:
            return config.scale
    return None
