"""Analytic cost model: fvcore's FLOP count, parameters and activations, computed from the spec.

One small handle per layer type (as in fvcore's op registry), each mapping an input shape
``(channels, height, width)`` to a :class:`LayerCost`: FLOPs, parameters, activations and the
output shape. The FLOP conventions are fvcore 0.1.5's default handles (see README.md): a
convolution costs output elements x input channels / groups x kernel area; BatchNorm in eval
mode 2 per element; ``adaptive_avg_pool2d`` 1 per input element; a linear layer in x out.
Activation functions, ``mean``, max-pooling, sigmoid and elementwise products or sums cost
nothing. Activations are counted as Dollár et al. ("Fast and Accurate Model Scaling", CVPR
2021) do: the output elements of every convolution and linear layer (batch 1), squeeze-excite's
two 1x1 convolutions included. No torch is imported here, so the search can count thousands
of candidates in the time fvcore counts one.

Dispatch: ``layer_cost`` is a :class:`~tinyformula.nets.layers.LayerHandles` registry with one
handle per layer type, as fvcore's op registry; ``tinyformula.nets.build.build_layer`` is another
(that class's docstring says why not ``functools.singledispatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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

Shape = tuple  # (channels, height, width), or (features,) after global pooling


@dataclass(frozen=True)
class Cost:
    """What a candidate costs at batch 1.

    Attributes
    ----------
    resolution : int
        Input image size (pixels a side).
    flops : int
        fvcore's FLOP count (one multiply-add = one FLOP).
    params : int
        Parameter count.
    activations : int
        Output elements of every convolution and linear layer (Dollár et al., 2021).
    """

    resolution: int
    flops: int
    params: int
    activations: int


@dataclass(frozen=True)
class ModuleCost:
    """The cost of one named module of the built network (a name as in ``named_modules()``)."""

    module: str
    flops: int
    params: int
    activations: int


class LayerCost(NamedTuple):
    """What one layer (or a whole subtree) costs at one input shape, and its output shape."""

    flops: int
    params: int
    activations: int
    shape: Shape


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output size of a convolution or pooling window (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


# Each handle returns a plain ``(flops, params, activations, output shape)`` tuple (one
# NamedTuple per layer made counting twice as slow); ``layer_cost`` names the fields.
_COST_HANDLES = LayerHandles("cost handle")


def _cost(layer, shape: Shape) -> tuple:
    return _COST_HANDLES[type(layer)](layer, shape)


def layer_cost(layer, shape: Shape) -> LayerCost:
    """The :class:`LayerCost` of one layer (or a whole subtree) for an input shape."""
    return LayerCost(*_cost(layer, shape))


@_COST_HANDLES.register(Conv)
def _conv(layer: Conv, shape: Shape) -> tuple:
    ch, h, w = shape
    if ch != layer.in_ch:
        raise ValueError(f"Conv expects {layer.in_ch} channels, got {ch}")
    oh = conv_output_size(h, layer.kernel, layer.stride, layer.pad)
    ow = conv_output_size(w, layer.kernel, layer.stride, layer.pad)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {layer.kernel}x{layer.kernel} convolution (stride {layer.stride}) "
                         f"on a {h}x{w} feature map leaves no output: the map vanishes")
    per_output = (layer.in_ch // layer.groups) * layer.kernel * layer.kernel
    params = layer.out_ch * per_output + (layer.out_ch if layer.bias else 0)
    outputs = layer.out_ch * oh * ow
    return outputs * per_output, params, outputs, (layer.out_ch, oh, ow)


@_COST_HANDLES.register(BatchNorm)
def _batch_norm(layer: BatchNorm, shape: Shape) -> tuple:
    ch, h, w = shape
    return 2 * ch * h * w, 2 * ch, 0, shape


@_COST_HANDLES.register(Act)
def _act(layer: Act, shape: Shape) -> tuple:
    return 0, 0, 0, shape


@_COST_HANDLES.register(SqueezeExcite)
def _squeeze_excite(layer: SqueezeExcite, shape: Shape) -> tuple:
    c, r = layer.channels, layer.reduced
    # Both 1x1 convolutions act on a 1x1 map: c*r multiply-adds each, r then c outputs;
    # biases are parameters only.
    return 2 * c * r, 2 * c * r + r + c, r + c, shape


@_COST_HANDLES.register(LayerScale)
def _layer_scale(layer: LayerScale, shape: Shape) -> tuple:
    return 0, layer.channels, 0, shape


@_COST_HANDLES.register(MaxPool)
def _max_pool(layer: MaxPool, shape: Shape) -> tuple:
    ch, h, w = shape
    oh = conv_output_size(h, layer.kernel, layer.stride, layer.padding)
    ow = conv_output_size(w, layer.kernel, layer.stride, layer.padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {layer.kernel}x{layer.kernel} max-pool (stride {layer.stride}) on "
                         f"a {h}x{w} feature map leaves no output: the map vanishes")
    return 0, 0, 0, (ch, oh, ow)


@_COST_HANDLES.register(GlobalAvgPool)
def _global_avg_pool(layer: GlobalAvgPool, shape: Shape) -> tuple:
    ch, h, w = shape
    return ch * h * w, 0, 0, (ch,) if layer.flatten else (ch, 1, 1)


@_COST_HANDLES.register(Flatten)
def _flatten(layer: Flatten, shape: Shape) -> tuple:
    return 0, 0, 0, (shape[0] * shape[1] * shape[2],)


@_COST_HANDLES.register(Linear)
def _linear(layer: Linear, shape: Shape) -> tuple:
    (features,) = shape
    if features != layer.in_features:
        raise ValueError(f"Linear expects {layer.in_features} features, got {features}")
    params = layer.in_features * layer.out_features + (layer.out_features if layer.bias else 0)
    return layer.in_features * layer.out_features, params, layer.out_features, (layer.out_features,)


@_COST_HANDLES.register(Sequential)
def _sequential(layer: Sequential, shape: Shape) -> tuple:
    flops = params = activations = 0
    counted: dict[tuple, tuple] = {}
    for child in layer.layers:
        # Repeated blocks are shared objects, not always adjacent (GhostNet cycles its stride-1
        # blocks): count each at a given input shape once. ``layer`` keeps ids valid meanwhile.
        key = (id(child), shape)
        result = counted.get(key)
        if result is None:
            result = counted[key] = _cost(child, shape)
        f, p, a, shape = result
        flops += f
        params += p
        activations += a
    return flops, params, activations, shape


@_COST_HANDLES.register(GhostModule)
def _ghost_module(layer: GhostModule, shape: Shape) -> tuple:
    f1, p1, a1, (c1, h, w) = _cost(layer.primary, shape)
    f2, p2, a2, (c2, h2, w2) = _cost(layer.cheap, (c1, h, w))
    if (h2, w2) != (h, w) or c1 + c2 < layer.out_ch:
        raise ValueError(f"GhostModule cannot make {layer.out_ch} channels from "
                         f"{(c1, h, w)} and {(c2, h2, w2)}")
    return f1 + f2, p1 + p2, a1 + a2, (layer.out_ch, h, w)


@_COST_HANDLES.register(Residual)
def _residual(layer: Residual, shape: Shape) -> tuple:
    flops, params, activations, out = _cost(layer.body, shape)
    if layer.shortcut is not None:
        f, p, a, short = _cost(layer.shortcut, shape)
        flops, params, activations = flops + f, params + p, activations + a
    else:
        short = shape
    if short != out:
        raise ValueError(f"Residual branches disagree: body {out}, shortcut {short}")
    return flops, params, activations, out


def _input_shape(network: Network) -> Shape:
    return network.in_channels, network.resolution, network.resolution


def network_cost(network: Network) -> Cost:
    """Count a whole network at its own input resolution (batch 1)."""
    flops, params, activations, _ = _cost(network.body, _input_shape(network))
    return Cost(resolution=network.resolution, flops=flops, params=params,
                activations=activations)


def module_costs(network: Network, depth: int = 1) -> list[ModuleCost]:
    """The cost of each named module of the built network, in forward order (batch 1).

    Parameters
    ----------
    network : Network
        The layer tree, at its own input resolution.
    depth : int
        1: the built network's children (``stem``, ``blocks``, ``head``, ``pool``,
        ``classifier``, ... as the base names them). 2: each of those that is a sequence opened
        into its own children (``blocks.0``, ``blocks.1``, ..., ``stem.0``, ...), and so on. A
        module that is not a sequence (a residual block, a pooling layer) is never opened.

    Returns
    -------
    list of ModuleCost
        One row per module, named as in the built module's ``named_modules()`` (so, as the keys
        of fvcore's ``FlopCountAnalysis.by_module()``); the rows add up to
        :func:`network_cost`.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a whole number of at least 1, got {depth!r}")
    rows: list[ModuleCost] = []
    _collect_module_costs(network.body, _input_shape(network), "", depth, rows)
    return rows


def _collect_module_costs(layer: Sequential, shape: Shape, prefix: str, depth: int,
                          rows: list[ModuleCost]) -> Shape:
    """Append the rows of ``layer``'s children to ``rows``; return ``layer``'s output shape."""
    for name, child in layer.named_layers():
        if depth > 1 and isinstance(child, Sequential):
            shape = _collect_module_costs(child, shape, f"{prefix}{name}.", depth - 1, rows)
        else:
            flops, params, activations, shape = _cost(child, shape)
            rows.append(ModuleCost(prefix + name, flops, params, activations))
    return shape
