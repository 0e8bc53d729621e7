"""The search: sample candidates, train them, keep the Pareto frontier, fit a formula.

* :mod:`.config`, :mod:`.presets`: a search's settings, declared once, and its sizes;
* :mod:`.space`: the samplers; :mod:`.trials`: typed trials;
* :mod:`.store`, :mod:`.migrations`: ``trials.sqlite``, one committed row per trial;
* :mod:`.pareto`: dominance, the frontier and non-dominated fronts;
* :mod:`.halving`, :mod:`.fidelity`: successive halving and how faithful its rungs are;
* :mod:`.driver`: ``search()``; :mod:`.results`: reading a run, its formula and summary;
* :mod:`.pooling`: one formula fitted on several searches that differ only in their seed;
* :mod:`.validation`: ``validate()``, a formula checked on a longer schedule.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .config import SearchConfig
    from .driver import search
    from .results import SearchResult, load_run

__getattr__, __dir__ = lazy_exports(__name__, {
    "SearchConfig": ".config",
    "search": ".driver",
    "SearchResult": ".results",
    "load_run": ".results",
})

__all__ = ["SearchConfig", "SearchResult", "load_run", "search"]
