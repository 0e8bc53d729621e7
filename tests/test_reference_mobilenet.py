"""MobileNetV3 (large, small) and MobileNetV4 conv-small equal fvcore's count of timm's own
models, to the unit, at every (r, d, w) of tests/data/mobilenet_timm_reference.json (timm
1.0.31: 17 points from the shared reference, 24 made by scripts/timm_reference/)."""

import json
from pathlib import Path

import pytest
from torch import nn

from tinyformula import Scale, get_base
from tinyformula.nets.build import fvcore_flops, param_count

pytestmark = pytest.mark.usefixtures("one_thread")

RECORDS = json.loads((Path(__file__).parent / "data" /
                      "mobilenet_timm_reference.json").read_text())


def _id(record):
    return (f"{record['base']}-r{record['r']:.3g}-d{record['d']:g}-w{record['w']:g}-"
            f"{record['num_classes']}")


def test_records_cover_each_base_at_several_scalings():
    counts = {}
    for record in RECORDS:
        counts.setdefault(record["base"], set()).add((record["w"], record["d"]))
    assert {name: len(points) >= 6 for name, points in counts.items()} == {
        "mobilenetv3_large_100": True, "mobilenetv3_small_100": True,
        "mobilenetv4_conv_small": True}
    # MobileNetV4 at depth multipliers other than 1 (timm's decode_arch_def rule) too.
    assert any(r["d"] != 1 for r in RECORDS if r["base"] == "mobilenetv4_conv_small")


@pytest.mark.parametrize("record", RECORDS, ids=_id)
def test_analytic_cost_equals_timm(record):
    cost = get_base(record["base"]).cost(Scale(record["r"], record["d"], record["w"]),
                                         num_classes=record["num_classes"])
    assert (cost.resolution, cost.flops, cost.params) == (
        record["resolution"], record["fvcore_flops"], record["params"])


# Building and counting with fvcore is slow at 224 px: the small inputs of every base.
BUILT = [r for r in RECORDS if r["resolution"] <= 96]


@pytest.mark.parametrize("record", BUILT, ids=_id)
def test_built_module_equals_timm(record):
    model = get_base(record["base"]).build(Scale(record["r"], record["d"], record["w"]),
                                           num_classes=record["num_classes"])
    assert param_count(model) == record["params"]
    assert fvcore_flops(model, model.input_resolution) == record["fvcore_flops"]


def leaf_types(module: nn.Module) -> list[str]:
    return [type(m).__name__ for m in module.modules() if not list(m.children())]


def test_mobilenetv3_blocks_are_timms():
    model = get_base("mobilenetv3_large_100").build()
    leaves = leaf_types(model)
    assert leaves[:3] == ["Conv2d", "BatchNorm2d", "Hardswish"]          # stem
    assert "Hardsigmoid" in leaves and "Sigmoid" not in leaves          # SE gates
    se = next(m for m in model.modules() if type(m).__name__ == "SqueezeExciteModule")
    assert isinstance(se.act, nn.ReLU)                                  # forced ReLU
    assert se.conv_reduce.out_channels % 8 == 0                         # rounded to 8
    # The efficient head: pooled, a 1x1 conv with bias to 1280, hard-swish, flattened.
    assert leaf_types(model.head) == ["Conv2d", "Hardswish", "Flatten"]
    assert model.head[0].bias is not None and model.head[0].out_channels == 1280
    assert get_base("mobilenetv3_large_100").build(Scale(w=0.5)).head[0].out_channels == 1280


def test_mobilenetv4_universal_inverted_bottleneck_and_head():
    model = get_base("mobilenetv4_conv_small").build()
    # Stage 2's first block: extra depthwise 5x5 (stride 1), expand, depthwise 5x5 stride 2,
    # project; no shortcut (the width changes).
    block = model.blocks[2][0]
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0], c.groups > 1) for c in convs] == [
        (5, 1, True), (1, 1, False), (5, 2, True), (1, 1, False)]
    # The ConvNeXt-like block (a3, k0): depthwise 3x3 before the expansion, none in the middle.
    last = model.blocks[2][-1]
    assert [(c.kernel_size[0], c.groups > 1) for c in last.modules()
            if isinstance(c, nn.Conv2d)] == [(3, True), (1, False), (1, False)]
    assert leaf_types(model.head) == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten"]
    assert model.head[0].bias is None
    # timm keeps the stem at 32 below w = 1 (fix_stem), and scales it from w = 1 up.
    assert get_base("mobilenetv4_conv_small").build(Scale(w=0.9)).stem[0].out_channels == 32
    assert get_base("mobilenetv4_conv_small").build(Scale(w=1.5)).stem[0].out_channels == 48
