"""What counts cannot see: activations sit where each paper puts them; the registry and the
torch-free cost path cover every base; each base's scaling rules come out as documented."""

import json
import subprocess
import sys

import pytest
from torch import nn

from tinyformula import Scale, get_base, list_bases
from tinyformula.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

ALL_BASES = ["efficientnet_b0", "mobilenetv2_100", "resnet50", "ghostnet_100", "fd_mobilenet",
             "mobilenetv3_large_100", "mobilenetv3_small_100", "mobilenetv4_conv_small"]


def leaf_types(module: nn.Module) -> str:
    """Leaf modules in forward order as one string, e.g. 'Conv2d BatchNorm2d ReLU ...'."""
    return " ".join(type(m).__name__ for m in module.modules() if not list(m.children()))


def test_registry_lists_every_base():
    assert list_bases() == ALL_BASES


def test_cli_bases_lists_every_base(capsys):
    assert main(["bases", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ALL_BASES


def test_counting_any_base_does_not_import_torch():
    code = ("import sys, tinyformula\n"
            "for name in tinyformula.list_bases():\n"
            "    tinyformula.get_base(name).cost(tinyformula.Scale(0.5, 2.0, 0.3))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fd_mobilenet_is_conv_bn_relu_throughout_without_shortcuts():
    model = get_base("fd_mobilenet").build(Scale(w=0.25), num_classes=10)
    conv_bn_relu = "Conv2d BatchNorm2d ReLU"
    assert leaf_types(model) == " ".join(
        [conv_bn_relu] * (1 + 2 * 11) + ["AdaptiveAvgPool2d Flatten Linear"])
    strides = [m.stride[0] for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [2] + [2, 1, 2, 1, 1, 1, 2, 1, 1, 1, 2, 1] + [1] * 10


def test_mobilenetv2_uses_relu6_and_no_activation_after_a_projection():
    model = get_base("mobilenetv2_100").build()
    assert leaf_types(model.blocks[0]) == "Conv2d BatchNorm2d ReLU6 Conv2d BatchNorm2d"
    assert leaf_types(model.blocks[1][0]) == (
        "Conv2d BatchNorm2d ReLU6 Conv2d BatchNorm2d ReLU6 Conv2d BatchNorm2d")


def test_resnet50_bottleneck_is_v1_5_with_relu_after_the_sum():
    model = get_base("resnet50").build()
    first = model.blocks[1][0]  # 256 -> 512 channels, stride 2
    assert [m.stride[0] for m in first.body if isinstance(m, nn.Conv2d)] == [1, 2, 1]
    assert leaf_types(first.shortcut) == "Conv2d BatchNorm2d"
    assert first.shortcut[0].stride == (2, 2) and first.shortcut[0].kernel_size == (1, 1)
    assert isinstance(first.act, nn.ReLU)
    assert [len(stage) for stage in model.blocks] == [3, 4, 6, 3]
    assert leaf_types(model.stem) == "Conv2d BatchNorm2d ReLU MaxPool2d"


def test_ghostnet_block_layout():
    model = get_base("ghostnet_100").build()
    block = model.blocks[2][0]  # 24 -> 40, stride 2, squeeze-excite
    assert leaf_types(block.body) == (
        "Conv2d BatchNorm2d ReLU Conv2d BatchNorm2d ReLU "  # ghost module, ReLU
        "Conv2d BatchNorm2d "  # depthwise stride-2 conv
        "Conv2d ReLU Conv2d Hardsigmoid "  # squeeze-excite
        "Conv2d BatchNorm2d Conv2d BatchNorm2d")  # ghost module, no ReLU
    assert block.body[3].conv_reduce.out_channels == 20  # make_divisible(72 / 4, 4)
    assert leaf_types(block.shortcut) == "Conv2d BatchNorm2d Conv2d BatchNorm2d"
    assert model.head[0].bias is not None and model.head[0].out_channels == 1280


@pytest.mark.parametrize("d, expected", [
    (0.25, [1, 1, 2, 1]), (0.5, [2, 2, 3, 2]), (1.0, [3, 4, 6, 3]), (2.0, [6, 8, 12, 6])])
def test_resnet50_depth_rule(d, expected):
    """max(1, round(n * d)) blocks a stage; Python rounds halves to even (1.5 -> 2, 2.5 -> 2)."""
    blocks = get_base("resnet50").network(Scale(d=d)).body.layers[1].layers
    assert [len(stage.layers) for stage in blocks] == expected


def test_resnet50_width_rule_scales_the_stem_too():
    layers = get_base("resnet50").network(Scale(w=0.5)).body.layers
    assert layers[0].layers[0].out_ch == 32
    first_blocks = [stage.layers[0] for stage in layers[1].layers]
    assert [b.body.layers[0].out_ch for b in first_blocks] == [32, 64, 128, 256]
    assert layers[-1].in_features == 1024


def test_ghostnet_depth_rule_cycles_the_stride_1_blocks():
    stages = get_base("ghostnet_100").network(Scale(d=2.0)).body.layers[1].layers
    # 1, 2, 2, 4, 2, 5 blocks a stage at d = 1; each doubles.
    assert [len(stage.layers) for stage in stages] == [2, 4, 4, 8, 4, 10]
    last = stages[-1].layers
    assert last[1] is last[5] and last[2] is last[6] and last[1] is not last[2]
    shallow = get_base("ghostnet_100").network(Scale(d=0.25)).body.layers[1].layers
    assert [len(stage.layers) for stage in shallow] == [1, 1, 1, 1, 1, 1]


def test_weight_init_is_the_documented_one_not_timms():
    """build.init_weights: He-normal with torch's fan-out (k*k*out, groups ignored) and a
    classifier within 1/sqrt(in_features). timm's (fan-out / groups, 1/sqrt(out_features))
    trained worse on the short schedule (experiments/results/init.md)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = get_base("efficientnet_b0").build(Scale(), num_classes=10, resolution_base=32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    first_depthwise = next(m for m in convs if m.groups > 1)
    assert first_depthwise.weight.shape == (32, 1, 3, 3)
    # sqrt(2 / (3 * 3 * 32)) = 0.083; timm's sqrt(2 / (3 * 3 * 32 / 32)) = 0.471.
    assert first_depthwise.weight.std().item() == pytest.approx((2 / 288) ** 0.5, rel=0.2)
    widest = max((m for m in convs if m.groups > 1), key=lambda m: m.weight.numel())
    k, out = widest.kernel_size[0], widest.out_channels
    assert widest.weight.std().item() == pytest.approx((2 / (k * k * out)) ** 0.5, rel=0.05)
    classifier = model.classifier
    bound = 1 / 1280 ** 0.5  # 0.028; timm's 1 / sqrt(10) = 0.316
    assert 0.95 * bound < classifier.weight.abs().max().item() <= bound
    assert classifier.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)
    assert all(not m.bias.any() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.weight.eq(1).all() and not m.bias.any() for m in batch_norms)
