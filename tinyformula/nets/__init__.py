"""Networks as data: scaling multipliers, the layer tree, its analytic count, the torch
builder, and the base networks declared as stage tables.

* :mod:`.scale`: :class:`Scale`, the (r, d, w) a base is twisted by;
* :mod:`.layers`: the plain-data layer tree both the count and the builder read;
* :mod:`.count`: FLOPs, parameters and activations of a tree, without torch;
* :mod:`.build`: the same tree as ``torch.nn`` modules (the only module here importing torch);
* :mod:`.bases`: the registry of base networks and their stage tables.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .bases import BaseNetwork, get_base, list_bases, register_base
    from .count import Cost
    from .scale import Scale

__getattr__, __dir__ = lazy_exports(__name__, {
    "BaseNetwork": ".bases",
    "get_base": ".bases",
    "list_bases": ".bases",
    "register_base": ".bases",
    "Cost": ".count",
    "Scale": ".scale",
})

__all__ = ["BaseNetwork", "Cost", "Scale", "get_base", "list_bases", "register_base"]
