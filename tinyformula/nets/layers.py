"""Plain-data layer descriptions: the one structure both the cost model and the builder read.

A base network turns a :class:`~tinyformula.Scale` into a tree of these frozen dataclasses.
``tinyformula.nets.count`` walks the tree with pure-Python arithmetic (no torch), and
``tinyformula.nets.build`` turns the same tree into ``torch.nn`` modules. Because every channel
count, kernel, stride and padding is decided here, once, the two cannot drift apart.

Nothing in this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


def same_padding(kernel: int, stride: int = 1) -> int:
    """Symmetric padding timm uses for a convolution: ``((stride - 1) + (kernel - 1)) // 2``."""
    return ((stride - 1) + (kernel - 1)) // 2


@dataclass(frozen=True)
class Conv:
    """2-D convolution; ``groups == in_ch`` makes it depthwise."""

    in_ch: int
    out_ch: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool = False
    padding: int | None = None  # None: same_padding(kernel, stride)

    @property
    def pad(self) -> int:
        return same_padding(self.kernel, self.stride) if self.padding is None else self.padding


@dataclass(frozen=True)
class BatchNorm:
    channels: int


# Every activation a layer tree may name (``Act.kind``, squeeze-excite's act and gate).
ACTIVATIONS = ("relu", "relu6", "swish", "hard_swish", "sigmoid", "hard_sigmoid")


@dataclass(frozen=True)
class Act:
    """Elementwise activation: ``swish``, ``relu``, ``relu6``, ``hard_swish``, ``sigmoid`` or
    ``hard_sigmoid`` (:data:`ACTIVATIONS`)."""

    kind: str


@dataclass(frozen=True)
class SqueezeExcite:
    """Channel attention: spatial mean, 1x1 reduce (bias), act, 1x1 expand (bias), gate, multiply.

    The spatial mean is ``Tensor.mean`` as in timm, which fvcore does not count.
    """

    channels: int
    reduced: int
    act: str = "swish"
    gate: str = "sigmoid"


@dataclass(frozen=True)
class LayerScale:
    """A learned per-channel scale (``x * gamma``, MobileNetV4's layer scale): ``channels``
    parameters, started at ``init``; an elementwise product, which fvcore does not count."""

    channels: int
    init: float = 1e-5


@dataclass(frozen=True)
class MaxPool:
    kernel: int
    stride: int
    padding: int = 0


@dataclass(frozen=True)
class GlobalAvgPool:
    """``adaptive_avg_pool2d`` to 1x1 (fvcore counts one FLOP per input element), then flatten
    unless ``flatten=False`` keeps the ``(channels, 1, 1)`` map for a 1x1 conv (GhostNet's head)."""

    flatten: bool = True


@dataclass(frozen=True)
class Flatten:
    """``(channels, h, w)`` to ``(channels * h * w,)``; free."""


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class Sequential:
    """Layers applied in order; ``names`` (optional) label them in the built module."""

    layers: tuple
    names: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.names is not None and len(self.names) != len(self.layers):
            raise ValueError("Sequential: names and layers differ in length")

    def named_layers(self) -> Iterator[tuple[str, object]]:
        """``(name, layer)`` in order; unnamed layers are called by their position, ``"0"``,
        ``"1"``, ..., as in ``torch.nn.Sequential``. The built module's children get these names."""
        names = self.names or [str(i) for i in range(len(self.layers))]
        return zip(names, self.layers)


@dataclass(frozen=True)
class GhostModule:
    """GhostNet's module: ``primary`` makes some channels, ``cheap`` (depthwise, stride 1) makes
    more from them; the two are concatenated and sliced to ``out_ch`` (cat and slice are free)."""

    primary: Sequential
    cheap: Sequential
    out_ch: int


@dataclass(frozen=True)
class Residual:
    """``act(body(x) + shortcut(x))``; ``shortcut=None`` is the identity, ``act=None`` none."""

    body: Sequential
    shortcut: Sequential | None = None
    act: str | None = None


@dataclass(frozen=True)
class Network:
    """A whole classifier: the layer tree plus the input it is meant for."""

    body: Sequential
    resolution: int
    in_channels: int = 3
    num_classes: int = 1000
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class LayerHandles(dict):
    """A registry of one handle per layer type: how ``cost`` and ``build`` dispatch.

    As fvcore's registry of op handles (a dict from op name to a function), keyed here by the
    layer's exact type, since our layers are classes where fvcore's traced ops are names.
    ``handles[type(layer)](layer, ...)`` calls the registered handle; a type without one raises
    TypeError naming it. Layer classes are never subclassed, so exact types lose nothing.

    Why not ``functools.singledispatch`` (what ``build`` used): it does the same through an
    MRO-aware, weak-key-cached lookup and a wrapper, and made the cost model 1.6-1.8x slower
    (EfficientNet-B0 at 224 px and d = 0.5, 1, 2: about 140 us a count against 220 us; GhostNet
    about 280 against 500 us; 2-core CPU shared with other jobs). Small next to training, but
    counting is the width solver's inner loop, and the one style serves both modules.

    Parameters
    ----------
    purpose : str
        What a handle makes, for the error message (``"cost handle"``, ``"builder"``).
    """

    def __init__(self, purpose: str):
        super().__init__()
        self.purpose = purpose

    def register(self, layer_type: type) -> Callable[[Callable], Callable]:
        """Decorator: make the decorated function the handle of ``layer_type``."""

        def register(handle: Callable) -> Callable:
            if layer_type in self:
                raise ValueError(f"{layer_type.__name__} already has a {self.purpose}")
            self[layer_type] = handle
            return handle

        return register

    def __missing__(self, layer_type: type):
        raise TypeError(f"no {self.purpose} for layer type {layer_type.__name__}")
