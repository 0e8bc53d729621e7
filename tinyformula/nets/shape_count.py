"""fvcore's FLOP count without fvcore's cost: a shape-only trace on the meta device.

fvcore (the project's FLOP convention) traces a module with ``torch.jit.trace``, which runs the
forward pass for real, then sums one handle per counted ATen op. For a traced base, whose
search counts hundreds of networks, that real forward pass dominates (seconds for a wide
network at 128 px on a loaded CPU). :func:`shape_count` runs the same forward pass on meta
tensors (shapes only, no arithmetic) under a ``TorchFunctionMode`` that applies fvcore 0.1.5's
default handles (``fvcore/nn/flop_count.py``, ``jit_handles.py``) to the functions the jit
tracer records as those ops: convolutions (transposed ones too), ``linear``, ``addmm``,
``mm``, ``matmul``, ``bmm``, ``einsum``, ``batch_norm``, ``group_norm``, ``layer_norm``,
``instance_norm``, ``adaptive_avg_pool2d``, nearest and bilinear 2-D upsampling and
``grid_sample``. Anything else costs 0, as in fvcore. A Python function without a handle runs
as a whole (the mode cannot see the ops inside it, which the jit tracer does see: e.g.
``F.multi_head_attention_forward``'s matrix products), so the count can fall short of fvcore's.

It is therefore checked against fvcore itself: :class:`~.bases.traced.TracedBase` compares
the two on the base's own network before using it, and counts with fvcore at every size when
they differ.
Parameters are ``numel`` of the meta parameters; activations (Dollár et al.) the output
elements of every ``Conv2d`` and ``Linear``, from forward hooks.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


def _arg(args, kwargs, index: int, name: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _size(tensor) -> int:
    return math.prod(tensor.shape)


def _conv(args, kwargs, out) -> int:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return x.shape[0] * _size(w) * math.prod(out.shape[2:])


def _conv_transpose(args, kwargs, out) -> int:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return x.shape[0] * _size(w) * math.prod(x.shape[2:])


def _linear(args, kwargs, out) -> int:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return _size(x) * w.shape[0]


def _addmm(args, kwargs, out) -> int:
    a, b = _arg(args, kwargs, 1, "mat1"), _arg(args, kwargs, 2, "mat2")
    return a.shape[0] * a.shape[1] * b.shape[1]


def _matmul(args, kwargs, out) -> int:
    a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
    return _size(a) * b.shape[-1]


def _rmatmul(args, kwargs, out) -> int:   # b.__rmatmul__(a) is a @ b
    return _size(args[1]) * args[0].shape[-1]


def _bmm(args, kwargs, out) -> int:
    a, b = args[0], args[1] if len(args) > 1 else kwargs.get("mat2")
    n, c, t = a.shape
    return n * c * t * b.shape[-1]


def _einsum(args, kwargs, out) -> int:
    import numpy as np

    equation = args[0].replace(" ", "")
    operands = args[1:]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    shapes = [tuple(t.shape) for t in operands]
    order = OrderedDict((k, 0) for k in equation if k.isalpha()).keys()
    equation = equation.translate({ord(x): 97 + i for i, x in enumerate(order)})
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    path = np.einsum_path(equation, *[np.zeros(s) for s in shapes], optimize="optimal")[1]
    for line in path.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    raise NotImplementedError("unsupported einsum")


def _batch_norm(args, kwargs, out) -> int:
    x = _arg(args, kwargs, 0, "input")
    affine = _arg(args, kwargs, 3, "weight") is not None
    if _arg(args, kwargs, 5, "training", False):
        return _size(x) * (5 if affine else 4)
    return _size(x) * (2 if affine else 1)


def _norm(weight_index: int):
    def count(args, kwargs, out) -> int:
        affine = _arg(args, kwargs, weight_index, "weight") is not None
        return _size(_arg(args, kwargs, 0, "input")) * (5 if affine else 4)

    return count


def _adaptive_avg_pool2d(args, kwargs, out) -> int:
    return _size(_arg(args, kwargs, 0, "input"))


def _interpolate(args, kwargs, out) -> int:
    x = _arg(args, kwargs, 0, "input")
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    if x.dim() != 4:
        return 0
    return {"nearest": 1, "bilinear": 4}.get(mode, 0) * _size(out)


def _grid_sample(args, kwargs, out) -> int:
    return 4 * _size(out)


HANDLES = {
    torch.conv1d: _conv, torch.conv2d: _conv, torch.conv3d: _conv,
    torch.conv_transpose1d: _conv_transpose, torch.conv_transpose2d: _conv_transpose,
    torch.conv_transpose3d: _conv_transpose,
    F.linear: _linear,
    torch.addmm: _addmm, torch.Tensor.addmm: _addmm,
    torch.mm: _matmul, torch.Tensor.mm: _matmul,
    torch.matmul: _matmul, torch.Tensor.matmul: _matmul, torch.Tensor.__matmul__: _matmul,
    torch.Tensor.__rmatmul__: _rmatmul,
    torch.bmm: _bmm, torch.Tensor.bmm: _bmm,
    torch.einsum: _einsum,
    F.batch_norm: _batch_norm,
    F.group_norm: _norm(2), F.layer_norm: _norm(2), F.instance_norm: _norm(3),
    F.adaptive_avg_pool2d: _adaptive_avg_pool2d,
    F.interpolate: _interpolate,
    F.grid_sample: _grid_sample,
}


# On meta tensors some functions are not run (meta kernels of norms, convolutions and
# elementwise sums run slow Python reference code): their output shape is computed here.
SAME_SHAPE = {F.batch_norm, F.group_norm, F.layer_norm, F.instance_norm,
              F.relu, F.relu6, F.hardswish, F.hardsigmoid, F.silu, F.gelu, F.elu,
              F.leaky_relu, torch.relu, torch.relu_, torch.sigmoid, torch.tanh,
              torch.Tensor.relu, torch.Tensor.relu_, torch.Tensor.sigmoid}
ELEMENTWISE = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__,
               torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__}
IN_PLACE = {torch.Tensor.add_, torch.Tensor.__iadd__, torch.Tensor.mul_,
            torch.Tensor.__imul__}
CONVOLUTIONS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}


def _as_tuple(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _conv_shape(args, kwargs, dims: int):
    """The output shape of ``conv{dims}d``, or None where it is not plain arithmetic."""
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    stride = _as_tuple(_arg(args, kwargs, 3, "stride", 1), dims)
    padding = _arg(args, kwargs, 4, "padding", 0)
    dilation = _as_tuple(_arg(args, kwargs, 5, "dilation", 1), dims)
    if isinstance(padding, str) or x.dim() != dims + 2:
        return None
    padding = _as_tuple(padding, dims)
    spatial = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in zip(
        x.shape[2:], w.shape[2:], stride, padding, dilation))
    if any(size < 1 for size in spatial):
        return None   # let the kernel raise its own error
    return (x.shape[0], w.shape[0]) + spatial


def _meta_shortcut(func, args, kwargs):
    """The output of ``func`` on meta tensors without running it, or None to run it."""
    first = args[0] if args else kwargs.get("input")
    if not (isinstance(first, torch.Tensor) and first.is_meta):
        return None
    if func in SAME_SHAPE:
        return torch.empty_like(first)
    if func in CONVOLUTIONS:
        shape = _conv_shape(args, kwargs, CONVOLUTIONS[func])
        return None if shape is None else first.new_empty(shape)
    if func in ELEMENTWISE or func in IN_PLACE:
        other = args[1] if len(args) > 1 else kwargs.get("other")
        if isinstance(other, torch.Tensor) and other.shape == first.shape \
                and other.dtype == first.dtype and not kwargs:
            return first if func in IN_PLACE else torch.empty_like(first)
    return None


class _Counter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = _meta_shortcut(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        handle = HANDLES.get(func)
        if handle is not None:
            self.flops += int(handle(args, kwargs, out))
        return out


def shape_count(model: nn.Module, resolution: int, device: str = "meta"):
    """``(flops, activations, output)`` of ``model`` (on ``device``) on one
    ``(1, 3, resolution, resolution)`` input: fvcore's FLOP convention, the output elements of
    every conv and linear layer, and the output (a meta tensor on the meta device)."""
    activations = [0]

    def hook(_module, _inputs, output):
        activations[0] += output.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        counter = _Counter()
        with torch.no_grad(), counter:
            output = model(torch.zeros(1, 3, resolution, resolution, device=device))
    finally:
        for h in hooks:
            h.remove()
    return counter.flops, activations[0], output
