"""tinyformula: find the best way to shrink a network to a compute budget (TinyNet's formula).

Public API: :class:`Scale`, :func:`get_base`, :func:`list_bases`. Importing this package does
not import torch; only building modules does.
"""

from .bases import get_base, list_bases
from .cost import Cost
from .errors import TinyFormulaError
from .scale import Scale

__version__ = "0.1.0"

__all__ = ["Cost", "Scale", "TinyFormulaError", "get_base", "list_bases", "__version__"]
