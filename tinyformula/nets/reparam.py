"""Re-parameterisation: train with parallel linear branches, deploy the plain network.

GhostNetV3 (Liu et al., 2024), after RepVGG (Ding et al., 2021) and MobileOne (Vasu et al.,
2023), found re-parameterisation the largest single gain for compact models: during training,
a convolution and its BatchNorm become several parallel branches, each a convolution with its
own BatchNorm, summed; after training the branches fold, exactly, into one convolution. The
deployed network is the plain one: same layers, FLOPs, parameters and latency.

This is a transformation of *built modules* (``torch.nn``), never of the layer tree
(:mod:`.layers`), which stays the deployed network's: the analytic count and the builder read
it, and a model file holds the plain structure.

* :func:`reparameterise` (in place): every bias-free ``nn.Conv2d`` directly followed by an
  ``nn.BatchNorm2d`` in an ``nn.Sequential``, when depthwise (``groups == in == out``) or 1x1
  (``groups == 1``) with centred padding, becomes a :class:`RepConv` holding

  - ``branches`` k x k branches (conv + BatchNorm); the first starts as the original pair;
  - beside a k x k depthwise conv (k > 1), a 1x1 depthwise branch (conv + BatchNorm), which
    GhostNetV3 found clearly helps;
  - a BatchNorm identity branch when the stride is 1 and input and output widths agree;

  and the BatchNorm's slot becomes an ``nn.Identity`` (the RepConv normalises its branches).
  Every conv + BN pair of the bases qualifies (the stems' and ResNet's 3x3 full convolutions
  are neither depthwise nor 1x1 and stay as they are), and so does any such pair in another
  module built of ``nn.Sequential`` containers.
* :func:`fold` (in place): every RepConv back to the plain pair, a bias-free ``nn.Conv2d``
  followed by an ``nn.BatchNorm2d``, with the same names, so the folded module's
  ``state_dict`` loads into the plain network and fvcore counts the same FLOPs. The branches'
  sum is an affine map, ``conv(x, K) + b`` per output channel: ``K`` goes into the conv, and the
  BatchNorm is made the bias exactly: weight 1, bias ``b``, running mean 0 and running variance
  ``v`` with ``v + eps == 1`` in float32 (:func:`unit_variance`), so its eval-mode scale
  ``1 / sqrt(v + eps)`` is exactly 1 and its shift exactly ``b``.

Training cost: each k x k branch costs what the original conv and BatchNorm cost; the 1x1
depthwise branch is a per-channel factor on the (strided) input and the identity branch a
BatchNorm, both elementwise. (Stacking the k x k kernels into one grouped convolution was
measured slower on CPU: PyTorch's depthwise kernels with a channel multiplier take a slow
path, 1.9x the time of two separate calls at two branches.)
"""

from __future__ import annotations

import math

import torch
from torch import nn


def unit_variance(eps: float) -> float:
    """The float32 running variance ``v`` whose ``v + eps`` is exactly 1.0 in float32 (the
    arithmetic of BatchNorm's eval-mode kernel), so the BatchNorm's scale is exactly 1."""
    one = torch.tensor(1.0, dtype=torch.float32)
    eps32 = torch.tensor(eps, dtype=torch.float32)
    v = one - eps32
    for _ in range(64):
        total = v + eps32
        if total == one:
            return float(v)
        v = torch.nextafter(v, -one if total > one else 2 * one)
    raise ArithmeticError(f"no float32 variance makes v + {eps} == 1")


