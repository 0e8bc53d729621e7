"""EfficientNet-B0 (with TinyNet's scaling rules) and MobileNetV2, declared as specs.

Blocks follow timm's EfficientNet builder exactly (:mod:`.blocks`), so counts equal timm's
models. Squeeze-excite reduces to ``se`` x the block's *input* channels (timm computes it as
``round(mid * se / expand)``, which the ``"input"`` rule mirrors).

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

from .declared import spec_base

EFFICIENTNET_B0 = {
    "name": "efficientnet_b0",
    "summary": "EfficientNet-B0 with TinyNet's scaling rules (stem fixed at 32, round depth)",
    "act": "swish",
    "stem": {"channels": 32},
    "stages": [
        "ds_r1_k3_s1_e1_c16_se0.25",
        "ir_r2_k3_s2_e6_c24_se0.25",
        "ir_r2_k5_s2_e6_c40_se0.25",
        "ir_r3_k3_s2_e6_c80_se0.25",
        "ir_r3_k5_s1_e6_c112_se0.25",
        "ir_r4_k5_s2_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c320_se0.25",
    ],
    "head": {"conv": 1280, "conv_width": "at_least_base"},
    "scaling": {"depth": "round", "stem": "fixed"},
}

MOBILENETV2_100 = {
    "name": "mobilenetv2_100",
    "summary": "MobileNetV2 1.0 with timm's scaling rules (stem and head scaled, ceil depth)",
    "act": "relu6",
    "stem": {"channels": 32},
    "stages": [
        "ds_r1_k3_s1_c16",
        "ir_r2_k3_s2_e6_c24",
        "ir_r3_k3_s2_e6_c32",
        "ir_r4_k3_s2_e6_c64",
        "ir_r3_k3_s1_e6_c96",
        "ir_r3_k3_s2_e6_c160",
        "ir_r1_k3_s1_e6_c320",
    ],
    "head": {"conv": 1280, "conv_width": "at_least_base"},
    "scaling": {"depth": "ceil", "stem": "scaled"},
}

efficientnet_b0 = spec_base(EFFICIENTNET_B0)
mobilenetv2_100 = spec_base(MOBILENETV2_100)
