"""How c is measured: the yardstick (:mod:`.yardstick`), the costs it can count or predict as
registered meters (:mod:`.meters`: FLOPs, parameters, activations, latency), budgets
(:mod:`.budgets`) and the latency table (:mod:`.latency`)."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .budgets import SUMMARY_BUDGETS, check_budget
    from .meters import Meter, get_meter, register_meter
    from .yardstick import COST_NAMES, Configuration, Yardstick

__getattr__, __dir__ = lazy_exports(__name__, {
    "SUMMARY_BUDGETS": ".budgets",
    "check_budget": ".budgets",
    "Meter": ".meters",
    "get_meter": ".meters",
    "register_meter": ".meters",
    "COST_NAMES": ".yardstick",
    "Configuration": ".yardstick",
    "Yardstick": ".yardstick",
})

__all__ = ["COST_NAMES", "Configuration", "Meter", "SUMMARY_BUDGETS", "Yardstick",
           "check_budget", "get_meter", "register_meter"]
