"""Published figures the toolkit is checked against and its built-in formula is fitted on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TinyNet:
    """One of TinyNet A-E (Han et al., NeurIPS 2020, Table 3) on EfficientNet-B0."""

    name: str
    r: float
    d: float
    w: float
    resolution: int
    flops: float   # as published (rounded)
    top1: float    # ImageNet top-1, per cent


TINYNETS = (
    TinyNet("tinynet_a", 0.86, 1.2, 1.0, 192, 339e6, 76.8),
    TinyNet("tinynet_b", 0.84, 1.1, 0.75, 188, 202e6, 75.0),
    TinyNet("tinynet_c", 0.825, 0.85, 0.54, 184, 100e6, 71.2),
    TinyNet("tinynet_d", 0.68, 0.695, 0.54, 152, 52e6, 67.0),
    TinyNet("tinynet_e", 0.475, 0.6, 0.51, 106, 24e6, 59.9),
)

# EfficientNet's compound ("giant") formula: depth alpha^phi, width beta^phi, resolution gamma^phi.
GIANT_ALPHA = 1.2   # depth
GIANT_BETA = 1.1    # width
GIANT_GAMMA = 1.15  # resolution
