"""Turn a budget into an architecture: the width solver, the resolution search, the giant formula.

FLOPs are a step function of w (channels round to multiples of 8, in several stages at once)
and of the resolution (stride-2 stages round odd sizes up), and single steps are large: at
r = 0.76, d = 0.754 the FLOPs jump from c = 0.167 to 0.183 as w passes 0.445. So the width that
fits a budget is found by bisection on the exact cost model, and where the best width still
lands more than ``tolerance`` below the budget, nearby resolutions are tried as well.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..core.constraints import INVALID
from ..core.errors import TinyFormulaError
from ..core.numeric import last_true
from ..cost.budgets import check_budget
from ..cost.yardstick import Configuration, Yardstick
from ..nets.scale import MULTIPLIERS, Scale, scaled_resolution
from .published import GIANT_ALPHA, GIANT_BETA, GIANT_GAMMA

W_MIN, W_MAX = 1 / 64, 4.0      # below 1/64 every channel is at its minimum of 8
PHI_MAX = 10.0
RESOLUTION_WINDOW = 0.08        # search resolutions within +-8% of the formula's r
TOLERANCE = 0.02                # land within 2% below the budget, never above


class BudgetUnreachable(TinyFormulaError):
    """No configuration near the asked (r, d) lands within tolerance below the budget."""


def r_for_resolution(resolution: int, resolution_base: int) -> float:
    """The shortest r (3 decimals) with int(resolution_base * r) == resolution, even in plain
    float arithmetic, so the reported r rebuilds the same input size anywhere."""
    r = math.ceil(resolution * 1000 / resolution_base) / 1000
    while int(resolution_base * r) < resolution:
        r += 0.001
    return round(r, 3)


def solve_width(yardstick: Yardstick, c: float, r: float, d: float,
                amount_of=None, exact: bool = True) -> Configuration | None:
    """The widest w in [W_MIN, W_MAX] whose cost does not exceed the budget c at this r and d.

    None when even the narrowest network is over budget. No cost falls as w grows, so
    bisection (on log w) finds the last step below the budget; the w reported is the shortest
    decimal that builds the same network. ``amount_of(scale)`` replaces the yardstick's
    analytic count (the benchmark passes build + fvcore).

    The bisection asks the yardstick for estimates (for latency, blocks the table lacks are
    not timed). With ``exact``, the answer is then measured exactly, and where an estimate
    let it over the budget, a second bisection on exact costs below it finds the widest that
    fits: the answer is never above the budget.
    """
    limit = yardstick.budget(c)
    estimate = amount_of or (lambda scale: yardstick.amount(scale, exact=False))
    estimated = amount_of is None and not yardstick.meter.exact
    w = _widest_fitting(lambda w: estimate(Scale(r, d, w)) <= limit, W_MIN, W_MAX)
    if w is None:
        # An estimate that puts even the narrowest network over the budget is checked before
        # the budget is called unreachable: the answer must not hang on an estimate.
        if not (exact and estimated and yardstick.amount(Scale(r, d, W_MIN)) <= limit):
            return None
        w = _widest_fitting(lambda w: yardstick.amount(Scale(r, d, w)) <= limit, W_MIN, W_MAX)
    w = _shortest_equivalent_width(yardstick, r, d, w)
    config = yardstick.measure(Scale(r, d, w), exact)
    if exact and estimated and yardstick.amount(config.scale) > limit:
        w = _widest_fitting(lambda w: yardstick.amount(Scale(r, d, w)) <= limit, W_MIN, w)
        if w is None:
            return None
        config = yardstick.measure(Scale(r, d, _shortest_equivalent_width(yardstick, r, d, w)))
    return config


def _widest_fitting(fits, low: float, high: float) -> float | None:
    """The widest w in [low, high] (bisection on log w) for which ``fits(w)``, as the shortest
    decimal that builds the same network; None when ``low`` does not fit."""
    if not fits(low):
        return None
    if fits(high):
        return high
    return last_true(fits, low, high, log=True)


def _shortest_equivalent_width(yardstick: Yardstick, r: float, d: float, w: float) -> float:
    network, classes = yardstick.network, yardstick.num_classes
    layers = network.structure(Scale(r, d, w), classes)
    for decimals in range(2, 7):
        candidate = math.floor(w * 10**decimals) / 10**decimals
        if candidate > 0 and network.structure(Scale(r, d, candidate), classes) == layers:
            return candidate
    return w


def _network_key(yardstick: Yardstick, scale: Scale) -> tuple:
    """What makes two scales the same network: input size and layer tree."""
    return (scale.resolution(yardstick.resolution_base),
            yardstick.network.layers(scale, yardstick.num_classes))


def canonical(yardstick: Yardstick, config: Configuration) -> Configuration:
    """``config`` with r, d and w replaced by the shortest decimals (2 to 6 places, the
    nearest first) that build the very same network.

    Stage repeats round at halves and channels at multiples of 8, so a GP's d = 0.49999997
    printed as 0.5 would build another network (3 x 0.5 rounds up). Each multiplier is
    snapped inside its rounding interval, one at a time, so the values printed, stored and
    exported rebuild this network when typed again; its cost is unchanged.
    """
    key = _network_key(yardstick, config.scale)
    values = {"r": config.r, "d": config.d, "w": config.w}
    for name in ("w", "d", "r"):
        value = values[name]
        for decimals in range(2, 7):
            step = 10.0 ** -decimals
            low = math.floor(value / step) * step
            options = sorted({round(low, decimals), round(low + step, decimals)},
                             key=lambda v: (abs(v - value), v))
            found = None
            for option in options:
                if option <= 0 or MULTIPLIERS[name].convert(option) is INVALID:
                    continue
                trial = Scale(**{**values, name: option})
                if _network_key(yardstick, trial) == key:
                    found = option
                    break
            if found is not None:
                values[name] = found
                break
    if (values["r"], values["d"], values["w"]) == (config.r, config.d, config.w):
        return config
    return replace(config, r=values["r"], d=values["d"], w=values["w"])


def solve_budget(yardstick: Yardstick, c: float, r: float, d: float,
                 tolerance: float = TOLERANCE, amount_of=None) -> Configuration:
    """The configuration for this budget at (about) this r and d: solve w at the resolution r
    gives; if that lands more than ``tolerance`` below the budget, try the resolutions within
    +-8% of r, closest first, and take the first that lands within tolerance (never above).

    Where none does (at 32 px one pixel is 4% of the FLOPs), the closest below is returned:
    compare its ``c`` with the budget. The r, d and w returned are :func:`canonical`: typed
    again, they build the same network. A budget below the smallest or beyond the widest
    network near (r, d) raises :class:`BudgetUnreachable`. ``amount_of`` as in ``solve_width``.
    """
    c = check_budget(c)
    if any(MULTIPLIERS[name].convert(value) is INVALID for name, value in (("r", r), ("d", d))):
        raise BudgetUnreachable(
            f"c={c:g} asks for r={r:.3g}, d={d:.3g}, which is no network (r and d must be in "
            f"(0, 16]); choose a budget inside the formula's range")
    floor = (1 - tolerance) * c
    resolution_base = yardstick.resolution_base
    resolution = scaled_resolution(resolution_base, r)
    if resolution < 1:
        raise BudgetUnreachable(f"c={c:g} asks for r={r:.3g}: below one pixel at "
                                f"resolution base {resolution_base}")
    first = solve_width(yardstick, c, r, d, amount_of)
    if first is not None and first.c >= floor:
        return canonical(yardstick, first)

    exact = resolution_base * r
    low = max(1, math.floor(exact * (1 - RESOLUTION_WINDOW)))
    high = math.ceil(exact * (1 + RESOLUTION_WINDOW))
    tried = [first] if first else []
    for size in sorted(range(low, high + 1), key=lambda s: (abs(s + 0.5 - exact), s)):
        if size == resolution:
            continue
        config = solve_width(yardstick, c, r_for_resolution(size, resolution_base), d,
                             amount_of)
        if config is not None:
            if config.c >= floor:
                return canonical(yardstick, config)
            tried.append(config)
    where = f"{yardstick.base} at r={r:.3g}, d={d:.3g} (resolutions within 8%)"
    if not tried:
        smallest = yardstick.c(Scale(r, d, W_MIN))
        raise BudgetUnreachable(f"c={c:g}{_amount(yardstick, c)} is below the smallest {where}: "
                                f"c={smallest:.4g}{_amount(yardstick, smallest)} at the narrowest "
                                f"width; ask for a larger budget")
    best = max(tried, key=lambda config: config.c)
    if best.w >= W_MAX:
        raise BudgetUnreachable(f"c={c:g}{_amount(yardstick, c)} is beyond what {where} reaches "
                                f"with w <= {W_MAX:g} (at most c={best.c:.4g}"
                                f"{_amount(yardstick, best.c)}); ask for a smaller budget")
    return canonical(yardstick, best)


def _amount(yardstick: Yardstick, c: float) -> str:
    """`` (3.2 ms)``: c in the yardstick's own unit, for messages about budgets."""
    return f" ({yardstick.meter.format(c * yardstick.reference)})"


