"""Turn a layer tree (``tinyformula.layers``) into ``torch.nn`` modules.

The counterpart of ``tinyformula.cost``: one handle per layer type, reading the same
frozen descriptions, so a built module has exactly the parameters and fvcore FLOPs that the
analytic model predicts. Only this module (and the trainer) import torch.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import singledispatch

import torch
from torch import nn

from .layers import (
    Act,
    BatchNorm,
    Conv,
    Flatten,
    GhostModule,
    GlobalAvgPool,
    Linear,
    MaxPool,
    Network,
    Residual,
    Sequential,
    SqueezeExcite,
)

_ACTIVATIONS = {
    "swish": lambda: nn.SiLU(inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": lambda: nn.Hardsigmoid(inplace=True),
}


def activation(kind: str) -> nn.Module:
    try:
        return _ACTIVATIONS[kind]()
    except KeyError:
        raise ValueError(f"unknown activation {kind!r}; known: {', '.join(_ACTIVATIONS)}") from None


class SqueezeExciteModule(nn.Module):
    """timm-style squeeze-excite: the spatial mean is ``Tensor.mean`` (not an adaptive pool)."""

    def __init__(self, spec: SqueezeExcite):
        super().__init__()
        self.conv_reduce = nn.Conv2d(spec.channels, spec.reduced, 1, bias=True)
        self.act = activation(spec.act)
        self.conv_expand = nn.Conv2d(spec.reduced, spec.channels, 1, bias=True)
        self.gate = activation(spec.gate)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return x * self.gate(s)


class ResidualModule(nn.Module):
    def __init__(self, spec: Residual):
        super().__init__()
        self.body = build_layer(spec.body)
        self.shortcut = build_layer(spec.shortcut) if spec.shortcut is not None else nn.Identity()
        self.act = activation(spec.act) if spec.act else nn.Identity()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class GhostModuleModule(nn.Module):
    """``cat([x1, cheap(x1)])[:, :out_ch]`` with ``x1 = primary(x)``, as timm's GhostModule."""

    def __init__(self, spec: GhostModule):
        super().__init__()
        self.primary_conv = build_layer(spec.primary)
        self.cheap_operation = build_layer(spec.cheap)
        self.out_ch = spec.out_ch

    def forward(self, x):
        x1 = self.primary_conv(x)
        return torch.cat([x1, self.cheap_operation(x1)], dim=1)[:, :self.out_ch]


class GlobalAvgPoolModule(nn.Sequential):
    def __init__(self, flatten: bool = True):
        super().__init__(nn.AdaptiveAvgPool2d(1), *([nn.Flatten(1)] if flatten else []))


@singledispatch
def build_layer(layer) -> nn.Module:
    raise TypeError(f"no builder for layer type {type(layer).__name__}")


@build_layer.register
def _(layer: Conv):
    return nn.Conv2d(layer.in_ch, layer.out_ch, layer.kernel, layer.stride, layer.pad,
                     groups=layer.groups, bias=layer.bias)


@build_layer.register
def _(layer: BatchNorm):
    return nn.BatchNorm2d(layer.channels)


@build_layer.register
def _(layer: Act):
    return activation(layer.kind)


@build_layer.register
def _(layer: SqueezeExcite):
    return SqueezeExciteModule(layer)


@build_layer.register
def _(layer: MaxPool):
    return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)


@build_layer.register
def _(layer: GlobalAvgPool):
    return GlobalAvgPoolModule(layer.flatten)


@build_layer.register
def _(layer: Flatten):
    return nn.Flatten(1)


@build_layer.register
def _(layer: GhostModule):
    return GhostModuleModule(layer)


@build_layer.register
def _(layer: Linear):
    return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)


def _named_children(layer: Sequential) -> OrderedDict:
    names = layer.names or [str(i) for i in range(len(layer.layers))]
    return OrderedDict(zip(names, (build_layer(child) for child in layer.layers)))


@build_layer.register
def _(layer: Sequential):
    return nn.Sequential(_named_children(layer))


@build_layer.register
def _(layer: Residual):
    return ResidualModule(layer)


class ScaledNetwork(nn.Sequential):
    """The built classifier; ``input_resolution`` is the image size it was scaled for."""

    def __init__(self, network: Network):
        super().__init__(_named_children(network.body))
        self.input_resolution = network.resolution
        self.num_classes = network.num_classes
        self.meta = dict(network.meta)
        _init_weights(self)


def _init_weights(module: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit BatchNorm, small uniform classifier, as in timm."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.weight.size(1) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_network(network: Network) -> ScaledNetwork:
    return ScaledNetwork(network)


def fvcore_flops(model: nn.Module, resolution: int, in_channels: int = 3) -> int:
    """fvcore's FLOP count of ``model`` at batch 1 (the project's reference convention)."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, torch.zeros(1, in_channels, resolution, resolution))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        model.train(was_training)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
