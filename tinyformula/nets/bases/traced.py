"""Any PyTorch model as a base: ``factory(depth_multiplier, width_multiplier, num_classes)``
returns an ``nn.Module``; its costs are counted by tracing the built module.

A :class:`TracedBase` has no layer tree, so nothing is counted analytically: for each
(d, w, classes) the factory builds the module, and each distinct module (its structure: every
submodule's type, settings and parameter shapes) is counted once per input size -- FLOPs by
fvcore (the project's convention), parameters by ``numel``, activations (output elements of
every conv and linear layer) by forward hooks -- and cached for the life of the process, by
(d, w, classes, resolution) and by (structure, resolution). The input size is the toolkit's:
``int(resolution_base * r)``; the module must map a ``(batch, 3, size, size)`` batch to
``(batch, num_classes)`` logits at every size the search uses.

How long one count takes is measured and reported (``tinyformula bases``, the run summary):
:attr:`TracedBase.seconds_per_count`.

Torch is imported only when a traced base builds or counts (inside functions), so registering
one and listing bases stays light.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...core.errors import TinyFormulaError
from ...core.files import checksum
from ..count import Cost, ModuleCost
from ..scale import Scale
from .spec import BaseNetwork, _check_scale

# The smallest multiplier the search draws (sweep.space.MULTIPLIER_RANGE): a factory's module
# is checked at this fraction of the base resolution.
SMALLEST_R = 0.25
_PLAIN = (bool, int, float, str, type(None))


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


class TracedBase(BaseNetwork):
    """A base built by a user's factory and counted by tracing.

    Parameters
    ----------
    name : str
        What ``--base`` and files call it.
    factory : callable
        ``factory(depth_multiplier, width_multiplier, num_classes) -> nn.Module``.
    resolution : int
        The input size at r = 1 (224 for ImageNet-style data; the search's small-image data
        uses its own 32).
    summary : str
        One line for ``tinyformula bases``.
    source : str or None
        Where the factory can be imported from (``"module:function"`` or
        ``"path/to/file.py:function"``): recorded with runs and formulas so another process
        (a worker, ``predict`` elsewhere) rebuilds the base. None when it cannot be imported
        by name (a lambda, a function inside a function).
    """

    counted = "traced"

    def __init__(self, name: str, factory: Callable, resolution: int = 224, summary: str = "",
                 source: str | None = None, method: str | None = None):
        if not callable(factory):
            raise TinyFormulaError(f"base {name}: factory must be callable, got "
                                   f"{type(factory).__name__}")
        self.name = name
        self.factory = factory
        self.default_resolution = resolution
        self.summary = summary or f"a PyTorch model built by {source or 'a factory'}"
        self.source = source
        self._structures: dict = {}   # (d, w, classes) -> structure key
        self._costs: dict = {}        # (structure, resolution) -> Cost
        self._by_scale: dict = {}     # (d, w, classes, resolution) -> Cost
        self.counts = 0               # modules traced
        self.count_seconds = 0.0      # time spent tracing them
        # "shape" or "fvcore": chosen on the first count (None), or given (a worker process
        # rebuilding a base its driver checked)
        self.method: str | None = method
        self.note = ""                   # how it is counted, in words
        self._meta = True                # whether the factory builds on the meta device

    # -- building ------------------------------------------------------------------------------

    def make(self, d: float, w: float, num_classes: int):
        """``factory(d, w, num_classes)``, checked: a factory that raises or returns something
        other than an ``nn.Module`` is one line naming the base and the multipliers."""
        from torch import nn

        where = f"base {self.name}: factory(d={d:g}, w={w:g}, num_classes={num_classes})"
        try:
            model = self.factory(d, w, num_classes)
        except TinyFormulaError:
            raise
        except Exception as error:  # the user's code: any failure is reported, not raised
            raise TinyFormulaError(f"{where} raised {_describe(error)}") from None
        if not isinstance(model, nn.Module):
            raise TinyFormulaError(f"{where} returned {type(model).__name__}, not a "
                                   f"torch.nn.Module")
        return model

    def build(self, scale: Scale | None = None, num_classes: int = 1000,
              resolution_base: int | None = None):
        """The factory's module at this scale; its ``input_resolution`` is the image size to
        feed it (``int(resolution_base * r)``)."""
        scale = _check_scale(scale)
        resolution = self._resolution(scale, resolution_base)
        model = self.make(scale.d, scale.w, num_classes)
        model.input_resolution = resolution
        model.num_classes = num_classes
        return model

    def layers(self, scale: Scale, num_classes: int):
        raise TinyFormulaError(f"base {self.name} is a PyTorch model counted by tracing: it has "
                               f"no layer tree (latency tables and per-block costs need a base "
                               f"declared as a spec)")

    def structure(self, scale: Scale, num_classes: int):
        key = (scale.d, scale.w, num_classes)
        found = self._structures.get(key)
        if found is None:
            found = self._structures[key] = structure_key(self._light(scale, num_classes))
        return found

    def _light(self, scale: Scale, num_classes: int):
        """The factory's module without its weights' cost: built on the meta device (shapes
        only), or on the CPU (its RNG state kept) for a factory that cannot build there."""
        import torch

        if self._meta:
            try:
                with torch.device("meta"):
                    return self.make(scale.d, scale.w, num_classes)
            except TinyFormulaError:
                with torch.random.fork_rng(devices=[]):
                    self.make(scale.d, scale.w, num_classes)   # raises on the CPU too?
                self._meta = False
        with torch.random.fork_rng(devices=[]):
            return self.make(scale.d, scale.w, num_classes)

    # -- counting ------------------------------------------------------------------------------

    def _resolution(self, scale: Scale, resolution_base: int | None) -> int:
        from ...core.constraints import check
        from .spec import RESOLUTION_BASE

        base = check("resolution_base", resolution_base or self.default_resolution,
                     RESOLUTION_BASE)
        resolution = scale.resolution(base)
        if resolution < 1:
            raise TinyFormulaError(f"r={scale.r:g} gives a {resolution}-pixel input at "
                                   f"resolution base {base}; r must be at least {1 / base:.4g}")
        return resolution

    def cost(self, scale: Scale | None = None, num_classes: int = 1000,
             resolution_base: int | None = None) -> Cost:
        """FLOPs (fvcore's count), parameters and activations of the built module, counted by
        tracing it at batch 1 (cached)."""
        from ...core.constraints import check
        from .spec import NUM_CLASSES

        scale = _check_scale(scale)
        num_classes = check("num_classes", num_classes, NUM_CLASSES)
        resolution = self._resolution(scale, resolution_base)
        key = (scale.d, scale.w, num_classes, resolution)
        cost = self._by_scale.get(key)
        if cost is None:
            model = None
            structure = self._structures.get(key[:3])
            if structure is None:
                model = self._light(scale, num_classes)
                structure = self._structures[key[:3]] = structure_key(model)
            cost = self._costs.get((structure, resolution))
            if cost is None:
                cost = self._costs[(structure, resolution)] = self._count(
                    scale, num_classes, resolution, model)
            self._by_scale[key] = cost
        return cost

    def _count(self, scale: Scale, num_classes: int, resolution: int, model=None) -> Cost:
        from ..build import param_count

        if self.method is None:
            self._choose_method()
        start = time.perf_counter()
        where = (f"base {self.name} at r={scale.r:g}, d={scale.d:g}, w={scale.w:g} "
                 f"({resolution} px, {num_classes} classes)")
        if self.method == "fvcore":
            flops, activations, model = self._fvcore_count(scale, num_classes, resolution, where)
        else:
            if model is None:
                model = self._light(scale, num_classes)
            try:
                flops, activations = self._shape_count(model, num_classes, resolution, where)
            except TinyFormulaError:
                if not self._meta:
                    raise
                self._meta = False   # a forward pass that needs real tensors: on the CPU
                model = self._light(scale, num_classes)
                flops, activations = self._shape_count(model, num_classes, resolution, where)
        self.counts += 1
        self.count_seconds += time.perf_counter() - start
        return Cost(resolution=resolution, flops=flops, params=param_count(model),
                    activations=activations)

    def _shape_count(self, model, num_classes: int, resolution: int, where: str):
        """FLOPs and activations by the shape-only trace (:mod:`..shape_count`), with the
        output's shape checked: ``(batch, num_classes)`` logits."""
        from ..shape_count import shape_count

        device = next((p.device.type for p in model.parameters()), "cpu")
        model.eval()
        try:
            flops, activations, output = shape_count(model, resolution, device)
        except Exception as error:
            raise TinyFormulaError(f"{where}: the module's forward pass raised "
                                   f"{_describe(error)}") from None
        _check_output(output, 1, num_classes, where)
        return flops, activations

    def _fvcore_count(self, scale: Scale, num_classes: int, resolution: int, where: str):
        """FLOPs by fvcore itself (a real forward pass on the CPU), activations by hooks."""
        import torch

        from ..build import activation_counts, fvcore_flops

        with torch.random.fork_rng(devices=[]):
            model = self.make(scale.d, scale.w, num_classes)
        model.eval()
        try:
            with torch.no_grad():
                output = model(torch.zeros(1, 3, resolution, resolution))
        except Exception as error:
            raise TinyFormulaError(f"{where}: the module's forward pass raised "
                                   f"{_describe(error)}") from None
        _check_output(output, 1, num_classes, where)
        try:
            flops = fvcore_flops(model, resolution)
            activations = sum(activation_counts(model, resolution).values())
        except Exception as error:
            raise TinyFormulaError(f"{where}: fvcore could not trace the module "
                                   f"({_describe(error)})") from None
        return flops, activations, model

    def _choose_method(self) -> None:
        """Compare the shape-only count with fvcore's on the base at r = d = w = 1 (at its own
        resolution and at the smallest the search uses, 10 classes; batch 2 checks the output
        keeps the batch): equal, the shape-only count is used from now on; else fvcore."""
        import torch

        self.method = "fvcore"
        scale = Scale()
        for resolution in sorted({self.default_resolution,
                                  max(1, int(self.default_resolution * SMALLEST_R))}):
            where = (f"base {self.name} at r = d = w = 1 ({resolution} px, 10 classes)")
            flops, activations, model = self._fvcore_count(scale, 10, resolution, where)
            try:
                with torch.no_grad():
                    output = model(torch.zeros(2, 3, resolution, resolution))
            except Exception as error:
                raise TinyFormulaError(f"{where}: the module's forward pass raised "
                                       f"{_describe(error)} on a batch of 2") from None
            _check_output(output, 2, 10, where)
            light = self._light(scale, 10)
            try:
                fast = self._shape_count(light, 10, resolution, where)
            except TinyFormulaError:
                if not self._meta:
                    raise
                self._meta = False   # the module cannot run on meta tensors: on the CPU
                fast = self._shape_count(self._light(scale, 10), 10, resolution, where)
            if fast != (flops, activations):
                self.note = (f"counted by fvcore at every size: the shape-only count "
                             f"({fast[0]:,} FLOPs at {resolution} px) differs from fvcore's "
                             f"({flops:,})")
                return
        self.method = "shape"
        self.note = ("counted by a shape-only trace (meta tensors) with fvcore's conventions, "
                     "equal to fvcore's count on this base" if self._meta else
                     "counted by a shape-only trace with fvcore's conventions (on the CPU: "
                     "the module cannot run on meta tensors)")

    def counting(self) -> dict:
        """How its costs are counted: traced, how many networks were counted in this process
        and the mean seconds one took (build + count), and the method in words."""
        return {"counted": self.counted, "counts": self.counts,
                "seconds_per_count": self.seconds_per_count, "note": self.note}

    @property
    def seconds_per_count(self) -> float | None:
        """Mean seconds to build and trace one module here (None before the first count)."""
        return self.count_seconds / self.counts if self.counts else None

    def cost_breakdown(self, scale: Scale | None = None, num_classes: int = 1000,
                       resolution_base: int | None = None, depth: int = 1) -> list[ModuleCost]:
        """Each named module's FLOPs (fvcore's ``by_module``), parameters and activations at
        ``depth`` (1: the module's children), traced."""
        import torch

        from ..build import activation_counts, fvcore_by_module

        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a whole number of at least 1, got {depth!r}")
        self.cost(scale, num_classes, resolution_base)   # checks the module first
        scale = _check_scale(scale)
        with torch.random.fork_rng(devices=[]):
            model = self.build(scale, num_classes, resolution_base)
        resolution = model.input_resolution
        flops = fvcore_by_module(model, resolution)
        outputs = activation_counts(model, resolution)
        names = [name for name, _ in model.named_modules()
                 if name and name.count(".") == depth - 1]
        rows = []
        for name in names:
            module = model.get_submodule(name)
            rows.append(ModuleCost(
                name, flops.get(name, 0), sum(p.numel() for p in module.parameters()),
                sum(v for k, v in outputs.items() if k == name or k.startswith(name + "."))))
        return rows

    # -- records -------------------------------------------------------------------------------

    def record(self) -> dict:
        """The base's name, resolution, summary and where its factory is imported from: the
        factory's code itself is never stored (a file read elsewhere could run anything)."""
        body = {"name": self.name, "factory": self.source, "resolution": self.default_resolution,
                "summary": self.summary}
        return {"kind": "traced", "spec": body, "checksum": checksum(body)}

    def check_input(self, resolution: int, origin: str | None = None) -> None:
        """Build at r = d = w = 1 and count at ``resolution`` px: a factory that raises,
        returns no module or the wrong output shape is refused here, in one line."""
        self.cost(Scale(resolution / self.default_resolution), 10, self.default_resolution)

    def __repr__(self) -> str:
        return f"<base {self.name} (traced): {self.summary}>"


def _check_output(output, batch: int, num_classes: int, where: str) -> None:
    shape = tuple(getattr(output, "shape", ()))
    if shape != (batch, num_classes):
        raise TinyFormulaError(f"{where}: the module returned "
                               f"{'shape ' + str(shape) if shape else type(output).__name__} "
                               f"for a batch of {batch}; expected ({batch}, {num_classes}): "
                               f"(batch, classes) logits")


_NOT_PLAIN = object()


def _plain(value):
    """A hashable copy of a setting (a number, a string, or a tuple or list of them)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value):
        return tuple(value)
    return _NOT_PLAIN


def structure_key(model) -> tuple:
    """What makes two modules the same network: every submodule's name, type, settings
    (``extra_repr``) and plain attributes, and every parameter's and buffer's shape."""
    parts = []
    for name, module in model.named_modules():
        plain = tuple(sorted((k, _plain(v)) for k, v in vars(module).items()
                             if not k.startswith("_") and k != "training"
                             and _plain(v) is not _NOT_PLAIN))
        parts.append((name, type(module).__qualname__, module.extra_repr(), plain,
                      tuple((n, tuple(p.shape)) for n, p in module.named_parameters(
                          recurse=False)),
                      tuple((n, tuple(b.shape)) for n, b in module.named_buffers(
                          recurse=False) if b is not None)))
    return tuple(parts)
