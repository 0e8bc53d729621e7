"""What every base network shares: channel rounding, stage strings, and the ``BaseNetwork`` API.

A base is declarative: a table of stages (timm-style strings such as ``ir_r2_k3_s2_e6_c24_se0.25``)
plus scaling rules. ``BaseNetwork.network(scale)`` turns it into a plain-data layer tree
(``tinyformula.nets.layers``); ``cost`` counts that tree and ``build`` makes torch modules from it.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache

from ...core.constraints import Integer, check
from ...core.errors import TinyFormulaError
from ..count import Cost, ModuleCost, module_costs, network_cost
from ..layers import Network, Sequential
from ..scale import Scale

# What a network's head and input may be: past these, counts take minutes or mean nothing.
NUM_CLASSES = Integer(1, 1_000_000, why="a classifier head, not an embedding table")
RESOLUTION_BASE = Integer(1, 4096, why="the input size at r = 1; no dataset here is larger")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``min_value``, default ``divisor``),
    adding one more ``divisor`` if rounding lost more than ``1 - round_limit`` of the value."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def round_channels(channels: int, multiplier: float = 1.0, divisor: int = 8) -> int:
    """Scale a channel count by the width multiplier and round it as EfficientNet/TinyNet do."""
    return make_divisible(channels * multiplier, divisor)


DEPTH_ROUNDINGS = ("round", "ceil")


def scale_depth(repeats: int, multiplier: float, rounding: str = "round") -> int:
    """How many of a stage's ``repeats`` blocks remain when depth is scaled by ``multiplier``.

    The one depth rule of every base, as timm's ``_scale_stage_depth``:

    * ``"round"``: ``max(1, round(repeats * multiplier))`` (TinyNet; Python's round, so halves
      go to the even neighbour as in timm);
    * ``"ceil"``: ``ceil(repeats * multiplier)`` (EfficientNet, MobileNetV2; at least 1 for any
      positive multiplier).

    Parameters
    ----------
    repeats : int
        Blocks in the stage at depth multiplier 1.
    multiplier : float
        The depth multiplier d (positive).
    rounding : {"round", "ceil"}
        Which rule.

    Returns
    -------
    int
        The stage's block count, at least 1.
    """
    if rounding == "round":
        return max(1, round(repeats * multiplier))
    if rounding == "ceil":
        return int(math.ceil(repeats * multiplier))
    raise ValueError(f"unknown depth rounding {rounding!r}; known: {', '.join(DEPTH_ROUNDINGS)}")


@dataclass(frozen=True)
class Stage:
    """One row of a stage table: ``repeats`` blocks of one type, the first with ``stride``."""

    block: str
    repeats: int
    kernel: int
    stride: int
    expand: float
    out: int
    se: float = 0.0


_STAGE_FIELDS = {"r": ("repeats", int), "k": ("kernel", int), "s": ("stride", int),
                 "e": ("expand", float), "c": ("out", int), "se": ("se", float)}


def parse_stage(text: str) -> Stage:
    """Decode a timm-style stage string, e.g. ``ir_r2_k3_s2_e6_c24_se0.25``."""
    block, *options = text.strip().split("_")
    values: dict = {"expand": 1.0, "se": 0.0}
    for option in options:
        match = re.fullmatch(r"([a-z]+)([0-9.]+)", option)
        if not match or match.group(1) not in _STAGE_FIELDS:
            raise ValueError(f"bad option {option!r} in stage string {text!r}")
        name, kind = _STAGE_FIELDS[match.group(1)]
        values[name] = kind(match.group(2))
    missing = {"repeats", "kernel", "stride", "out"} - values.keys()
    if missing:
        raise ValueError(f"stage string {text!r} lacks {', '.join(sorted(missing))}")
    return Stage(block=block, **values)


def parse_stages(table: str) -> tuple[Stage, ...]:
    """One stage string per non-empty line."""
    return tuple(parse_stage(line) for line in table.strip().splitlines() if line.strip())


class BaseNetwork(ABC):
    """A scalable base network: subclasses say how a :class:`Scale` shapes their layers."""

    name: str
    summary: str
    default_resolution: int = 224

    @abstractmethod
    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        """The layer tree at this scale (resolution does not change the layers)."""

    def network(self, scale: Scale | None = None, num_classes: int = 1000,
                resolution_base: int | None = None) -> Network:
        scale = _check_scale(scale)
        num_classes = check("num_classes", num_classes, NUM_CLASSES)
        resolution_base = check("resolution_base", self.default_resolution
                                if resolution_base is None else resolution_base,
                                RESOLUTION_BASE)
        resolution = scale.resolution(resolution_base)
        if resolution < 1:
            raise TinyFormulaError(
                f"r={scale.r:g} gives a {resolution}-pixel input at resolution base "
                f"{resolution_base}; r must be at least {1 / resolution_base:.4g}")
        return Network(body=self.layers(scale, num_classes), resolution=resolution,
                       num_classes=num_classes,
                       meta={"base": self.name, "r": scale.r, "d": scale.d, "w": scale.w,
                             "resolution_base": resolution_base})

    def cost(self, scale: Scale | None = None, num_classes: int = 1000,
             resolution_base: int | None = None) -> Cost:
        """FLOPs (fvcore's convention), parameters and activations, computed without torch."""
        return _cached_cost(self, _check_scale(scale), num_classes, resolution_base)

    def cost_breakdown(self, scale: Scale | None = None, num_classes: int = 1000,
                       resolution_base: int | None = None, depth: int = 1) -> list[ModuleCost]:
        """The cost of each named module of the built network, in forward order, without torch.

        ``depth=1``: the built network's children (``stem``, ``blocks``, ..., ``classifier``);
        ``depth=2`` opens those that are sequences (``blocks.0``, ``blocks.1``, ...). Names as in
        ``build(...).named_modules()`` and fvcore's ``by_module()``; the rows add up to
        :meth:`cost`. See :func:`tinyformula.cost.module_costs`.
        """
        return module_costs(self.network(scale, num_classes, resolution_base), depth)

    def build(self, scale: Scale | None = None, num_classes: int = 1000,
              resolution_base: int | None = None):
        """A ``torch.nn.Module``; its ``input_resolution`` is the image size to feed it."""
        from ..build import build_network

        return build_network(self.network(scale, num_classes, resolution_base))

    def __repr__(self) -> str:
        return f"<base {self.name}: {self.summary}>"


@lru_cache(maxsize=100_000)
def _cached_cost(base: BaseNetwork, scale: Scale, num_classes, resolution_base) -> Cost:
    return network_cost(base.network(scale, num_classes, resolution_base))


def _check_scale(scale) -> Scale:
    if scale is None:
        return Scale()
    if not isinstance(scale, Scale):
        raise TinyFormulaError(f"expected a tinyformula.Scale, got {type(scale).__name__}")
    return scale

