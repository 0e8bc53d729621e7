"""Latency as a cost: measured soundly (:mod:`.measure`), tabulated per block (:mod:`.units`,
:mod:`.table`), corrected on whole networks (:mod:`.calibration`) and predicted
(:mod:`.model`)."""

from typing import TYPE_CHECKING

from ...core.lazy import lazy_exports

if TYPE_CHECKING:
    from .calibration import Calibration, calibration_scales
    from .measure import Protocol, Setting, Timing, machine_description, measure_network
    from .model import LatencyModel

__getattr__, __dir__ = lazy_exports(__name__, {
    "Calibration": ".calibration",
    "calibration_scales": ".calibration",
    "Protocol": ".measure",
    "Setting": ".measure",
    "Timing": ".measure",
    "machine_description": ".measure",
    "measure_network": ".measure",
    "LatencyModel": ".model",
})

__all__ = ["Calibration", "LatencyModel", "Protocol", "Setting", "Timing",
           "calibration_scales", "machine_description", "measure_network"]
