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

As a spec: ``bot`` blocks (:mod:`.blocks`; ``c`` is the block's output, ``e`` the bottleneck's
expansion, so the inner width is ``round_channels(c / e * w)`` and the output 4x that), a 7x7
stem with a max-pool, no head conv.
"""

from __future__ import annotations

from .declared import spec_base

# The ResNet paper's Table 1, 50-layer column: conv2_x (56 x 56, after the stem's stride-2 conv
# and max-pool) to conv5_x (7 x 7), each stage's first block carrying its stride.
RESNET50 = {
    "name": "resnet50",
    "summary": "ResNet-50 (bottleneck v1.5); w scales stem and stage widths, round depth",
    "act": "relu",
    "stem": {"channels": 64, "kernel": 7, "stride": 2, "pool": True},
    "stages": [
        "bot_r3_k3_s1_e4_c256",
        "bot_r4_k3_s2_e4_c512",
        "bot_r6_k3_s2_e4_c1024",
        "bot_r3_k3_s2_e4_c2048",
    ],
    "scaling": {"depth": "round", "stem": "scaled"},
}

resnet50 = spec_base(RESNET50)
