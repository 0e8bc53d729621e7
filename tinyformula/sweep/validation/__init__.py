"""Validating formulas: ``validate()`` trains each formula's network at each budget on a longer
schedule than the search, with seeds it never used, against fixed formulas and the search's own
best networks, and scores them on the split the search never scored on.

* :mod:`.config`: the settings, presets and schedules; :mod:`.plan`: what is trained;
* :mod:`.store`: ``validation.sqlite``, one committed row per training;
* :mod:`.driver`: ``validate()``; :mod:`.result`: :class:`ValidationResult` and its files.

The maths (paired differences, seed noise, verdicts, falls, fidelity) is
:mod:`tinyformula.formula.validation`'s; the figure :mod:`tinyformula.viz.validation`'s.
"""

from typing import TYPE_CHECKING

from ...core.lazy import lazy_exports

if TYPE_CHECKING:
    from .config import VALIDATION_PRESETS, ValidationConfig
    from .driver import validate
    from .result import ValidationResult, load_validation

__getattr__, __dir__ = lazy_exports(__name__, {
    "VALIDATION_PRESETS": ".config",
    "ValidationConfig": ".config",
    "validate": ".driver",
    "ValidationResult": ".result",
    "load_validation": ".result",
})

__all__ = ["VALIDATION_PRESETS", "ValidationConfig", "ValidationResult", "load_validation",
           "validate"]
