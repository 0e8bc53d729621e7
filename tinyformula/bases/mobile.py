"""The inverted-residual family (EfficientNet, TinyNet, MobileNetV2) built from stage tables.

Blocks follow timm's EfficientNet builder exactly, so counts equal timm's models:

* ``ds`` (depthwise-separable): dw kxk conv, BN, act, [SE], 1x1 conv, BN;
* ``ir`` (inverted residual): 1x1 expand conv, BN, act, dw kxk conv, BN, act, [SE], 1x1 conv, BN;

each with an identity shortcut when its stride is 1 and its input and output widths agree.
Squeeze-excite reduces to ``se`` x the block's *input* channels (timm computes it as
``round(mid * se / expand)``, which we mirror).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..layers import (
    Act,
    BatchNorm,
    Conv,
    GlobalAvgPool,
    Linear,
    Residual,
    Sequential,
    SqueezeExcite,
)
from ..scale import Scale
from .spec import BaseNetwork, Stage, make_divisible, parse_stages, round_channels


@dataclass(frozen=True)
class MobileScalingRules:
    """How depth and width multipliers reach the stem, the stages and the head.

    ``depth_rounding``: ``"round"`` gives ``max(1, round(n * d))`` repeats (TinyNet);
    ``"ceil"`` gives ``ceil(n * d)`` (EfficientNet, MobileNetV2).
    ``scale_stem``: whether the stem width follows w (EfficientNet) or stays fixed (TinyNet).
    ``head_at_least_base``: head width ``max(base, round_channels(base * w))`` instead of the
    plain ``round_channels(base * w)``.
    """

    depth_rounding: str = "round"
    scale_stem: bool = False
    head_at_least_base: bool = True

    def repeats(self, n: int, d: float) -> int:
        if self.depth_rounding == "round":
            return max(1, round(n * d))
        return int(math.ceil(n * d))


TINYNET_RULES = MobileScalingRules(depth_rounding="round", scale_stem=False,
                                   head_at_least_base=True)
EFFICIENTNET_RULES = MobileScalingRules(depth_rounding="ceil", scale_stem=True,
                                        head_at_least_base=False)


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int, act: str | None,
                groups: int = 1) -> list:
    layers = [Conv(cin, cout, kernel, stride, groups=groups), BatchNorm(cout)]
    return layers + [Act(act)] if act else layers


def depthwise_separable(cin: int, cout: int, stage: Stage, stride: int, act: str) -> list:
    layers = conv_bn_act(cin, cin, stage.kernel, stride, act, groups=cin)
    if stage.se:
        layers.append(SqueezeExcite(cin, round(cin * stage.se), act=act))
    return layers + conv_bn_act(cin, cout, 1, 1, None)


def inverted_residual(cin: int, cout: int, stage: Stage, stride: int, act: str) -> list:
    mid = make_divisible(cin * stage.expand)
    layers = conv_bn_act(cin, mid, 1, 1, act)
    layers += conv_bn_act(mid, mid, stage.kernel, stride, act, groups=mid)
    if stage.se:
        layers.append(SqueezeExcite(mid, round(mid * (stage.se / stage.expand)), act=act))
    return layers + conv_bn_act(mid, cout, 1, 1, None)


BLOCKS = {"ds": depthwise_separable, "ir": inverted_residual}


class MobileNetwork(BaseNetwork):
    """A base made of a stem conv, a table of ``ds``/``ir`` stages, a 1x1 head conv and a classifier."""

    def __init__(self, name: str, summary: str, stages: str, rules: MobileScalingRules,
                 act: str, stem: int = 32, head: int = 1280):
        self.name = name
        self.summary = summary
        self.stages = parse_stages(stages)
        self.rules = rules
        self.act = act
        self.stem = stem
        self.head = head

    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        w, rules = scale.w, self.rules
        stem = round_channels(self.stem, w) if rules.scale_stem else self.stem
        head = round_channels(self.head, w)
        if rules.head_at_least_base:
            head = max(self.head, head)

        stages, cin = [], stem
        for stage in self.stages:
            cout = round_channels(stage.out, w)
            repeats = rules.repeats(stage.repeats, scale.d)
            first = self._block(stage, cin, cout, stage.stride)
            # Blocks after the first are identical: one shared (immutable) description.
            rest = (self._block(stage, cout, cout, 1),) * (repeats - 1) if repeats > 1 else ()
            stages.append(Sequential((first,) + rest))
            cin = cout

        return Sequential(
            (Sequential(tuple(conv_bn_act(3, stem, 3, 2, self.act))),
             Sequential(tuple(stages)),
             Sequential(tuple(conv_bn_act(cin, head, 1, 1, self.act))),
             GlobalAvgPool(),
             Linear(head, num_classes)),
            names=("stem", "blocks", "head", "pool", "classifier"),
        )

    def _block(self, stage: Stage, cin: int, cout: int, stride: int):
        body = Sequential(tuple(BLOCKS[stage.block](cin, cout, stage, stride, self.act)))
        return Residual(body) if stride == 1 and cin == cout else body


EFFICIENTNET_B0_STAGES = """
    ds_r1_k3_s1_e1_c16_se0.25
    ir_r2_k3_s2_e6_c24_se0.25
    ir_r2_k5_s2_e6_c40_se0.25
    ir_r3_k3_s2_e6_c80_se0.25
    ir_r3_k5_s1_e6_c112_se0.25
    ir_r4_k5_s2_e6_c192_se0.25
    ir_r1_k3_s1_e6_c320_se0.25
"""

efficientnet_b0 = MobileNetwork(
    name="efficientnet_b0",
    summary="EfficientNet-B0 with TinyNet's scaling rules (stem fixed at 32, round depth)",
    stages=EFFICIENTNET_B0_STAGES,
    rules=TINYNET_RULES,
    act="swish",
)
