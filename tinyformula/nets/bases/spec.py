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
    """One block string of a stage table: ``repeats`` blocks of one kind, the first with
    ``stride`` (the first block string of a stage carries the stage's stride).

    ``act`` overrides the network's activation (timm's ``nre``, ``nr6``, ``nhs``, ``nsw``);
    ``skip`` forces (True) or forbids (False) the identity shortcut where None leaves it to the
    block kind; ``start`` and ``end`` are the universal inverted bottleneck's extra depthwise
    kernels (timm's ``a`` and ``p``; 0: none); ``mid`` is a ghost bottleneck's hidden width.
    """

    block: str
    repeats: int
    kernel: int
    stride: int
    expand: float
    out: int
    se: float = 0.0
    act: str | None = None
    skip: bool | None = None
    start: int = 0
    end: int = 0
    mid: int = 0


# Option letters of a block string: the field each sets and its type. ``se`` before ``s``.
_STAGE_FIELDS = {"r": ("repeats", int), "k": ("kernel", int), "s": ("stride", int),
                 "e": ("expand", float), "c": ("out", int), "se": ("se", float),
                 "a": ("start", int), "p": ("end", int), "m": ("mid", int)}
# timm's activation options: ``nre`` is ReLU, and so on.
STAGE_ACTS = {"nre": "relu", "nr6": "relu6", "nhs": "hard_swish", "nsw": "swish"}
_STAGE_FLAGS = {"skip": True, "noskip": False}
_REQUIRED = ("repeats", "kernel", "stride", "out")
_NUMBER = re.compile(r"([a-z]+)([0-9]+(?:\.[0-9]+)?)")


def parse_stage(text: str) -> Stage:
    """Decode a timm-style block string, e.g. ``ir_r2_k3_s2_e6_c24_se0.25`` or
    ``uir_r1_a5_k5_s2_e3_c96``; a ValueError names what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a block string must be a non-empty string, got {text!r}")
    block, *options = text.strip().split("_")
    values: dict = {"expand": 1.0, "se": 0.0}
    for option in options:
        if option in STAGE_ACTS:
            values["act"] = STAGE_ACTS[option]
            continue
        if option in _STAGE_FLAGS:
            values["skip"] = _STAGE_FLAGS[option]
            continue
        match = _NUMBER.fullmatch(option)
        if not match or match.group(1) not in _STAGE_FIELDS:
            raise ValueError(f"bad option {option!r} in block string {text!r}")
        name, kind = _STAGE_FIELDS[match.group(1)]
        if name in values and name not in ("expand", "se"):
            raise ValueError(f"option {match.group(1)!r} given twice in block string {text!r}")
        try:
            values[name] = kind(match.group(2))
        except ValueError:
            raise ValueError(f"option {option!r} in block string {text!r} must be a whole "
                             f"number") from None
    missing = [name for name in _REQUIRED if name not in values]
    if missing:
        letters = {field: letter for letter, (field, _) in _STAGE_FIELDS.items()}
        raise ValueError(f"block string {text!r} lacks {', '.join(letters[m] for m in missing)}"
                         f" ({', '.join(missing)})")
    return Stage(block=block, **values)


def parse_stages(table: str) -> tuple[Stage, ...]:
    """One stage string per non-empty line."""
    return tuple(parse_stage(line) for line in table.strip().splitlines() if line.strip())


class BaseNetwork(ABC):
    """A scalable base network: subclasses say how a :class:`Scale` shapes their layers.

    ``counted`` says how its costs are known: ``"analytic"`` (counted from the layer tree,
    without torch) or ``"traced"`` (a PyTorch model built and counted by fvcore, cached:
    :class:`~tinyformula.nets.bases.traced.TracedBase`).
    """

    name: str
    summary: str
    default_resolution: int = 224
    counted: str = "analytic"

    @abstractmethod
    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        """The layer tree at this scale (resolution does not change the layers)."""

    def structure(self, scale: Scale, num_classes: int):
        """A hashable value equal for two scales exactly when they build the same network at
        the same input size (the layer tree here): how the search tells candidates apart."""
        return self.layers(scale, num_classes)

    def counting(self) -> dict:
        """How this base's costs are counted, as plain data (``bases``, the run summary)."""
        return {"counted": self.counted}

    def record(self) -> dict | None:
        """What a run folder, a formula file and a model file keep of this base beyond its
        name, so it can be rebuilt elsewhere (None: the name is enough, a built-in base)."""
        return None

    def check_input(self, resolution: int, origin: str | None = None) -> None:
        """Refuse (one line) a base whose feature map vanishes at ``resolution`` px."""

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
    network = base.network(scale, num_classes, resolution_base)
    try:
        return network_cost(network)
    except TinyFormulaError:
        raise
    except ValueError as error:  # a feature map vanished, a width does not fit its layer
        raise TinyFormulaError(f"{base.name} at {scale}, {network.resolution} px: {error}"
                               ) from None


def _check_scale(scale) -> Scale:
    if scale is None:
        return Scale()
    if not isinstance(scale, Scale):
        raise TinyFormulaError(f"expected a tinyformula.Scale, got {type(scale).__name__}")
    return scale