def eligible(conv: nn.Module, norm: nn.Module) -> bool:
    """Whether ``conv`` followed by ``norm`` can be re-parameterised: a bias-free 2-D conv,
    depthwise or 1x1 dense, square odd kernel, centred zero padding, no dilation, then a
    BatchNorm2d over its outputs with affine weights and running statistics."""
    if type(conv) is not nn.Conv2d or type(norm) is not nn.BatchNorm2d:
        return False
    k = conv.kernel_size[0]
    return (conv.bias is None and conv.kernel_size == (k, k) and k % 2 == 1
            and conv.padding == (k // 2, k // 2) and conv.dilation == (1, 1)
            and conv.stride[0] == conv.stride[1] and conv.padding_mode == "zeros"
            and (is_depthwise(conv) or (k == 1 and conv.groups == 1))
            and norm.num_features == conv.out_channels and norm.affine
            and norm.track_running_stats)


def is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1


class RepConv(nn.Module):
    """A conv + BatchNorm trained as parallel branches (see the module doc); :meth:`folded`
    gives the plain pair.

    ``convs`` / ``norms``: the k x k branches, each a conv like the original and its own
    BatchNorm (branch 0 starts as the original pair). ``scale`` / ``scale_norm``: the 1x1
    depthwise branch beside a k x k depthwise conv (None otherwise): a 1x1 depthwise conv is a
    per-channel factor on the (strided) input, computed as such, elementwise. ``skip``: the
    identity branch's BatchNorm, or None.
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d, branches: int):
        super().__init__()
        if not eligible(conv, norm):
            raise ValueError("RepConv takes a depthwise or 1x1 bias-free Conv2d and its "
                             "BatchNorm2d")
        if isinstance(branches, bool) or not isinstance(branches, int) or branches < 1:
            raise ValueError(f"branches must be a whole number from 1, got {branches!r}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel, self.stride = conv.kernel_size[0], conv.stride[0]
        self.padding, self.groups = conv.padding[0], conv.groups
        self.depthwise = is_depthwise(conv)
        self.eps, self.momentum = norm.eps, norm.momentum
        dtype, device = conv.weight.dtype, conv.weight.device
        fan_out = self.kernel * self.kernel * self.out_channels   # as nets.build.init_weights

        self.convs = nn.ModuleList([conv])
        self.norms = nn.ModuleList([norm])
        for _ in range(branches - 1):
            extra = nn.Conv2d(self.in_channels, self.out_channels, self.kernel, self.stride,
                              self.padding, groups=self.groups, bias=False, device=device,
                              dtype=dtype)
            nn.init.normal_(extra.weight, 0.0, math.sqrt(2.0 / fan_out))
            self.convs.append(extra)
            self.norms.append(self._norm(self.out_channels, device, dtype))
        self.scale: nn.Parameter | None = None
        self.scale_norm: nn.BatchNorm2d | None = None
        if self.depthwise and self.kernel > 1:
            self.scale = nn.Parameter(torch.empty(self.out_channels, 1, 1, 1, device=device,
                                                  dtype=dtype))
            nn.init.normal_(self.scale, 0.0, math.sqrt(2.0 / self.out_channels))
            self.scale_norm = self._norm(self.out_channels, device, dtype)
        self.skip: nn.BatchNorm2d | None = None
        if self.stride == 1 and self.in_channels == self.out_channels:
            self.skip = self._norm(self.in_channels, device, dtype)

    def _norm(self, channels: int, device, dtype) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum, device=device,
                              dtype=dtype)

    @property
    def branches(self) -> int:
        return len(self.convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norms[0](self.convs[0](x))
        for conv, norm in zip(self.convs[1:], self.norms[1:]):
            y = y + norm(conv(x))
        if self.scale is not None:
            s = self.stride
            strided = x if s == 1 else x[:, :, ::s, ::s]
            assert self.scale_norm is not None
            y = y + self.scale_norm(strided * self.scale.reshape(1, -1, 1, 1))
        if self.skip is not None:
            y = y + self.skip(x)
        return y

    @torch.no_grad()
    def fold_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The branches' sum as one affine map in eval mode: ``(kernel, bias)`` in float64,
        kernel shaped like the plain conv's weight."""
        def affine(norm) -> tuple[torch.Tensor, torch.Tensor]:
            var, mean = norm.running_var.double(), norm.running_mean.double()
            t = norm.weight.double() / torch.sqrt(var + norm.eps)
            return t, norm.bias.double() - mean * t

        k, pad = self.kernel, self.kernel // 2
        device = self._weight().device
        kernel = torch.zeros(self.out_channels, self.in_channels // self.groups, k, k,
                             dtype=torch.float64, device=device)
        bias = torch.zeros(self.out_channels, dtype=torch.float64, device=device)
        for conv, norm in zip(self.convs, self.norms):
            t, b = affine(norm)
            kernel += torch.as_tensor(conv.weight).double() * t[:, None, None, None]
            bias += b
        if self.scale is not None:
            t, b = affine(self.scale_norm)
            kernel[:, :, pad, pad] += self.scale.double()[:, :, 0, 0] * t[:, None]
            bias += b
        if self.skip is not None:
            t, b = affine(self.skip)
            centre = torch.arange(self.out_channels, device=device)
            kernel[centre, 0 if self.depthwise else centre, pad, pad] += t
            bias += b
        return kernel, bias

    @torch.no_grad()
    def folded(self) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        """The plain pair computing what this module computes in eval mode."""
        kernel, bias = self.fold_terms()
        weight = self._weight()
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel, self.stride,
                         self.padding, groups=self.groups, bias=False, device=weight.device,
                         dtype=weight.dtype)
        conv.weight.copy_(kernel.to(weight.dtype))
        norm = self._norm(self.out_channels, weight.device, weight.dtype)
        norm.weight.fill_(1.0)
        norm.bias.copy_(bias.to(weight.dtype))
        first: nn.BatchNorm2d = self.norms[0]   # type: ignore[assignment]
        for name, value in (("running_mean", torch.zeros_like(bias, dtype=weight.dtype)),
                            ("running_var", torch.full_like(bias, unit_variance(self.eps),
                                                            dtype=weight.dtype)),
                            ("num_batches_tracked", first.num_batches_tracked)):
            getattr(norm, name).copy_(value)
        return conv.train(self.training), norm.train(self.training)

    def _weight(self) -> torch.Tensor:
        return self.convs[0].weight   # type: ignore[return-value]

    def extra_repr(self) -> str:
        kind = "depthwise" if self.depthwise else "1x1"
        return (f"{kind} {self.in_channels}->{self.out_channels} k{self.kernel} "
                f"s{self.stride}, {self.branches} branch(es)"
                + (" + 1x1" if self.scale is not None else "")
                + (" + identity" if self.skip is not None else ""))


