"""Our analytic counts and built modules equal timm's models as counted by fvcore, exactly."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tinyformula import Scale, Yardstick, get_base
from tinyformula.nets.build import fvcore_flops, param_count

pytestmark = pytest.mark.usefixtures("one_thread")

RECORDS = json.loads((Path(__file__).parent / "data" / "timm_fvcore_reference.json").read_text())


def _id(record):
    return f"{record['base']}-{record['rules'].split()[0]}-{record['name']}"


def test_records_cover_every_timm_base():
    counts = {}
    for record in RECORDS:
        counts[record["base"]] = counts.get(record["base"], 0) + 1
    assert counts == {"efficientnet_b0": 31, "mobilenetv2_100": 12, "ghostnet_100": 1,
                      "resnet50": 1}


@pytest.mark.parametrize("record", RECORDS, ids=_id)
def test_analytic_cost_equals_reference(record):
    cost = get_base(record["base"]).cost(Scale(record["r"], record["d"], record["w"]),
                                         num_classes=record["num_classes"])
    assert cost.resolution == record["resolution"]
    assert cost.params == record["params"]
    assert cost.flops == record["fvcore_flops"]


@pytest.mark.parametrize("record", RECORDS, ids=_id)
def test_built_module_equals_reference(record):
    model = get_base(record["base"]).build(Scale(record["r"], record["d"], record["w"]),
                                           num_classes=record["num_classes"])
    assert model.input_resolution == record["resolution"]
    assert param_count(model) == record["params"]
    assert fvcore_flops(model, model.input_resolution) == record["fvcore_flops"]


@pytest.mark.parametrize("record", [r for r in RECORDS if r["rules"] == "timm create_model"],
                         ids=_id)
def test_identity_is_the_timm_model(record):
    base = get_base(record["base"])
    cost = base.cost()
    assert (cost.resolution, cost.flops, cost.params) == (224, record["fvcore_flops"],
                                                          record["params"])
    assert Yardstick(base.name).c(Scale()) == 1.0


# The published TinyNets (r, d, w), their input sizes and timm's counts of them.
TINYNETS = {
    "tinynet_a": (0.86, 1.2, 1.0, 192, 347_712_640, 6_187_972),
    "tinynet_b": (0.84, 1.1, 0.75, 188, 209_610_736, 3_730_562),
    "tinynet_c": (0.825, 0.85, 0.54, 184, 105_304_176, 2_457_234),
    "tinynet_d": (0.68, 0.695, 0.54, 152, 54_439_184, 2_338_446),
    "tinynet_e": (0.475, 0.6, 0.51, 106, 25_750_752, 2_042_972),
}


@pytest.mark.parametrize("name", sorted(TINYNETS))
def test_tinynet_a_to_e_come_out_as_timm_builds_them(name):
    r, d, w, resolution, flops, params = TINYNETS[name]
    cost = get_base("efficientnet_b0").cost(Scale(r, d, w))
    assert (cost.resolution, cost.flops, cost.params) == (resolution, flops, params)
    # The paper's rounded figures (339M ... 24M FLOPs) are within a few per cent of these.
    published = {"tinynet_a": 339e6, "tinynet_b": 202e6, "tinynet_c": 100e6,
                 "tinynet_d": 52e6, "tinynet_e": 24e6}[name]
    assert abs(cost.flops / published - 1) < 0.08


# FD-MobileNet's table (Qin et al. 2018): outputs and strides of the 11 depthwise-separable blocks.
FD_MOBILENET_BLOCKS = [(64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                       (512, 1), (512, 1), (512, 1), (1024, 1)]


def fd_mobilenet_paper_multiply_adds(alpha):
    """The paper's table summed by hand: convolutions and classifier at 224 px, no BatchNorm."""
    size, cin = 112, int(32 * alpha)
    total = size * size * cin * 3 * 3 * 3  # 3x3 stride-2 stem conv
    for out, stride in FD_MOBILENET_BLOCKS:
        size //= stride
        cout = int(out * alpha)
        total += size * size * cin * 3 * 3 + size * size * cin * cout  # depthwise + pointwise
        cin = cout
    return total + cin * 1000  # classifier


def multiply_adds_of_built_module(model, resolution):
    """Convolution and linear multiply-adds of a torch module, counted with forward hooks."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * module.in_channels // module.groups * kh * kw
        else:
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("alpha, published", [(1.0, 144e6), (0.5, 40e6), (0.25, 12e6)])
def test_fd_mobilenet_has_the_papers_multiply_adds(alpha, published):
    model = get_base("fd_mobilenet").build(Scale(w=alpha))
    counted = multiply_adds_of_built_module(model, model.input_resolution)
    assert counted == fd_mobilenet_paper_multiply_adds(alpha)
    # The paper rounds to "about 144M, 40M, 12M"; ours are 144.49M, 40.13M, 12.04M.
    assert abs(counted / published - 1) < 0.01


def test_fd_mobilenet_fvcore_count_is_the_documented_one():
    cost = get_base("fd_mobilenet").cost()
    assert (cost.resolution, cost.flops, cost.params) == (224, 147_625_728, 2_901_288)
