"""The width solver, the resolution search and the inverted giant formula."""

import math

import pytest

from tinyformula import Scale, Yardstick, get_base
from tinyformula.formula.estimator import TinyFormula
from tinyformula.formula.solve import (
    W_MAX,
    BudgetUnreachable,
    giant_phi,
    r_for_resolution,
    solve_budget,
    solve_giant,
    solve_width,
)

B0 = get_base("efficientnet_b0")
IMAGENET = Yardstick("efficientnet_b0")
SMALL = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)


def brute_force_widest(yardstick, c, r, d, step=0.001):
    """The widest w on a fine grid whose FLOPs fit: what bisection must agree with."""
    best = None
    for i in range(int(0.1 / step), int(W_MAX / step) + 1):
        w = i * step
        if yardstick.cost_of(Scale(r, d, w)).flops <= c * yardstick.reference:
            best = w
    return best


@pytest.mark.parametrize("c, r, d", [(0.25, 0.8, 0.8), (0.06, 0.45, 0.6), (0.5, 1.0, 0.5)])
def test_solve_width_finds_the_widest_step_that_fits(c, r, d):
    solution = solve_width(IMAGENET, c, r, d)
    assert solution.flops <= IMAGENET.budget(c)
    widest = brute_force_widest(IMAGENET, c, r, d)
    assert solution.flops == B0.cost(Scale(r, d, widest)).flops
    # The reported w is a short decimal that rebuilds exactly the solved network.
    assert solution.w == round(solution.w, 6)
    assert B0.cost(Scale(r, d, solution.w)).flops == solution.flops


def test_width_steps_are_large_so_resolution_search_is_needed():
    # Measured in the issue: at r = 0.76, d = 0.754, c jumps from 0.167 to 0.183 at w = 0.445.
    below = IMAGENET.c(Scale(0.76, 0.754, 0.444))
    above = IMAGENET.c(Scale(0.76, 0.754, 0.446))
    assert below == pytest.approx(0.167, abs=0.001) and above == pytest.approx(0.183, abs=0.001)
    width_only = solve_width(IMAGENET, 0.18, 0.76, 0.754)
    assert width_only.c < 0.98 * 0.18          # w alone cannot land within 2% ...
    solution = solve_budget(IMAGENET, 0.18, 0.76, 0.754)
    assert 0.98 * 0.18 <= solution.c <= 0.18   # ... a nearby resolution can
    assert abs(solution.resolution - 0.76 * 224) <= 0.08 * 0.76 * 224 + 1
    assert int(224 * solution.r) == solution.resolution


def test_every_budget_lands_within_two_percent_below():
    formula = TinyFormula.builtin()
    for i in range(41):
        c = math.exp(math.log(0.03) + i / 40 * math.log(1.0 / 0.03))
        tiny = formula.recommend(c)
        _, giant = solve_giant(IMAGENET, c)
        assert formula.giant(c).config == giant
        for solution_c in (tiny.config.c, giant.c):
            assert 0.98 * c <= solution_c <= c, (c, solution_c)


def test_giant_phi_is_a_step_function_of_the_budget():
    phi = giant_phi(IMAGENET, 0.13)
    scale = Scale(1.15**phi, 1.2**phi, 1.1**phi)
    assert IMAGENET.c(scale) == pytest.approx(0.110, abs=0.001)  # the figure
    nudged = Scale(1.15 ** (phi + 1e-4), 1.2 ** (phi + 1e-4), 1.1 ** (phi + 1e-4))
    assert IMAGENET.c(nudged) > 0.13


@pytest.mark.parametrize("resolution_base", [32, 224, 299])
def test_r_for_resolution_rebuilds_the_size_in_plain_float_arithmetic(resolution_base):
    for size in range(1, 2 * resolution_base):
        r = r_for_resolution(size, resolution_base)
        assert int(resolution_base * r) == size
        assert r == round(r, 3)


def test_unreachable_budgets_say_so():
    with pytest.raises(BudgetUnreachable, match="beyond"):
        solve_budget(IMAGENET, 100.0, 1.0, 1.0)
    with pytest.raises(BudgetUnreachable, match="below the smallest"):
        solve_budget(IMAGENET, 0.001, 0.5, 0.5)
    with pytest.raises(BudgetUnreachable, match="no network"):
        solve_budget(IMAGENET, 0.1, -0.2, 0.5)
    with pytest.raises(BudgetUnreachable):
        solve_giant(IMAGENET, 1e-5)


def test_coarse_steps_return_the_closest_configuration_below():
    # At 32 px one pixel moves FLOPs by ~8%: no (resolution, width) lands within 2% of 0.2.
    solution = solve_budget(SMALL, 0.2, 0.745, 0.765)
    assert 0.97 * 0.2 < solution.c < 0.98 * 0.2


def test_small_image_resolution_base():
    solution = solve_budget(SMALL, 0.25, 0.8, 0.8)
    assert 0.98 * 0.25 <= solution.c <= 0.25
    assert solution.resolution == int(32 * solution.r + 1e-9)


def test_the_solver_works_on_any_cost():
    """With c in parameters, the width that fits is the widest whose params fit."""
    params = Yardstick("efficientnet_b0", cost="params")
    solution = solve_width(params, 0.3, 1.0, 1.0)
    assert solution.params <= 0.3 * params.reference
    assert solution.c == pytest.approx(solution.params / params.reference)
    wider = Scale(1.0, 1.0, solution.w + 0.01)
    assert params.amount(wider) > 0.3 * params.reference or params.measure(wider) == solution


def test_the_yardstick_measures_c_one_way():
    config = SMALL.measure(Scale(0.5, 0.5, 0.5))
    cost = B0.cost(Scale(0.5, 0.5, 0.5), 10, 32)
    assert (config.flops, config.params, config.resolution) == (cost.flops, cost.params,
                                                                 cost.resolution)
    assert config.c == SMALL.c(config.scale) == cost.flops / B0.cost(None, 10, 32).flops
    assert SMALL.budget(0.25) == 0.25 * SMALL.reference
    assert Yardstick.from_dict(SMALL.to_dict()) == SMALL
    assert IMAGENET.resolution_base == 224 and IMAGENET.reference == B0.cost().flops
