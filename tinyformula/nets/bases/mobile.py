"""The MobileNet family (EfficientNet, TinyNet, MobileNetV2, FD-MobileNet) built from stage tables.

Blocks follow timm's EfficientNet builder exactly, so counts equal timm's models:

* ``ds`` (depthwise-separable): dw kxk conv, BN, act, [SE], 1x1 conv, BN (no act after the 1x1);
* ``dsa`` (MobileNet v1's): dw kxk conv, BN, act, 1x1 conv, BN, act; never a shortcut;
* ``ir`` (inverted residual): 1x1 expand conv, BN, act, dw kxk conv, BN, act, [SE], 1x1 conv, BN;

``ds`` and ``ir`` get an identity shortcut when the stride is 1 and input and output widths agree.
Squeeze-excite reduces to ``se`` x the block's *input* channels (timm computes it as
``round(mid * se / expand)``, which we mirror).

Bases defined here (their scaling rules; resolution is ``int(224 * r)`` for all):

* ``efficientnet_b0``: TinyNet's rules (README.md): widths ``round_channels(c * w)``, stem fixed
  at 32, head ``max(1280, round_channels(1280 * w))``, ``max(1, round(n * d))`` blocks a stage.
* ``mobilenetv2_100``: MobileNetV2 (Sandler et al., 2018) as timm's ``_gen_mobilenet_v2`` builds
  it, ReLU6, no SE, with timm's rules (``channel_multiplier`` w, ``depth_multiplier`` d): every
  width, the stem's 32 included, ``round_channels(c * w)``; head
  ``max(1280, round_channels(1280 * w))``; ``ceil(n * d)`` blocks a stage. Equal to timm's
  models at every (r, d, w) of the reference JSON (1x: 3,504,872 params, 314,193,216 FLOPs).
"""

from __future__ import annotations

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
from .spec import (
    DEPTH_ROUNDINGS,
    BaseNetwork,
    Stage,
    make_divisible,
    parse_stages,
    round_channels,
    scale_depth,
)


@dataclass(frozen=True)
class MobileScalingRules:
    """How depth and width multipliers reach the stem, the stages and the head.

    ``depth_rounding``: ``"round"`` gives ``max(1, round(n * d))`` repeats (TinyNet);
    ``"ceil"`` gives ``ceil(n * d)`` (EfficientNet, MobileNetV2).
    ``scale_stem``: whether the stem width follows w (EfficientNet) or stays fixed (TinyNet).
    ``head_at_least_base``: head width ``max(base, round_channels(base * w))`` instead of the
    plain ``round_channels(base * w)``.

    A stage's repeats are its first block (which may change stride and width) followed by
    identical stride-1 blocks, so d adds or removes stride-1 blocks only.
    """

    depth_rounding: str = "round"
    scale_stem: bool = False
    head_at_least_base: bool = True

    def __post_init__(self):
        if self.depth_rounding not in DEPTH_ROUNDINGS:
            raise ValueError(f"unknown depth rounding {self.depth_rounding!r}; known: "
                             f"{', '.join(DEPTH_ROUNDINGS)}")

    def repeats(self, n: int, d: float) -> int:
        """Blocks kept of a stage of ``n``: :func:`~tinyformula.nets.bases.spec.scale_depth`."""
        return scale_depth(n, d, self.depth_rounding)


TINYNET_RULES = MobileScalingRules(depth_rounding="round", scale_stem=False,
                                   head_at_least_base=True)
EFFICIENTNET_RULES = MobileScalingRules(depth_rounding="ceil", scale_stem=True,
                                        head_at_least_base=False)
# timm's _gen_mobilenet_v2: EfficientNet's rules, but the head never narrows below 1280.
MOBILENETV2_RULES = MobileScalingRules(depth_rounding="ceil", scale_stem=True,
                                       head_at_least_base=True)


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int, act: str | None,
                groups: int = 1) -> list:
    layers = [Conv(cin, cout, kernel, stride, groups=groups), BatchNorm(cout)]
    return layers + [Act(act)] if act else layers


