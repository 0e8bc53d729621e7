"""Turn a budget into an architecture: the width solver, the resolution search, the giant formula.

FLOPs are a step function of w (channels round to multiples of 8, in several stages at once)
and of the resolution (stride-2 stages round odd sizes up), and single steps are large: at
r = 0.76, d = 0.754 the FLOPs jump from c = 0.167 to 0.183 as w passes 0.445. So the width that
fits a budget is found by bisection on the exact cost model, and where the best width still
lands more than ``tolerance`` below the budget, nearby resolutions are tried as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .bases.spec import BaseNetwork
from .errors import TinyFormulaError
from .published import GIANT_ALPHA, GIANT_BETA, GIANT_GAMMA
from .scale import Scale, scaled_resolution

W_MIN, W_MAX = 1 / 64, 4.0      # below 1/64 every channel is at its minimum of 8
PHI_MAX = 10.0
RESOLUTION_WINDOW = 0.08        # search resolutions within +-8% of the formula's r
TOLERANCE = 0.02                # land within 2% below the budget, never above


class BudgetUnreachable(TinyFormulaError):
    """No configuration near the asked (r, d) lands within tolerance below the budget."""


@dataclass(frozen=True)
class Solution:
    """A concrete configuration and what it costs; ``c`` is its FLOPs relative to the base."""

    r: float
    d: float
    w: float
    resolution: int
    flops: int
    params: int
    c: float


@dataclass(frozen=True)
class Budget:
    """A relative budget c on one base, with the conventions that make c absolute."""

    base: BaseNetwork
    c: float
    num_classes: int = 1000
    resolution_base: int = 224

    def __post_init__(self):
        check_budget(self.c)

    @property
    def reference_flops(self) -> int:
        return self.base.cost(Scale(), self.num_classes, self.resolution_base).flops

    @property
    def flops(self) -> float:
        return self.c * self.reference_flops

    def solution(self, scale: Scale) -> Solution:
        cost = self.base.cost(scale, self.num_classes, self.resolution_base)
        return Solution(scale.r, scale.d, scale.w, cost.resolution, cost.flops, cost.params,
                        cost.flops / self.reference_flops)


def check_budget(c) -> float:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
        raise TinyFormulaError(f"the budget c must be a finite number above 0, got {c!r}")
    return float(c)


def r_for_resolution(resolution: int, resolution_base: int) -> float:
    """The shortest r (3 decimals) with int(resolution_base * r) == resolution, even in plain
    float arithmetic, so the reported r rebuilds the same input size anywhere."""
    r = math.ceil(resolution * 1000 / resolution_base) / 1000
    while int(resolution_base * r) < resolution:
        r += 0.001
    return round(r, 3)


def solve_width(budget: Budget, r: float, d: float, flops_of=None) -> Solution | None:
    """The widest w in [W_MIN, W_MAX] whose FLOPs do not exceed the budget at this r and d.

    None when even the narrowest network is over budget. FLOPs never fall as w grows, so
    bisection (on log w) finds the last step below the budget; the w reported is the shortest
    decimal that builds the same network. ``flops_of(scale)`` replaces the analytic count
    (the benchmark passes build + fvcore).
    """
    def fits(w: float) -> bool:
        scale = Scale(r, d, w)
        if flops_of is not None:
            return flops_of(scale) <= budget.flops
        return budget.base.cost(scale, budget.num_classes,
                                budget.resolution_base).flops <= budget.flops

    if not fits(W_MIN):
        return None
    if fits(W_MAX):
        return budget.solution(Scale(r, d, W_MAX))
    lo, hi = math.log(W_MIN), math.log(W_MAX)
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(math.exp(mid)) else (lo, mid)
    return budget.solution(Scale(r, d, _shortest_equivalent_width(budget, r, d, math.exp(lo))))


def _shortest_equivalent_width(budget: Budget, r: float, d: float, w: float) -> float:
    layers = budget.base.layers(Scale(r, d, w), budget.num_classes)
    for decimals in range(2, 7):
        candidate = math.floor(w * 10**decimals) / 10**decimals
        if candidate > 0 and budget.base.layers(Scale(r, d, candidate),
                                                budget.num_classes) == layers:
            return candidate
    return w


def solve_budget(budget: Budget, r: float, d: float, tolerance: float = TOLERANCE,
                 flops_of=None) -> Solution:
    """The configuration for this budget at (about) this r and d: solve w at the resolution r
    gives; if that lands more than ``tolerance`` below the budget, try the resolutions within
    +-8% of r, closest first, and take the first that lands within tolerance (never above).

    Where none does (at 32 px one pixel is 4% of the FLOPs), the closest below is returned:
    compare its ``c`` with the budget. A budget below the smallest or beyond the widest
    network near (r, d) raises :class:`BudgetUnreachable`. ``flops_of`` as in ``solve_width``.
    """
    if not (math.isfinite(r) and math.isfinite(d) and r > 0 and d > 0):
        raise BudgetUnreachable(
            f"c={budget.c:g} asks for r={r:.3g}, d={d:.3g}, which is no network; "
            f"choose a budget inside the formula's range")
    floor = (1 - tolerance) * budget.flops
    resolution = scaled_resolution(budget.resolution_base, r)
    if resolution < 1:
        raise BudgetUnreachable(f"c={budget.c:g} asks for r={r:.3g}: below one pixel at "
                                f"resolution base {budget.resolution_base}")
    first = solve_width(budget, r, d, flops_of)
    if first is not None and first.flops >= floor:
        return first

    exact = budget.resolution_base * r
    low = max(1, math.floor(exact * (1 - RESOLUTION_WINDOW)))
    high = math.ceil(exact * (1 + RESOLUTION_WINDOW))
    tried = [first] if first else []
    for size in sorted(range(low, high + 1), key=lambda s: (abs(s + 0.5 - exact), s)):
        if size == resolution:
            continue
        solution = solve_width(budget, r_for_resolution(size, budget.resolution_base), d, flops_of)
        if solution is not None:
            if solution.flops >= floor:
                return solution
            tried.append(solution)
    where = f"{budget.base.name} at r={r:.3g}, d={d:.3g} (resolutions within 8%)"
    if not tried:
        smallest = budget.solution(Scale(r, d, W_MIN)).c
        raise BudgetUnreachable(f"c={budget.c:g} is below the smallest {where}: c={smallest:.4g} "
                                f"at the narrowest width; ask for a larger budget")
    best = max(tried, key=lambda s: s.flops)
    if best.w >= W_MAX:
        raise BudgetUnreachable(f"c={budget.c:g} is beyond what {where} reaches with w <= {W_MAX:g} "
                                f"(at most c={best.c:.4g}); ask for a smaller budget")
    return best


@dataclass(frozen=True)
class GiantSolution:
    phi: float
    solution: Solution


def giant_phi(budget: Budget) -> float:
    """The largest phi whose compound scaling (1.15^phi, 1.2^phi, 1.1^phi) fits the budget.

    Depth rounding makes this a step function too: for c = 0.13 the best phi reaches only
    c = 0.110 on EfficientNet-B0, which is why the giant side's width is re-solved afterwards.
    """
    def fits(phi: float) -> bool:
        scale = Scale(GIANT_GAMMA**phi, GIANT_ALPHA**phi, GIANT_BETA**phi)
        return budget.base.cost(scale, budget.num_classes,
                                budget.resolution_base).flops <= budget.flops

    # Below this phi the input would be smaller than one pixel.
    lo = math.log(1.0 / budget.resolution_base) / math.log(GIANT_GAMMA) + 1e-6
    hi = PHI_MAX
    if not fits(lo):
        raise BudgetUnreachable(f"c={budget.c:g} is below anything the giant formula builds "
                                f"from {budget.base.name}")
    if fits(hi):
        raise BudgetUnreachable(f"c={budget.c:g} is beyond the giant formula's range "
                                f"(phi <= {PHI_MAX:g})")
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def solve_giant(budget: Budget, tolerance: float = TOLERANCE) -> GiantSolution:
    """EfficientNet's inverted giant formula at this budget: phi as above, then its r and d go
    through the same width solver as the Tiny Formula, so both land within tolerance of c."""
    phi = giant_phi(budget)
    return GiantSolution(phi, solve_budget(budget, GIANT_GAMMA**phi, GIANT_ALPHA**phi, tolerance))
