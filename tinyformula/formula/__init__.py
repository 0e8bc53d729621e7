"""The Tiny Formula: r(c) and d(c) fitted on a Pareto frontier, and the width that hits a budget.

* :mod:`.solve`: a budget and (r, d) to a configuration (the width solver, the resolution
  search, the inverted giant formula);
* :mod:`.gp`: the Gaussian processes and their posterior, evaluated without scikit-learn;
* :mod:`.estimator`: :class:`TinyFormula`, a scikit-learn-style estimator;
* :mod:`.recommendation`: its answer for a budget; :mod:`.file_format`: its file;
* :mod:`.builtin`, :mod:`.published`: the formula fitted on TinyNet A-E, and their figures;
* :mod:`.quality`: how far to trust a fitted formula; :mod:`.loading`: a formula loaded for use.

Nothing here imports torch: ``tinyformula predict`` answers in pure Python.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .estimator import MIN_POINTS, TinyFormula
    from .loading import load_formula
    from .recommendation import Recommendation, giant_recommendation
    from .solve import BudgetUnreachable

__getattr__, __dir__ = lazy_exports(__name__, {
    "MIN_POINTS": ".estimator",
    "TinyFormula": ".estimator",
    "load_formula": ".loading",
    "Recommendation": ".recommendation",
    "giant_recommendation": ".recommendation",
    "BudgetUnreachable": ".solve",
})

__all__ = ["MIN_POINTS", "BudgetUnreachable", "Recommendation", "TinyFormula",
           "giant_recommendation", "load_formula"]