def depthwise_separable(cin: int, cout: int, stage: Stage, stride: int, act: str) -> list:
    layers = conv_bn_act(cin, cin, stage.kernel, stride, act, groups=cin)
    if stage.se:
        layers.append(SqueezeExcite(cin, round(cin * stage.se), act=act))
    return layers + conv_bn_act(cin, cout, 1, 1, None)


def depthwise_separable_act(cin: int, cout: int, stage: Stage, stride: int, act: str) -> list:
    return (conv_bn_act(cin, cin, stage.kernel, stride, act, groups=cin)
            + conv_bn_act(cin, cout, 1, 1, act))


def inverted_residual(cin: int, cout: int, stage: Stage, stride: int, act: str) -> list:
    mid = make_divisible(cin * stage.expand)
    layers = conv_bn_act(cin, mid, 1, 1, act)
    layers += conv_bn_act(mid, mid, stage.kernel, stride, act, groups=mid)
    if stage.se:
        layers.append(SqueezeExcite(mid, round(mid * (stage.se / stage.expand)), act=act))
    return layers + conv_bn_act(mid, cout, 1, 1, None)


BLOCKS = {"ds": depthwise_separable, "dsa": depthwise_separable_act, "ir": inverted_residual}
NO_SHORTCUT = {"dsa"}


class MobileNetwork(BaseNetwork):
    """A stem conv, a table of ``ds``/``dsa``/``ir`` stages, a 1x1 head conv (``head=None``: none),
    global pooling and a classifier."""

    def __init__(self, name: str, summary: str, stages: str, rules: MobileScalingRules,
                 act: str, stem: int = 32, head: int | None = 1280):
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

        stages, cin = [], stem
        for stage in self.stages:
            cout = round_channels(stage.out, w)
            repeats = rules.repeats(stage.repeats, scale.d)
            first = self._block(stage, cin, cout, stage.stride)
            # Blocks after the first are identical: one shared (immutable) description.
            rest = (self._block(stage, cout, cout, 1),) * (repeats - 1) if repeats > 1 else ()
            stages.append(Sequential((first,) + rest))
            cin = cout

        layers: list = [Sequential(tuple(conv_bn_act(3, stem, 3, 2, self.act))),
                  Sequential(tuple(stages))]
        names = ["stem", "blocks"]
        if self.head is not None:
            head = round_channels(self.head, w)
            if rules.head_at_least_base:
                head = max(self.head, head)
            layers.append(Sequential(tuple(conv_bn_act(cin, head, 1, 1, self.act))))
            names.append("head")
            cin = head
        layers += [GlobalAvgPool(), Linear(cin, num_classes)]
        names += ["pool", "classifier"]
        return Sequential(tuple(layers), names=tuple(names))

    def _block(self, stage: Stage, cin: int, cout: int, stride: int):
        body = Sequential(tuple(BLOCKS[stage.block](cin, cout, stage, stride, self.act)))
        if stride == 1 and cin == cout and stage.block not in NO_SHORTCUT:
            return Residual(body)
        return body


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


MOBILENETV2_STAGES = """
    ds_r1_k3_s1_c16
    ir_r2_k3_s2_e6_c24
    ir_r3_k3_s2_e6_c32
    ir_r4_k3_s2_e6_c64
    ir_r3_k3_s1_e6_c96
    ir_r3_k3_s2_e6_c160
    ir_r1_k3_s1_e6_c320
"""

mobilenetv2_100 = MobileNetwork(
    name="mobilenetv2_100",
    summary="MobileNetV2 1.0 with timm's scaling rules (stem and head scaled, ceil depth)",
    stages=MOBILENETV2_STAGES,
    rules=MOBILENETV2_RULES,
    act="relu6",
)
