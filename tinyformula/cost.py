"""Analytic cost model: fvcore's FLOP count and the parameter count, computed from the spec.

One small handle per layer type (as in fvcore's op registry), each mapping an input shape
``(channels, height, width)`` to ``(flops, params, output shape)``. The conventions are
fvcore 0.1.5's default handles (see README.md): a convolution costs output elements x input
channels / groups x kernel area; BatchNorm in eval mode 2 per element; ``adaptive_avg_pool2d``
1 per input element; a linear layer in x out. Activations, ``mean``, max-pooling, sigmoid and
elementwise products or sums cost nothing. No torch is imported here, so the search can count
thousands of candidates in the time fvcore counts one.
"""

from __future__ import annotations

from dataclasses import dataclass

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

Shape = tuple  # (channels, height, width), or (features,) after global pooling


@dataclass(frozen=True)
class Cost:
    """What a candidate costs: its input resolution, fvcore FLOPs and parameter count."""

    resolution: int
    flops: int
    params: int


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output size of a convolution or pooling window (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


_HANDLES: dict[type, object] = {}


def handles(layer_type: type):
    """Register the cost handle of one layer type."""

    def register(handle):
        _HANDLES[layer_type] = handle
        return handle

    return register


def layer_cost(layer, shape: Shape) -> tuple[int, int, Shape]:
    """``(flops, params, output shape)`` of one layer (or a whole subtree) for an input shape."""
    try:
        handle = _HANDLES[type(layer)]
    except KeyError:
        raise TypeError(f"no cost handle for layer type {type(layer).__name__}") from None
    return handle(layer, shape)


@handles(Conv)
def _conv(layer: Conv, shape):
    ch, h, w = shape
    if ch != layer.in_ch:
        raise ValueError(f"Conv expects {layer.in_ch} channels, got {ch}")
    oh = conv_output_size(h, layer.kernel, layer.stride, layer.pad)
    ow = conv_output_size(w, layer.kernel, layer.stride, layer.pad)
    per_output = (layer.in_ch // layer.groups) * layer.kernel * layer.kernel
    params = layer.out_ch * per_output + (layer.out_ch if layer.bias else 0)
    return layer.out_ch * oh * ow * per_output, params, (layer.out_ch, oh, ow)


@handles(BatchNorm)
def _batch_norm(layer: BatchNorm, shape):
    ch, h, w = shape
    return 2 * ch * h * w, 2 * ch, shape


@handles(Act)
def _act(layer: Act, shape):
    return 0, 0, shape


@handles(SqueezeExcite)
def _squeeze_excite(layer: SqueezeExcite, shape):
    c, r = layer.channels, layer.reduced
    # Both 1x1 convolutions act on a 1x1 map: c*r multiply-adds each; biases are parameters only.
    return 2 * c * r, 2 * c * r + r + c, shape


@handles(MaxPool)
def _max_pool(layer: MaxPool, shape):
    ch, h, w = shape
    oh = conv_output_size(h, layer.kernel, layer.stride, layer.padding)
    ow = conv_output_size(w, layer.kernel, layer.stride, layer.padding)
    return 0, 0, (ch, oh, ow)


@handles(GlobalAvgPool)
def _global_avg_pool(layer: GlobalAvgPool, shape):
    ch, h, w = shape
    return ch * h * w, 0, (ch,) if layer.flatten else (ch, 1, 1)


@handles(Flatten)
def _flatten(layer: Flatten, shape):
    return 0, 0, (shape[0] * shape[1] * shape[2],)


@handles(Linear)
def _linear(layer: Linear, shape):
    (features,) = shape
    if features != layer.in_features:
        raise ValueError(f"Linear expects {layer.in_features} features, got {features}")
    params = layer.in_features * layer.out_features + (layer.out_features if layer.bias else 0)
    return layer.in_features * layer.out_features, params, (layer.out_features,)


@handles(Sequential)
def _sequential(layer: Sequential, shape):
    flops = params = 0
    counted = {}
    for child in layer.layers:
        # Repeated blocks are shared objects, not always adjacent (GhostNet cycles its stride-1
        # blocks): count each at a given input shape once. ``layer`` keeps ids valid meanwhile.
        key = (id(child), shape)
        result = counted.get(key)
        if result is None:
            result = counted[key] = layer_cost(child, shape)
        f, p, shape = result
        flops += f
        params += p
    return flops, params, shape


@handles(GhostModule)
def _ghost_module(layer: GhostModule, shape):
    f1, p1, (c1, h, w) = layer_cost(layer.primary, shape)
    f2, p2, (c2, h2, w2) = layer_cost(layer.cheap, (c1, h, w))
    if (h2, w2) != (h, w) or c1 + c2 < layer.out_ch:
        raise ValueError(f"GhostModule cannot make {layer.out_ch} channels from "
                         f"{(c1, h, w)} and {(c2, h2, w2)}")
    return f1 + f2, p1 + p2, (layer.out_ch, h, w)


@handles(Residual)
def _residual(layer: Residual, shape):
    flops, params, out = layer_cost(layer.body, shape)
    if layer.shortcut is not None:
        f, p, short = layer_cost(layer.shortcut, shape)
        flops, params = flops + f, params + p
    else:
        short = shape
    if short != out:
        raise ValueError(f"Residual branches disagree: body {out}, shortcut {short}")
    return flops, params, out


def network_cost(network: Network) -> Cost:
    """Count a whole network at its own input resolution (batch 1)."""
    shape = (network.in_channels, network.resolution, network.resolution)
    flops, params, _ = layer_cost(network.body, shape)
    return Cost(resolution=network.resolution, flops=flops, params=params)
