"""Small-input tests of the spec layer: rounding rules, stage strings, Scale, the base API."""

import math

import pytest

from tinyformula import Scale, TinyFormulaError, get_base, list_bases
from tinyformula.nets.bases.spec import (
    Stage,
    make_divisible,
    parse_stage,
    round_channels,
    scale_depth,
)
from tinyformula.nets.count import layer_cost
from tinyformula.nets.layers import BatchNorm, Conv, Linear, Residual, Sequential, SqueezeExcite


@pytest.mark.parametrize("channels, w, expected", [
    (32, 1.0, 32), (16, 0.54, 8), (16, 0.51, 8), (24, 0.54, 16), (40, 0.54, 24),
    (1280, 0.54, 688), (320, 0.75, 240), (16, 0.3, 8),
    # 9.0 rounds to 8, which lost more than 10%: one more multiple of 8.
    (36, 0.25, 16), (40, 0.25, 16), (24, 0.25, 8),
])
def test_round_channels(channels, w, expected):
    assert round_channels(channels, w) == expected


def test_make_divisible_bumps_when_rounding_loses_over_ten_percent():
    assert make_divisible(8.8) == 8       # lost 9%
    assert make_divisible(9.0) == 16      # would lose 11%
    assert make_divisible(44.0) == 48 and make_divisible(43.9) == 40


def test_parse_stage_reads_timm_strings():
    assert parse_stage("ir_r2_k5_s2_e6_c40_se0.25") == Stage("ir", 2, 5, 2, 6.0, 40, 0.25)
    assert parse_stage("ds_r1_k3_s1_c16") == Stage("ds", 1, 3, 1, 1.0, 16, 0.0)


@pytest.mark.parametrize("text", ["ir_r2_k3_s2_x6_c24", "ir_r2_k3_c24", "ir_rx_k3_s1_c8"])
def test_parse_stage_rejects_bad_strings(text):
    with pytest.raises(ValueError):
        parse_stage(text)


def test_depth_rules():
    assert [scale_depth(n, 0.6, "round") for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert scale_depth(1, 0.1, "round") == 1
    assert [scale_depth(n, 0.6, "ceil") for n in (1, 2, 3, 4)] == [1, 2, 2, 3]


def test_scale_depth_is_timms_rule():
    # round: Python's round (halves to even, as timm), never below one block.
    assert [scale_depth(n, 0.5) for n in (1, 2, 3, 4, 5, 6)] == [1, 1, 2, 2, 2, 3]
    assert scale_depth(4, 0.05) == 1 and scale_depth(3, 4.0) == 12
    # ceil: rounds every fraction up.
    assert [scale_depth(n, 0.5, "ceil") for n in (1, 2, 3, 4, 5, 6)] == [1, 1, 2, 2, 3, 3]
    assert scale_depth(4, 0.05, "ceil") == 1 and scale_depth(3, 1.01, "ceil") == 4
    with pytest.raises(ValueError, match="depth rounding"):
        scale_depth(3, 1.0, "floor")


@pytest.mark.parametrize("base_name, stage_lengths, d", [
    ("resnet50", (3, 4, 6, 3), 0.6),
    ("ghostnet_100", (1, 2, 2, 4, 2, 5), 0.6),
    ("fd_mobilenet", (1, 2, 2, 5, 1), 1.5),
    ("efficientnet_b0", (1, 2, 2, 3, 3, 4, 1), 0.6),
])
def test_every_base_scales_depth_with_scale_depth(base_name, stage_lengths, d):
    blocks = get_base(base_name).layers(Scale(d=d), 10).layers[1]
    assert [len(stage.layers) for stage in blocks.layers] == [
        scale_depth(n, d) for n in stage_lengths]


def test_mobilenetv2_scales_depth_with_ceil():
    blocks = get_base("mobilenetv2_100").layers(Scale(d=0.6), 10).layers[1]
    assert [len(stage.layers) for stage in blocks.layers] == [
        scale_depth(n, 0.6, "ceil") for n in (1, 2, 3, 4, 3, 3, 1)]


def test_tinynet_rules_fix_stem_and_keep_head_at_least_1280():
    net = get_base("efficientnet_b0").layers(Scale(w=0.25), 10)
    stem_conv = net.layers[0].layers[0]
    head_conv = net.layers[2].layers[0]
    assert stem_conv.out_ch == 32
    assert head_conv.out_ch == 1280
    assert get_base("efficientnet_b0").layers(Scale(w=2.0), 10).layers[2].layers[0].out_ch == 2560


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, -math.inf, "abc", None, True])
def test_scale_rejects_bad_multipliers(value):
    with pytest.raises(TinyFormulaError):
        Scale(r=value)


def test_scale_resolution_is_robust_to_float_error():
    assert Scale(r=97 / 224).resolution(224) == 97
    assert Scale(r=0.86).resolution(224) == 192


def test_base_api_validates_its_arguments():
    base = get_base("efficientnet_b0")
    with pytest.raises(TinyFormulaError, match="known bases: efficientnet_b0"):
        get_base("efficientnet_b9")
    with pytest.raises(TinyFormulaError, match="pixel"):
        base.cost(Scale(r=0.001))
    with pytest.raises(TinyFormulaError, match="num_classes"):
        base.cost(num_classes=0)
    with pytest.raises(TinyFormulaError, match="Scale"):
        base.cost((1, 1, 1))
    assert "efficientnet_b0" in list_bases()


def test_cost_handles_on_a_hand_counted_toy():
    toy = Sequential((Residual(Sequential((Conv(8, 8, 3), BatchNorm(8)))),))
    flops, params, activations, shape = layer_cost(toy, (8, 5, 5))
    assert shape == (8, 5, 5)
    assert flops == 8 * 25 * 8 * 9 + 2 * 8 * 25
    assert params == 8 * 8 * 9 + 2 * 8
    assert activations == 8 * 25  # the conv's outputs; BatchNorm's are not counted
    assert layer_cost(Conv(3, 4, 3, stride=2), (3, 7, 7)).shape == (4, 4, 4)  # odd sizes round up
    assert layer_cost(Linear(10, 3), (10,)) == (30, 33, 3, (3,))
    assert layer_cost(SqueezeExcite(16, 4), (16, 5, 5)).activations == 4 + 16
    with pytest.raises(ValueError):
        layer_cost(Conv(4, 4), (3, 5, 5))
    with pytest.raises(TypeError, match="no cost handle for layer type str"):
        layer_cost("conv", (3, 5, 5))


def test_built_module_runs_forward_at_its_resolution():
    import torch

    model = get_base("efficientnet_b0").build(Scale(0.5, 0.5, 0.5), num_classes=7,
                                              resolution_base=32)
    out = model.eval()(torch.zeros(2, 3, model.input_resolution, model.input_resolution))
    assert out.shape == (2, 7)


def test_package_exposes_the_pipeline_lazily():
    import tinyformula
    import tinyformula.formula.estimator
    import tinyformula.sweep.driver
    import tinyformula.sweep.results

    assert tinyformula.search is tinyformula.sweep.driver.search
    assert tinyformula.load_run is tinyformula.sweep.results.load_run
    assert tinyformula.SearchResult is tinyformula.sweep.results.SearchResult
    assert tinyformula.TinyFormula is tinyformula.formula.estimator.TinyFormula
    with pytest.raises(AttributeError):
        tinyformula.no_such_thing