def giant_scale(phi: float) -> Scale:
    """EfficientNet's compound scaling at ``phi``: (r, d, w) = (1.15^phi, 1.2^phi, 1.1^phi)."""
    return Scale(GIANT_GAMMA**phi, GIANT_ALPHA**phi, GIANT_BETA**phi)


def giant_phi(yardstick: Yardstick, c: float) -> float:
    """The largest phi whose compound scaling (1.15^phi, 1.2^phi, 1.1^phi) fits the budget.

    Depth rounding makes this a step function too: for c = 0.13 the best phi reaches only
    c = 0.110 on EfficientNet-B0, which is why the giant side's width is re-solved afterwards.
    """
    c = check_budget(c)

    def fits(phi: float) -> bool:
        return yardstick.fits(giant_scale(phi), c, exact=False)

    # Below this phi the input would be smaller than one pixel.
    lo = math.log(1.0 / yardstick.resolution_base) / math.log(GIANT_GAMMA) + 1e-6
    hi = PHI_MAX
    if not fits(lo):
        raise BudgetUnreachable(f"c={c:g}{_amount(yardstick, c)} is below anything the giant "
                                f"formula builds from {yardstick.base}")
    if fits(hi):
        raise BudgetUnreachable(f"c={c:g} is beyond the giant formula's range "
                                f"(phi <= {PHI_MAX:g})")
    return last_true(fits, lo, hi)


def solve_giant(yardstick: Yardstick, c: float,
                tolerance: float = TOLERANCE) -> tuple[float, Configuration]:
    """EfficientNet's inverted giant formula at budget c: ``(phi, configuration)``, phi as
    above, then its r and d go through the same width solver as the Tiny Formula, so both
    land within tolerance of c."""
    phi = giant_phi(yardstick, c)
    scale = giant_scale(phi)
    return phi, solve_budget(yardstick, c, scale.r, scale.d, tolerance)
