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

As a spec: ``gb`` blocks (:mod:`.blocks`; ``m`` is the hidden width), width divisor 4,
squeeze-excite of the hidden width rounded to multiples of 4 with a hard-sigmoid gate,
``stage_depth = "cycle"``, the 960 conv before pooling and the 1280 conv (with bias) after.
"""

from __future__ import annotations

from .declared import spec_base

# The paper's Table 1 (timm's cfgs), one G-bneck a string, grouped into stages of one output
# width: gb_k<kernel>_s<stride>_m<hidden>_c<out>[_se<ratio>].
GHOSTNET_100 = {
    "name": "ghostnet_100",
    "summary": "GhostNet 1.0x as timm builds it; w = GhostNet's width multiplier (divisor 4)",
    "act": "relu",
    "stem": {"channels": 16},
    "stages": [
        ["gb_r1_k3_s1_m16_c16"],
        ["gb_r1_k3_s2_m48_c24", "gb_r1_k3_s1_m72_c24"],
        ["gb_r1_k5_s2_m72_c40_se0.25", "gb_r1_k5_s1_m120_c40_se0.25"],
        ["gb_r1_k3_s2_m240_c80", "gb_r1_k3_s1_m200_c80", "gb_r2_k3_s1_m184_c80"],
        ["gb_r1_k3_s1_m480_c112_se0.25", "gb_r1_k3_s1_m672_c112_se0.25"],
        ["gb_r1_k5_s2_m672_c160_se0.25", "gb_r1_k5_s1_m960_c160",
         "gb_r1_k5_s1_m960_c160_se0.25", "gb_r1_k5_s1_m960_c160",
         "gb_r1_k5_s1_m960_c160_se0.25"],
    ],
    "se": {"gate": "hard_sigmoid", "reduce_from": "mid", "rounding": "divisible"},
    "head": {"conv": 960, "conv_width": "scaled", "pooled_conv": 1280, "pooled_width": "fixed",
             "pooled_bias": True},
    "scaling": {"depth": "round", "stage_depth": "cycle", "stem": "scaled", "divisor": 4},
}

ghostnet_100 = spec_base(GHOSTNET_100)
