"""The correction from a sum of block latencies to a whole network's latency, and the networks
it is fitted on.

Summing isolated blocks misses what happens between them (container calls, cache effects), so
a table predicts ``offset + factor x (sum of unit latencies)``, with the line fitted on a few
whole networks measured end to end. Which networks is the caller's choice
(:meth:`~tinyformula.cost.latency.model.LatencyModel.calibrate` takes them); by default
:func:`calibration_scales` draws them here, from the paper's search space (r, d, w log-uniform
in [0.25, 4], kept where their FLOPs are 3% to 100% of the base's, distinct networks), with a
fixed seed, so every table of a machine is calibrated on the same networks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ...core.numeric import least_squares_line
from ...nets.bases.spec import BaseNetwork
from ...nets.scale import Scale
from .measure import CALIBRATION_NETWORKS

CALIBRATION_SEED = 12345
CALIBRATION_MULTIPLIERS = (0.25, 4.0)   # the paper's search space
CALIBRATION_C_RANGE = (0.03, 1.0)       # FLOPs relative to the base: the sizes searches study


def calibration_scales(base: BaseNetwork, num_classes: int, resolution_base: int | None,
                       count: int = CALIBRATION_NETWORKS,
                       seed: int = CALIBRATION_SEED) -> list[Scale]:
    """``count`` distinct networks of ``base`` to calibrate a latency table on: r, d and w
    log-uniform in [0.25, 4] (4 decimals), kept when their FLOPs fall between 3% and 100% of
    the base's at r = d = w = 1 and no earlier draw built the same network."""
    rng = random.Random(seed)
    low, high = (math.log(m) for m in CALIBRATION_MULTIPLIERS)
    reference = base.cost(Scale(), num_classes, resolution_base).flops
    scales: list[Scale] = []
    seen: set = set()
    while len(scales) < count:
        scale = Scale(*(round(math.exp(rng.uniform(low, high)), 4) for _ in range(3)))
        network = base.network(scale, num_classes, resolution_base) \
            if scale.resolution(resolution_base or base.default_resolution) >= 1 else None
        if network is None:
            continue
        c = base.cost(scale, num_classes, resolution_base).flops / reference
        key = (network.resolution, network.body)
        if CALIBRATION_C_RANGE[0] <= c <= CALIBRATION_C_RANGE[1] and key not in seen:
            seen.add(key)
            scales.append(scale)
    return scales


@dataclass(frozen=True)
class Calibration:
    """``measured ~ offset_ms + factor x sum of unit latencies``, fitted on whole networks."""

    offset_ms: float
    factor: float
    points: tuple  # ((unit sum ms, measured ms), ...)

    def to_dict(self) -> dict:
        return {"offset_ms": self.offset_ms, "factor": self.factor,
                "points": [list(p) for p in self.points]}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(float(data["offset_ms"]), float(data["factor"]),
                   tuple(tuple(p) for p in data["points"]))

    @classmethod
    def fit(cls, points: list[tuple[float, float]]) -> "Calibration":
        """Least squares on *relative* error (weights 1/measured^2): a 10% miss on a 2 ms
        network counts as much as one on a 50 ms network. With fewer than two distinct unit
        sums, or a fit that is not increasing, a plain ratio."""
        line = least_squares_line([s for s, _ in points], [m for _, m in points],
                                  weights=[1 / m ** 2 for _, m in points])
        if line is not None and line[1] > 0:
            return cls(line[0], line[1], tuple(points))
        ratio = sum(m for _, m in points) / sum(s for s, _ in points)
        return cls(0.0, ratio, tuple(points))
