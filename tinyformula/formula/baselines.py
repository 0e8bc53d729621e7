"""The fixed formulas a fitted one is checked against, each answering a budget with a
configuration whose width is solved to the same cost (within 2% below c) as the fitted
formula's, so that they differ only in how they share the budget between r, d and w:

* ``giant``: EfficientNet's compound scaling inverted (:func:`.solve.solve_giant`);
* ``published``: the Tiny Formula fitted on the published TinyNet A-E (ImageNet), which
  exists for ``efficientnet_b0`` only (:meth:`TinyFormula.builtin`);
* ``fast``: Dollár et al.'s fast compound scaling (Dollár, Singh, Girshick 2021, "Fast and
  Accurate Model Scaling") inverted: width gets 0.8 of the scaling (w^2 carries c^0.8, d
  and r^2 c^0.1 each), so (r, d, w) = (s^0.05, s^0.1, s^0.4) at the largest s that fits
  the budget (s = c where every part of the base scales), then w solved exactly.

Nothing here imports torch.
"""

from __future__ import annotations

import math

from ..core.errors import TinyFormulaError
from ..core.numeric import last_true
from ..cost.budgets import check_budget
from ..cost.yardstick import Yardstick
from ..nets.scale import Scale
from .estimator import BUILTIN_BASES, TinyFormula
from .recommendation import Recommendation, giant_recommendation
from .solve import BudgetUnreachable, solve_budget

# Fast compound scaling: the share of log c each multiplier carries (its exponent on c).
FAST_ALPHA = 0.8                      # width's share of the scaling (of w^2)
FAST_EXPONENTS = {"d": (1 - FAST_ALPHA) / 2, "w": FAST_ALPHA / 2, "r": (1 - FAST_ALPHA) / 4}
FAST_S_RANGE = (1e-9, 1e3)            # the scalings s searched (log bisection)
BASELINES = ("giant", "published", "fast")


def fast_scale(s: float) -> Scale:
    """Fast compound scaling by ``s``: (r, d, w) = (s^0.05, s^0.1, s^0.4)."""
    return Scale(s ** FAST_EXPONENTS["r"], s ** FAST_EXPONENTS["d"], s ** FAST_EXPONENTS["w"])


def fast_compound_recommendation(yardstick: Yardstick, c: float) -> Recommendation:
    """Fast compound scaling inverted at budget c, as the giant formula is: the largest
    scaling s whose (s^0.05, s^0.1, s^0.4) fits c (below c where the base has parts that do
    not scale: a fixed stem or head), then its r and d with the widest w that fits c, solved
    like every other formula's width. ``phi`` holds s."""
    c = check_budget(c)

    def fits(s: float) -> bool:
        return yardstick.fits(fast_scale(s), c, exact=False)

    if not fits(FAST_S_RANGE[0]):
        raise BudgetUnreachable(f"c={c:g} is below anything fast compound scaling builds from "
                                f"{yardstick.base}")
    if fits(FAST_S_RANGE[1]):
        raise BudgetUnreachable(f"c={c:g} is beyond fast compound scaling's range")
    s = last_true(fits, *FAST_S_RANGE, log=True)
    scale = fast_scale(s)
    return Recommendation(budget=c, config=solve_budget(yardstick, c, scale.r, scale.d),
                          formula="fast", phi=s)


def published_recommendation(yardstick: Yardstick, c: float) -> Recommendation:
    """The published Tiny Formula (TinyNet A-E) at budget c under ``yardstick`` (its classes,
    base resolution and cost); a base without a published formula raises TinyFormulaError."""
    if yardstick.base not in BUILTIN_BASES:
        raise TinyFormulaError(f"the published Tiny Formula exists for "
                               f"{', '.join(BUILTIN_BASES)} only, not {yardstick.base}")
    formula = TinyFormula.builtin(yardstick.base)
    c = formula.check_budget(c)
    # r and d from its GPs (c is dimensionless), w solved under the caller's yardstick.
    r, r_std = formula.posterior_r_.predict(math.log(c))
    d, d_std = formula.posterior_d_.predict(math.log(c))
    return Recommendation(budget=c, config=solve_budget(yardstick, c, r, d), formula="published",
                          r_std=r_std, d_std=d_std, extrapolated=formula.is_extrapolation(c))


def baseline_recommendation(name: str, yardstick: Yardstick, c: float) -> Recommendation:
    """The fixed formula ``name`` (one of :data:`BASELINES`) at budget c. Raises
    :class:`~.solve.BudgetUnreachable` (or TinyFormulaError) where it has no answer."""
    if name == "giant":
        return giant_recommendation(yardstick, c)
    if name == "published":
        return published_recommendation(yardstick, c)
    if name == "fast":
        return fast_compound_recommendation(yardstick, c)
    raise TinyFormulaError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
