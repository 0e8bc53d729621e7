"""MobileNetV3 (large, small) and MobileNetV4 conv-small, as timm 1.0 builds them, declared as
specs: counts equal fvcore's count of timm's ``mobilenetv3_large_100``,
``mobilenetv3_small_100`` and ``mobilenetv4_conv_small`` to the unit (tests/test_reference.py).

* MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019): hard-swish (ReLU where a
  block string says ``nre``), squeeze-excite of the *expanded* width rounded to a multiple of 8
  with a ReLU and a hard-sigmoid gate, a last ``cn`` stage (1x1 conv to 960 / 576), pooling,
  then the "efficient head": a 1x1 conv with bias to 1280 / 1024 on the pooled features,
  hard-swish, the classifier. 1x at 224 px: large 225.4M FLOPs, 5.48M params; small 59.4M, 2.54M.
* MobileNetV4 conv-small (Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem",
  2024; 73.8% ImageNet top-1): ReLU, ``cn`` stages, then universal inverted bottlenecks
  (``uir``: optional depthwise convs before the expansion (``a``) and in the middle (``k``); no
  squeeze-excite, no layer scale in the conv models), a 1x1 conv to 960, pooling, a 1x1 conv
  to 1280 *with BatchNorm* and ReLU, the classifier. 1x: 190.0M FLOPs, 3.77M params.

Scaling rules are timm's generators' (``_gen_mobilenet_v3(channel_multiplier=w,
depth_multiplier=d)``, ``_gen_mobilenet_v4(channel_multiplier=w)``): every stage width
``round_channels(c * w)``; the stem's 16 / 32 too, except when w is below 0.75 (V3) or 1.0 (V4),
where timm keeps it fixed; the 1280 / 1024 head after pooling never scales; depth: a stage's
total blocks ``ceil(n * d)``, shared out over its block strings as timm's
``_scale_stage_depth`` does (the last string first, each keeping at least one). timm's V4
generator takes no depth multiplier: d here is timm's ``decode_arch_def(depth_multiplier=d)``
on V4's table, the same rule as V3's. Resolution ``int(224 * r)``.
"""

from __future__ import annotations

from .declared import spec_base

# Squeeze-excite and scaling as timm's _gen_mobilenet_v3 sets them.
_V3_SE = {"act": "relu", "gate": "hard_sigmoid", "reduce_from": "mid", "rounding": "divisible"}
_V3_SCALING = {"depth": "ceil", "stage_depth": "distribute", "stem": "scaled",
               "stem_fixed_below": 0.75}

MOBILENETV3_LARGE_100 = {
    "name": "mobilenetv3_large_100",
    "summary": "MobileNetV3-Large 1.0 as timm builds it (hard-swish, SE with hard-sigmoid "
               "gates, ceil depth)",
    "act": "hard_swish",
    "stem": {"channels": 16},
    "stages": [
        ["ds_r1_k3_s1_e1_c16_nre"],
        ["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
        ["ir_r3_k5_s2_e3_c40_se0.25_nre"],
        ["ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"],
        ["ir_r2_k3_s1_e6_c112_se0.25"],
        ["ir_r3_k5_s2_e6_c160_se0.25"],
        ["cn_r1_k1_s1_c960"],
    ],
    "se": _V3_SE,
    "head": {"pooled_conv": 1280, "pooled_width": "fixed", "pooled_bias": True},
    "scaling": _V3_SCALING,
}

MOBILENETV3_SMALL_100 = {
    "name": "mobilenetv3_small_100",
    "summary": "MobileNetV3-Small 1.0 as timm builds it (hard-swish, SE with hard-sigmoid "
               "gates, ceil depth)",
    "act": "hard_swish",
    "stem": {"channels": 16},
    "stages": [
        ["ds_r1_k3_s2_e1_c16_se0.25_nre"],
        ["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
        ["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"],
        ["ir_r2_k5_s1_e3_c48_se0.25"],
        ["ir_r3_k5_s2_e6_c96_se0.25"],
        ["cn_r1_k1_s1_c576"],
    ],
    "se": _V3_SE,
    "head": {"pooled_conv": 1024, "pooled_width": "fixed", "pooled_bias": True},
    "scaling": _V3_SCALING,
}

MOBILENETV4_CONV_SMALL = {
    "name": "mobilenetv4_conv_small",
    "summary": "MobileNetV4 conv-small as timm builds it (universal inverted bottlenecks, "
               "ReLU, ceil depth)",
    "act": "relu",
    "stem": {"channels": 32},
    "stages": [
        ["cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"],
        ["cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"],
        ["uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96"],
        ["uir_r1_a3_k3_s2_e6_c128", "uir_r1_a5_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e4_c128",
         "uir_r1_a0_k5_s1_e3_c128", "uir_r2_a0_k3_s1_e4_c128"],
        ["cn_r1_k1_s1_c960"],
    ],
    "head": {"pooled_conv": 1280, "pooled_width": "fixed", "pooled_bias": False,
             "pooled_norm": True},
    "scaling": {"depth": "ceil", "stage_depth": "distribute", "stem": "scaled",
                "stem_fixed_below": 1.0},
}

mobilenetv3_large_100 = spec_base(MOBILENETV3_LARGE_100)
mobilenetv3_small_100 = spec_base(MOBILENETV3_SMALL_100)
mobilenetv4_conv_small = spec_base(MOBILENETV4_CONV_SMALL)
