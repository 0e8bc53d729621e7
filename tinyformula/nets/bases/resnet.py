"""ResNet-50 (He et al., 2016) as timm and torchvision build it: bottleneck v1.5.

Architecture: 7x7 stride-2 conv to 64, BN, ReLU, 3x3 stride-2 max-pool (padding 1); four stages
of bottleneck blocks (1x1 conv to the stage width, BN, ReLU; 3x3 conv carrying the stage's
stride, BN, ReLU; 1x1 conv to 4x the width, BN), ReLU after the residual sum; the first block of
each stage has a projection shortcut (1x1 conv with the block's stride, BN); global average
pool; fully-connected classifier. 1x: 25,557,032 params, 4,111,512,576 fvcore FLOPs at 224 px.

Scaling rules (the TinyNet paper shrinks ResNet-50 too but gives no rounding; ours):

* w: every stage width (the bottleneck's inner width; its output stays 4x that) is
  ``round_channels(width * w)`` (nearest multiple of 8, as EfficientNet/TinyNet). The stem's 64
  scales the same way: a fixed 64-wide 7x7 stem at full resolution would cost as much as the
  rest of a w = 0.25 network, so shrinking by width could not reach small budgets.
* d: each stage keeps ``max(1, round(n * d))`` of its n = 3, 4, 6, 3 blocks (TinyNet's rule); the
  first (projection) block always stays, so d adds or removes identity blocks.
* r: resolution ``int(224 * r)``.
"""

from __future__ import annotations

from ..layers import Act, BatchNorm, Conv, GlobalAvgPool, Linear, MaxPool, Residual, Sequential
from ..scale import Scale
from .spec import BaseNetwork, round_channels, scale_depth

EXPANSION = 4  # a bottleneck's output is 4x its inner width

# The ResNet paper's Table 1, 50-layer column: (blocks, inner width, stride of the first block).
RESNET50_STAGES = (
    (3, 64, 1),   # conv2_x, 56 x 56 (after the stem's stride-2 conv and max-pool)
    (4, 128, 2),  # conv3_x, 28 x 28
    (6, 256, 2),  # conv4_x, 14 x 14
    (3, 512, 2),  # conv5_x, 7 x 7
)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, act: str | None = "relu") -> tuple:
    layers = (Conv(cin, cout, kernel, stride), BatchNorm(cout))
    return layers + (Act(act),) if act else layers


def bottleneck(cin: int, width: int, stride: int) -> Residual:
    cout = width * EXPANSION
    body = Sequential(conv_bn(cin, width, 1) + conv_bn(width, width, 3, stride)
                      + conv_bn(width, cout, 1, act=None))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(conv_bn(cin, cout, 1, stride, act=None))
    return Residual(body, shortcut, act="relu")


class ResNet(BaseNetwork):
    """A 7x7 stem, max-pool, a table of bottleneck stages, global pooling and a classifier."""

    def __init__(self, name: str, summary: str, stages: tuple, stem: int = 64):
        self.name = name
        self.summary = summary
        self.stages = stages
        self.stem = stem

    def layers(self, scale: Scale, num_classes: int) -> Sequential:
        stem = round_channels(self.stem, scale.w)
        stages, cin = [], stem
        for blocks, width, stride in self.stages:
            width = round_channels(width, scale.w)
            repeats = scale_depth(blocks, scale.d)
            first = bottleneck(cin, width, stride)
            cin = width * EXPANSION
            # The identity blocks are identical: one shared (immutable) description.
            stages.append(Sequential((first,) + (bottleneck(cin, width, 1),) * (repeats - 1)))
        return Sequential(
            (Sequential(conv_bn(3, stem, 7, 2) + (MaxPool(3, 2, padding=1),)),
             Sequential(tuple(stages)),
             GlobalAvgPool(),
             Linear(cin, num_classes)),
            names=("stem", "blocks", "pool", "classifier"),
        )


resnet50 = ResNet(
    name="resnet50",
    summary="ResNet-50 (bottleneck v1.5); w scales stem and stage widths, round depth",
    stages=RESNET50_STAGES,
)
