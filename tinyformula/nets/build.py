"""Turn a layer tree (``tinyformula.nets.layers``) into ``torch.nn`` modules.

The counterpart of ``tinyformula.nets.count``: one handle per layer type (a
:class:`~tinyformula.nets.layers.LayerHandles` registry, as the cost model's), reading the same
frozen descriptions, so a built module has exactly the parameters and fvcore FLOPs that the
analytic model predicts. Only this module (and the trainer) import torch.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from .layers import (
    Act,
    BatchNorm,
    Conv,
    Flatten,
    GhostModule,
    GlobalAvgPool,
    LayerHandles,
    LayerScale,
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
    "hard_swish": lambda: nn.Hardswish(inplace=True),
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


class LayerScaleModule(nn.Module):
    """``x * gamma`` with one learned scale per channel (timm's ``LayerScale2d``)."""

    def __init__(self, spec: LayerScale):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((spec.channels,), float(spec.init)))

    def forward(self, x):
        return x * self.gamma.view(1, -1, 1, 1)


class GlobalAvgPoolModule(nn.Sequential):
    def __init__(self, flatten: bool = True):
        super().__init__(nn.AdaptiveAvgPool2d(1), *([nn.Flatten(1)] if flatten else []))


_BUILDERS = LayerHandles("builder")


def build_layer(layer) -> nn.Module:
    """The ``torch.nn`` module for one layer description (or a whole subtree)."""
    return _BUILDERS[type(layer)](layer)


@_BUILDERS.register(Conv)
def _conv(layer: Conv) -> nn.Module:
    return nn.Conv2d(layer.in_ch, layer.out_ch, layer.kernel, layer.stride, layer.pad,
                     groups=layer.groups, bias=layer.bias)


@_BUILDERS.register(BatchNorm)
def _batch_norm(layer: BatchNorm) -> nn.Module:
    return nn.BatchNorm2d(layer.channels)


@_BUILDERS.register(Act)
def _act(layer: Act) -> nn.Module:
    return activation(layer.kind)


@_BUILDERS.register(SqueezeExcite)
def _squeeze_excite(layer: SqueezeExcite) -> nn.Module:
    return SqueezeExciteModule(layer)


@_BUILDERS.register(LayerScale)
def _layer_scale(layer: LayerScale) -> nn.Module:
    return LayerScaleModule(layer)


@_BUILDERS.register(MaxPool)
def _max_pool(layer: MaxPool) -> nn.Module:
    return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)


@_BUILDERS.register(GlobalAvgPool)
def _global_avg_pool(layer: GlobalAvgPool) -> nn.Module:
    return GlobalAvgPoolModule(layer.flatten)


@_BUILDERS.register(Flatten)
def _flatten(layer: Flatten) -> nn.Module:
    return nn.Flatten(1)


@_BUILDERS.register(GhostModule)
def _ghost_module(layer: GhostModule) -> nn.Module:
    return GhostModuleModule(layer)


@_BUILDERS.register(Linear)
def _linear(layer: Linear) -> nn.Module:
    return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)


def _named_children(layer: Sequential) -> OrderedDict:
    return OrderedDict((name, build_layer(child)) for name, child in layer.named_layers())


@_BUILDERS.register(Sequential)
def _sequential(layer: Sequential) -> nn.Module:
    return nn.Sequential(_named_children(layer))


@_BUILDERS.register(Residual)
def _residual(layer: Residual) -> nn.Module:
    return ResidualModule(layer)


class ScaledNetwork(nn.Sequential):
    """The built classifier; ``input_resolution`` is the image size it was scaled for."""

    def __init__(self, network: Network):
        super().__init__(_named_children(network.body))
        self.input_resolution = network.resolution
        self.num_classes = network.num_classes
        self.meta = dict(network.meta)
        init_weights(self)


def init_weights(module: nn.Module, conv_fan_out_per_group: bool = False,
                 classifier_fan: str = "in") -> None:
    """He-normal fan-out convolutions, unit BatchNorm, a fan-in uniform classifier; zero biases.

    The defaults are the toolkit's init; ``conv_fan_out_per_group=True`` and
    ``classifier_fan="out"`` give timm's (``experiments/bench_init.py`` compares them).

    * ``nn.Conv2d``: ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, i.e. normal with
      mean 0 and std ``sqrt(2 / fan_out)``, ``fan_out = kernel_h * kernel_w * out_channels``
      (torch's fan-out, which does *not* divide by ``groups``: a depthwise 3x3 conv of c
      channels gets std ``sqrt(2 / (9 c))``, 0.083 on EfficientNet-B0's first one).
    * ``nn.BatchNorm2d``: weight 1, bias 0.
    * ``nn.Linear``: uniform on ``[-1 / sqrt(in_features), 1 / sqrt(in_features)]``.
    * Every bias: 0.

    This is *not* timm's EfficientNet init (``_init_weight_goog``), which divides the conv
    fan-out by ``groups`` (std 0.471 on that depthwise conv) and bounds the classifier by
    ``1 / sqrt(out_features)``. On the search's short schedule (Fashion-MNIST, 32 px, three
    EfficientNet-B0 candidates x three seeds; ``experiments/bench_init.py``,
    experiments/results/init.md) timm's init scored 24.2% top-1 and this one 55.7%. Most of the
    gap is the classifier: with 10 classes timm's bound is 1 / sqrt(10) = 0.32, eleven times
    this one's 1 / sqrt(1280) (timm's conv init with this classifier: 50.7%, 5.0 +- 1.7 points
    below this one, seed-paired).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            if conv_fan_out_per_group:
                fan_out //= m.groups
            # kaiming_normal_(mode="fan_out", nonlinearity="relu") when not divided by groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0) / math.sqrt(fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.weight.size(0 if classifier_fan == "out" else 1) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_network(network: Network) -> ScaledNetwork:
    return ScaledNetwork(network)


def fvcore_flops(model: nn.Module, resolution: int, in_channels: int = 3) -> int:
    """fvcore's FLOP count of ``model`` at batch 1 (the project's reference convention)."""
    return fvcore_by_module(model, resolution, in_channels)[""]


def fvcore_by_module(model: nn.Module, resolution: int, in_channels: int = 3) -> dict[str, int]:
    """fvcore's ``FlopCountAnalysis.by_module()`` at batch 1: FLOPs of every module by its name
    in ``named_modules()`` (``""``: the whole model)."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, torch.zeros(1, in_channels, resolution, resolution))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return {name: int(flops) for name, flops in analysis.by_module().items()}
    finally:
        model.train(was_training)


def activation_counts(model: nn.Module, resolution: int, in_channels: int = 3) -> dict[str, int]:
    """Activations as Dollár et al. (2021) count them, measured: the output elements of every
    ``nn.Conv2d`` and ``nn.Linear`` in one batch-1 forward pass, by module name (forward hooks;
    independent of the analytic model)."""
    counts: dict[str, int] = {}
    hooks = [module.register_forward_hook(
                 lambda _module, _inputs, output, name=name: counts.__setitem__(
                     name, counts.get(name, 0) + output.numel()))
             for name, module in model.named_modules()
             if isinstance(module, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, resolution, resolution))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return counts


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
