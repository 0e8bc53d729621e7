"""Pictures of a search: figure data (:mod:`.data`) apart from drawing, one module per figure
(:mod:`.frontier`, :mod:`.formula`, :mod:`.budget`, :mod:`.latency`, :mod:`.rungs`), a shared
look (:mod:`.style`), and :func:`plot_run`, which writes a run's figures (:mod:`.run`).

Figures are ``matplotlib.figure.Figure`` objects on the Agg canvas, never pyplot
(:mod:`tinyformula.core.figures`): no display is needed and no global backend is switched.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .budget import figure_budget
    from .formula import figure_formula
    from .frontier import figure_frontier
    from .latency import figure_flops_vs_latency
    from .run import plot_run
    from .rungs import figure_rungs

__getattr__, __dir__ = lazy_exports(__name__, {
    "figure_budget": ".budget",
    "figure_formula": ".formula",
    "figure_frontier": ".frontier",
    "figure_flops_vs_latency": ".latency",
    "figure_rungs": ".rungs",
    "plot_run": ".run",
})

__all__ = ["figure_budget", "figure_flops_vs_latency", "figure_formula", "figure_frontier",
           "figure_rungs", "plot_run"]
