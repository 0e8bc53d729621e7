"""The base a spec declares: :class:`SpecNetwork` turns a :class:`~.netspec.NetworkSpec` and a
:class:`~tinyformula.nets.scale.Scale` into the plain-data layer tree that the analytic count
and the torch builder both read. Every built-in base is one (``tinyformula/nets/bases/*.py``;
the same specs as files in ``examples/bases/``).
"""

from __future__ import annotations

import json

from ...core.errors import TinyFormulaError
from ...core.files import checksum
from ..count import layer_cost
from ..layers import Act, BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, MaxPool, Sequential
from ..scale import Scale
from .blocks import BLOCKS, BlockContext, SqueezeRule, conv_bn_act
from .netspec import NetworkSpec
from .spec import BaseNetwork, Stage, make_divisible, scale_depth

# The smallest multiplier the search draws (sweep.space.MULTIPLIER_RANGE): a spec must still
# make a network at this fraction of its resolution.
SMALLEST_R = 0.25


# -- the base a spec makes --------------------------------------------------------------------


def stage_blocks(strings: tuple[Stage, ...], d: float, rounding: str,
                 rule: str) -> list[Stage]:
    """The block strings of one stage's blocks, in order, at depth multiplier ``d``."""
    repeats = [s.repeats for s in strings]
    if rule == "cycle":
        expanded = [s for s in strings for _ in range(s.repeats)]
        count = scale_depth(len(expanded), d, rounding)
        rest = expanded[1:] or expanded[:1]
        return [expanded[0]] + [rest[i % len(rest)] for i in range(count - 1)]
    # timm's _scale_stage_depth, expression for expression (float order included).
    num_repeat = sum(repeats)
    num_scaled = scale_depth(num_repeat, d, rounding)
    scaled = []
    for r in repeats[::-1]:
        rs = max(1, round((r / num_repeat * num_scaled)))
        scaled.append(rs)
        num_repeat -= r
        num_scaled -= rs
    return [s for s, n in zip(strings, scaled[::-1]) for _ in range(n)]


class SpecNetwork(BaseNetwork):
    """The base a :class:`NetworkSpec` declares."""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.name = spec.name
        self.summary = spec.summary
        self.default_resolution = spec.resolution
        self._rule = SqueezeRule(act=None if spec.se.act == "block" else spec.se.act,
                                 gate=spec.se.gate, reduce_from=spec.se.reduce_from,
                                 rounding=spec.se.rounding, divisor=spec.scaling.divisor)

    @classmethod
    def from_dict(cls, data, origin: str = "spec") -> "SpecNetwork":
        network = cls(NetworkSpec.from_dict(data, origin))
        network.check_input(int(network.default_resolution * SMALLEST_R), origin)
        return network

    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        spec, sc, w = self.spec, self.spec.scaling, scale.w

        def width(c: float) -> int:
            return make_divisible(c * w, sc.divisor)

        def rule_width(c: int, rule: str) -> int:
            if rule == "fixed":
                return c
            return max(c, width(c)) if rule == "at_least_base" else width(c)

        ctx = BlockContext(spec.act, self._rule, width, spec.layer_scale)
        fixed = sc.stem == "fixed" or w < sc.stem_fixed_below
        stem_width = spec.stem.channels if fixed else width(spec.stem.channels)
        stem = conv_bn_act(3, stem_width, spec.stem.kernel, spec.stem.stride,
                           spec.stem.act or spec.act)
        if spec.stem.pool:
            stem.append(MaxPool(3, 2, padding=1))

        built: dict = {}   # (block string, in width, stride) -> (layer, out width): shared
        stages, cin = [], stem_width
        for strings in spec.stages:
            blocks = []
            for i, stage in enumerate(stage_blocks(strings, scale.d, sc.depth, sc.stage_depth)):
                stride = stage.stride if i == 0 else 1
                key = (stage, cin, stride)
                if key not in built:
                    built[key] = BLOCKS[stage.block](cin, stage, stride, ctx)
                layer, cin = built[key]
                blocks.append(layer)
            stages.append(Sequential(tuple(blocks)))

        head, act = spec.head, spec.head.act or spec.act
        layers: list = [Sequential(tuple(stem)), Sequential(tuple(stages))]
        names = ["stem", "blocks"]
        if head.conv:
            features = rule_width(head.conv, head.conv_width)
            layers.append(Sequential(tuple(conv_bn_act(cin, features, 1, 1, act))))
            names.append("features" if head.pooled_conv else "head")
            cin = features
        layers.append(GlobalAvgPool(flatten=not head.pooled_conv))
        names.append("pool")
        if head.pooled_conv:
            pooled = rule_width(head.pooled_conv, head.pooled_width)
            conv = [Conv(cin, pooled, 1, bias=head.pooled_bias)]
            norm = [BatchNorm(pooled)] if head.pooled_norm else []
            layers.append(Sequential(tuple(conv + norm + [Act(act), Flatten()])))
            names.append("head")
            cin = pooled
        layers.append(Linear(cin, num_classes))
        names.append("classifier")
        return Sequential(tuple(layers), names=tuple(names))

    def check_input(self, resolution: int, origin: str | None = None) -> None:
        """Refuse a spec whose feature map vanishes at ``resolution`` px (r = d = w = 1): one
        line naming the stage."""
        resolution = max(1, resolution)
        network = self.layers(Scale(), 10)
        shape: tuple = (3, resolution, resolution)
        stem, blocks = network.layers[0], network.layers[1]
        parts = [("the stem", stem)] + [(f"stages[{i}]", stage)
                                        for i, stage in enumerate(blocks.layers)]
        parts += [(f"the {name}", layer) for name, layer in network.named_layers()
                  if name not in ("stem", "blocks")]
        for where, layer in parts:
            try:
                shape = layer_cost(layer, shape).shape
            except ValueError as error:
                raise TinyFormulaError(
                    f"{origin or self.name}: {where} at {resolution} px (the smallest input a "
                    f"search draws: r = {SMALLEST_R:g} of its resolution base): {error}"
                ) from None

    def record(self) -> dict:
        """What a run folder, a formula file and a model file keep of this base: the canonical
        spec and its checksum (so the base is rebuilt from them, without the file)."""
        body = self.spec.to_dict()
        return {"kind": "spec", "spec": body, "checksum": checksum(body)}

    def to_json(self) -> str:
        """The canonical spec as JSON (a spec file ``--base`` reads)."""
        return json.dumps(self.spec.to_dict(), indent=1) + "\n"


def spec_base(data: dict) -> SpecNetwork:
    """A built-in base from its spec dict (checked as any spec file is)."""
    return SpecNetwork.from_dict(data, origin=f"built-in spec {data.get('name')!r}")


__all__ = ["NetworkSpec", "SpecNetwork", "spec_base", "stage_blocks"]
