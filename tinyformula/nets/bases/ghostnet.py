"""GhostNet 1.0x (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020) as timm
builds ``ghostnet_100``: 5,182,508 params, 148,273,936 fvcore FLOPs at 224 px (the paper: 141M).

* Ghost module (ratio 2): a 1x1 conv, BN (ReLU) makes ``ceil(out / 2)`` channels; a 3x3
  depthwise conv, BN (ReLU) makes as many again from them; concatenated, sliced to ``out``.
* Ghost bottleneck: ghost module to the ``mid`` width (ReLU); a depthwise kxk conv + BN if the
  stride is 2; squeeze-excite if the table says so (reduce to ``make_divisible(mid / 4, 4)``,
  ReLU, hard-sigmoid gate); ghost module to ``out`` (no ReLU); plus a shortcut: identity when
  stride 1 and in == out, else depthwise kxk conv (block's stride) + BN + 1x1 conv + BN.
* Stem 3x3 stride-2 conv to 16, BN, ReLU; after the blocks a 1x1 conv to 960, BN, ReLU; global
  average pool; 1x1 conv to 1280 *with bias* on the pooled 1x1 map (fvcore counts it: 960 x 1280),
  ReLU; flatten; fully-connected classifier.

Scaling rules:

* w is GhostNet's own width multiplier (timm's ``width``): every width -- stem, each block's
  mid and out, the 960 conv -- is ``make_divisible(c * w, 4)``; the 1280-wide head after pooling
  stays 1280 (as timm's ``ghostnet_050``/``ghostnet_130``).
* d: a stage is a run of blocks with one output width (so the 80- and 112-wide blocks of the
  paper's 14x14 stage are two stages, as EfficientNet's table splits them). A stage of n blocks
  keeps ``max(1, round(n * d))`` (TinyNet's rule): its first block, which may change stride and
  width, then its stride-1 blocks in table order, cycled when d > 1 (a one-block stage repeats
  its own block at stride 1). So d adds or removes stride-1 blocks, and more depth never costs less.
* r: resolution ``int(224 * r)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..layers import (
    Act,
    BatchNorm,
    Conv,
    Flatten,
    GhostModule,
    GlobalAvgPool,
    Linear,
    Residual,
    Sequential,
    SqueezeExcite,
)
from ..scale import Scale
from .mobile import conv_bn_act
from .spec import BaseNetwork, make_divisible, scale_depth


class GhostBlock(NamedTuple):
    kernel: int
    mid: int
    out: int
    se: float
    stride: int


# The paper's Table 1 (timm's cfgs), one G-bneck a row, grouped into stages of one output width.
GHOSTNET_STAGES = (
    #            k  mid  out  SE   stride
    (GhostBlock(3,  16,  16, 0.0,  1),),
    (GhostBlock(3,  48,  24, 0.0,  2),
     GhostBlock(3,  72,  24, 0.0,  1)),
    (GhostBlock(5,  72,  40, 0.25, 2),
     GhostBlock(5, 120,  40, 0.25, 1)),
    (GhostBlock(3, 240,  80, 0.0,  2),
     GhostBlock(3, 200,  80, 0.0,  1),
     GhostBlock(3, 184,  80, 0.0,  1),
     GhostBlock(3, 184,  80, 0.0,  1)),
    (GhostBlock(3, 480, 112, 0.25, 1),
     GhostBlock(3, 672, 112, 0.25, 1)),
    (GhostBlock(5, 672, 160, 0.25, 2),
     GhostBlock(5, 960, 160, 0.0,  1),
     GhostBlock(5, 960, 160, 0.25, 1),
     GhostBlock(5, 960, 160, 0.0,  1),
     GhostBlock(5, 960, 160, 0.25, 1)),
)


def ghost_module(cin: int, cout: int, act: str | None, ratio: int = 2) -> GhostModule:
    primary = math.ceil(cout / ratio)
    return GhostModule(
        primary=Sequential(tuple(conv_bn_act(cin, primary, 1, 1, act))),
        cheap=Sequential(tuple(conv_bn_act(primary, primary * (ratio - 1), 3, 1, act,
                                           groups=primary))),
        out_ch=cout)


def ghost_bottleneck(cin: int, mid: int, cout: int, block: GhostBlock, stride: int) -> Residual:
    k = block.kernel
    body: list = [ghost_module(cin, mid, "relu")]
    if stride > 1:
        body += [Conv(mid, mid, k, stride, groups=mid), BatchNorm(mid)]
    if block.se:
        body.append(SqueezeExcite(mid, make_divisible(mid * block.se, 4), act="relu",
                                  gate="hard_sigmoid"))
    body.append(ghost_module(mid, cout, None))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential((Conv(cin, cin, k, stride, groups=cin), BatchNorm(cin),
                               Conv(cin, cout, 1), BatchNorm(cout)))
    return Residual(Sequential(tuple(body)), shortcut)


class GhostNet(BaseNetwork):
    """A stem conv, a table of ghost-bottleneck stages, a 1x1 conv, pooling, a 1x1 head conv
    with bias and a classifier."""

    def __init__(self, name: str, summary: str, stages: tuple, stem: int = 16,
                 features: int = 960, head: int = 1280):
        self.name = name
        self.summary = summary
        self.stages = stages
        self.stem = stem
        self.features = features
        self.head = head

    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        def width(c: int) -> int:
            return make_divisible(c * scale.w, 4)

        stem = width(self.stem)
        stages, cin = [], stem
        for blocks in self.stages:
            first, rest = blocks[0], blocks[1:] or (blocks[0],)
            cout = width(first.out)
            layers = [ghost_bottleneck(cin, width(first.mid), cout, first, first.stride)]
            # Stride-1 blocks keep the width: build each once and reuse it when cycling.
            repeats = [ghost_bottleneck(cout, width(b.mid), cout, b, 1) for b in rest]
            count = scale_depth(len(blocks), scale.d)
            layers += [repeats[i % len(repeats)] for i in range(count - 1)]
            stages.append(Sequential(tuple(layers)))
            cin = cout

        features = width(self.features)
        return Sequential(
            (Sequential(tuple(conv_bn_act(3, stem, 3, 2, "relu"))),
             Sequential(tuple(stages)),
             Sequential(tuple(conv_bn_act(cin, features, 1, 1, "relu"))),
             GlobalAvgPool(flatten=False),
             Sequential((Conv(features, self.head, 1, bias=True), Act("relu"), Flatten())),
             Linear(self.head, num_classes)),
            names=("stem", "blocks", "features", "pool", "head", "classifier"),
        )


ghostnet_100 = GhostNet(
    name="ghostnet_100",
    summary="GhostNet 1.0x as timm builds it; w = GhostNet's width multiplier (divisor 4)",
    stages=GHOSTNET_STAGES,
)
