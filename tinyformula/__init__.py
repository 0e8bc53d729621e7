"""tinyformula: find the best way to shrink a network to a compute budget (TinyNet's formula).

Public API: :class:`Scale`, :class:`Yardstick` (how c is measured), :class:`Configuration`,
:func:`get_base`, :func:`list_bases`, :class:`TinyFormula`, :class:`SearchConfig`,
:func:`search` and :func:`load_run` (returning a :class:`SearchResult`), :func:`plot_run`,
:func:`create_model` and :func:`load_model`. Importing the package imports neither torch nor
scikit-learn; the heavier pieces load when first used.
"""

from .bases import get_base, list_bases
from .cost import Cost
from .errors import TinyFormulaError
from .scale import Scale
from .yardstick import Configuration, Yardstick

__version__ = "0.1.0"

_LAZY = {"TinyFormula": ("formula", "TinyFormula"), "search": ("driver", "search"),
         "load_run": ("results", "load_run"), "SearchResult": ("results", "SearchResult"),
         "Run": ("results", "SearchResult"), "SearchConfig": ("search_config", "SearchConfig"),
         "create_model": ("models", "create_model"), "load_model": ("models", "load_model"),
         "plot_run": ("plots", "plot_run")}


def __getattr__(name):
    """Load the formula and the search on first use, so `tinyformula predict` stays fast."""
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'tinyformula' has no attribute {name!r}")


__all__ = ["Configuration", "Cost", "Run", "Scale", "SearchConfig", "SearchResult",
           "TinyFormula", "TinyFormulaError", "Yardstick", "create_model", "get_base",
           "list_bases", "load_model", "load_run", "plot_run", "search", "__version__"]
