"""FD-MobileNet (Qin et al., "FD-MobileNet: Improved MobileNet with a Fast Downsampling
Strategy", 2018): MobileNet v1 that reaches 32x down-sampling within its first 12 layers.

Architecture (the paper's table at 1x, 224 px): 3x3 stride-2 conv to 32, then 11
depthwise-separable blocks (3x3 depthwise conv, 1x1 conv) with outputs 64 (s2), 128 (s2), 128,
256 (s2), 256, 512 (s2), 512, 512, 512, 512, 1024, global average pool, fully-connected
classifier. BatchNorm and ReLU follow every convolution, as in MobileNet v1 (timm's ``dsa``
block); no shortcuts, no head conv.

Scaling rules:

* w is the paper's width multiplier alpha on every layer, the stem included:
  ``round_channels(c * w)`` (nearest multiple of 8, as MobileNet v1 in timm). At alpha = 1, 0.5
  and 0.25 every width is already a multiple of 8, so these are the paper's networks exactly.
* d: each stage (a row of the table: a stride-2 block and the stride-1 blocks of its
  resolution) keeps ``max(1, round(n * d))`` of its n blocks (TinyNet's rule); the first block
  always stays, so d adds or removes stride-1 blocks.
* r: resolution ``int(224 * r)``.

Cost: multiply-adds of convolutions and classifier are 144.49M at 1x, 40.13M at 0.5x and 12.04M at
0.25x (the paper: about 144M, 40M, 12M). fvcore's count, which adds BatchNorm and the global pool,
is 147,625,728 FLOPs at 1x (2,901,288 params).
"""

from __future__ import annotations

from .declared import spec_base

# Stage strings as timm's MobileNet v1: dsa = depthwise-separable with an activation after the
# pointwise conv and no shortcut; one row per resolution (plus the final widening to 1024).
FD_MOBILENET = {
    "name": "fd_mobilenet",
    "summary": "FD-MobileNet 1x (fast down-sampling MobileNet; w = the paper's alpha, stem "
               "scaled)",
    "act": "relu",
    "stem": {"channels": 32},
    "stages": [
        "dsa_r1_k3_s2_c64",
        "dsa_r2_k3_s2_c128",
        "dsa_r2_k3_s2_c256",
        "dsa_r5_k3_s2_c512",
        "dsa_r1_k3_s1_c1024",
    ],
    "scaling": {"depth": "round", "stem": "scaled"},
}

fd_mobilenet = spec_base(FD_MOBILENET)