def _pairs(model: nn.Module):
    """``(container, conv name, norm name)`` of every eligible pair in ``model``'s
    ``nn.Sequential`` containers."""
    for container in list(model.modules()):
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:]):
            if eligible(container._modules[first], container._modules[second]):
                yield container, first, second


def reparameterisable(model: nn.Module) -> int:
    """How many conv + BatchNorm pairs of ``model`` :func:`reparameterise` would branch (0: the
    model has none in an ``nn.Sequential``, e.g. a traced model whose forward pairs attributes
    such as ``self.conv1`` / ``self.bn1``)."""
    return sum(1 for _ in _pairs(model))


def reparameterise(model: nn.Module, branches: int, seed: int | None = None) -> nn.Module:
    """Turn every eligible conv + BatchNorm pair of ``model`` into a :class:`RepConv` with
    ``branches`` k x k branches (plus the 1x1 and identity ones where they apply), in place;
    returns ``model``. The first branch of each starts as the original pair, so the branched
    model's weights extend the plain one's; the others are drawn as the builder draws
    (``seed``: from a generator seeded so; None: torch's global one). A model already
    branched is refused (ValueError)."""
    if any(isinstance(m, RepConv) for m in model.modules()):
        raise ValueError("the model is already re-parameterised; fold it first")
    pairs = list(_pairs(model))
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        for container, conv_name, norm_name in pairs:
            conv, norm = container._modules[conv_name], container._modules[norm_name]
            container._modules[conv_name] = RepConv(conv, norm, branches)
            container._modules[norm_name] = nn.Identity()
    return model


def fold(model: nn.Module) -> nn.Module:
    """Fold every :class:`RepConv` of ``model`` back into the plain conv + BatchNorm pair, in
    place (the BatchNorm returns to the slot the RepConv's identity holds); returns ``model``.
    A plain model is returned unchanged."""
    for container in list(model.modules()):
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:]):
            module = container._modules[first]
            if isinstance(module, RepConv):
                if type(container._modules[second]) is not nn.Identity:
                    raise ValueError(f"RepConv {first!r} is not followed by the identity its "
                                     f"BatchNorm left")
                conv, norm = module.folded()
                container._modules[first], container._modules[second] = conv, norm
    if any(isinstance(m, RepConv) for m in model.modules()):
        raise ValueError("a RepConv outside an nn.Sequential cannot be folded")
    return model


def branch_count(model: nn.Module) -> int:
    """How many re-parameterised layers ``model`` holds (0: a plain model)."""
    return sum(isinstance(m, RepConv) for m in model.modules())
