"""A search's second stage: more candidates where the formula is decided.

The first stage (full or halving) samples the whole space evenly, and most of its trials land
far from where the formula ends up. With ``second_stage=N`` the search then fits its formula
(the configured fit) with its band (:mod:`tinyformula.formula.band`) and samples N more
candidates around it, where the band is widest: a budget of the band's grid drawn with
probability in proportion to the band's width there (log r_hi / r_lo + log d_hi / d_lo),
jittered within its grid cell, then r and d log-uniform across the band at that budget
(widened by ``WIDEN`` each way) and w solved for the budget. They train on the full budget (at
the top rung of a halving search) with the search seed, and the formula is refitted on every
trial.

The stage is a pure function of the first stage's stored results (the fit and its resamples
are seeded), and once planned it is read back from the store, never re-planned: a resumed
search trains exactly what an uninterrupted one does. Its candidates are numbered from
``STAGE_OFFSET`` so that growing the first stage (``--trials``) never collides with them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from ..core.errors import TinyFormulaError
from ..cost.yardstick import Configuration, Yardstick
from ..formula.solve import solve_width
from .config import SearchConfig
from .fitting import fit_formula
from .space import MULTIPLIER_RANGE, network_key
from .trials import PlannedTrial, Trial

STAGE_OFFSET = 1_000_000   # candidate numbers of the second stage (the first's are below 100,000)
WIDEN = 1.1                # the band is sampled widened by this factor each way
TRIES = 200                # draws per candidate before the band is called exhausted
MIN_WIDTH = 0.05           # a budget's weight is at least this (log units): no zero weights


def is_second_stage(candidate: int) -> bool:
    return candidate >= STAGE_OFFSET


def stored_second_stage(trials: Sequence[Trial]) -> list[tuple[int, Configuration]]:
    """The second stage's candidates as the store holds them, by number."""
    found = {t.candidate: t.config for t in trials if is_second_stage(t.candidate)}
    return sorted(found.items())


def plan_second_stage(config: SearchConfig, yardstick: Yardstick,
                      candidates: Sequence[Configuration], first: Sequence[Trial],
                      stored: Sequence[Trial]) -> list[PlannedTrial]:
    """The second stage's trials: read back from ``stored`` (the store's rows) when it was
    planned, else sampled around the band of the formula fitted on the first stage's trials
    (``first``: the trials the search planned). Empty when the config asks for none."""
    if not config.second_stage:
        return []
    images = config.train_size * config.epochs
    planned = stored_second_stage(stored)
    if not planned:
        planned = [(STAGE_OFFSET + i, c) for i, c in enumerate(
            sample_around_band(config, yardstick, candidates,
                               [t for t in first if not is_second_stage(t.candidate)]))]
    return [PlannedTrial(number, config.seed, c, config.top_rung, images)
            for number, c in planned[:config.second_stage]]


def sample_around_band(config: SearchConfig, yardstick: Yardstick,
                       candidates: Sequence[Configuration],
                       trials: Sequence[Trial]) -> list[Configuration]:
    """``config.second_stage`` new networks around the first stage's formula, where its band is
    widest (see the module docstring). Raises TinyFormulaError when the first stage fits no
    formula or has no band."""
    formula = fit_formula(config, yardstick, list(trials))
    band = formula.band_
    if band is None or len(band.c) < 2:
        raise TinyFormulaError("the first stage's formula has no band to sample around (too "
                               "few trials reached the frontier); run without --second-stage "
                               "or with more --trials")
    widths = [max(math.log(rh / rl) + math.log(dh / dl), MIN_WIDTH)
              for rl, rh, dl, dh in zip(band.r_lo, band.r_hi, band.d_lo, band.d_hi)]
    step = math.log(band.c[1] / band.c[0])
    rng = random.Random(f"second stage {config.seed}")
    seen = {network_key(yardstick, c) for c in candidates}
    lo_c, hi_c = config.c_range
    found: list[Configuration] = []
    tries = 0
    while len(found) < config.second_stage:
        if tries >= TRIES * config.second_stage:
            raise TinyFormulaError(
                f"found only {len(found)} of {config.second_stage} new networks around the "
                f"formula's band; lower --second-stage")
        tries += 1
        j = rng.choices(range(len(band.c)), weights=widths)[0]
        c = band.c[j] * math.exp(rng.uniform(-step / 2, step / 2))
        c = min(max(c, band.c[0], lo_c), band.c[-1], hi_c)
        at = band.at(c)
        if at is None:
            continue
        r = round(_log_uniform(rng, at["r_lo"] / WIDEN, at["r_hi"] * WIDEN), 4)
        d = round(_log_uniform(rng, at["d_lo"] / WIDEN, at["d_hi"] * WIDEN), 4)
        network = new_network(yardstick, c, r, d, seen, config.c_range)
        if network is not None:
            found.append(network)
    return found


def new_network(yardstick: Yardstick, c: float, r: float, d: float, seen: set,
                c_range: tuple[float, float]) -> Configuration | None:
    """The network of resolution and depth multipliers ``r``, ``d`` with its width solved for
    budget ``c``, measured; None when no width in the sampler's range reaches it, its input
    would be under a pixel, it lands outside ``c_range``, or it is one of ``seen`` (network
    keys; a new network's key is added)."""
    solved = solve_width(yardstick, c, r, d, exact=False)
    if solved is None or not MULTIPLIER_RANGE[0] <= solved.w <= MULTIPLIER_RANGE[1] \
            or solved.scale.resolution(yardstick.resolution_base) < 1:
        return None
    measured = yardstick.measure(solved.scale)
    key = network_key(yardstick, measured)
    if key in seen or not c_range[0] <= measured.c <= c_range[1]:
        return None
    seen.add(key)
    return measured


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    lo, hi = max(lo, MULTIPLIER_RANGE[0]), min(hi, MULTIPLIER_RANGE[1])
    if hi <= lo:
        return lo
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))
