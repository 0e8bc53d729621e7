"""The block kinds a stage table may name, one builder each: a block string and its input width
in, a plain-data layer (``tinyformula.nets.layers``) and its output width out.

The MobileNet family follows timm's EfficientNet / MobileNetV3 builder exactly, so counts equal
timm's models (``timm.models._efficientnet_blocks``):

* ``ds``: depthwise kxk conv, BN, act, [SE], 1x1 conv, BN;
* ``dsa`` (MobileNet v1's): as ``ds`` with an act after the 1x1 conv and never a shortcut;
* ``ir`` (inverted residual, MBConv): 1x1 expand to ``make_divisible(in * e)``, BN, act;
  depthwise kxk, BN, act; [SE]; 1x1 project, BN;
* ``er`` (edge residual, FusedMBConv): kxk expand conv, BN, act; [SE]; 1x1 project, BN;
* ``cn``: kxk conv, BN, act (a shortcut only with ``skip``);
* ``uir`` (MobileNetV4's universal inverted bottleneck): [depthwise ``a``xa, BN]; 1x1
  expand, BN, act; [depthwise kxk, BN, act]; [SE]; 1x1 project, BN; [depthwise ``p``xp, BN];
  [layer scale]. The stride sits on the first depthwise conv present (k before a before p is
  timm's order: mid if present, else start, else end). ``k0`` drops the middle conv.

``ds``, ``ir``, ``er`` and ``uir`` get an identity shortcut when the stride is 1 and the widths
agree (``noskip`` forbids it). Two more kinds carry their own shortcut:

* ``gb``: GhostNet's bottleneck (ghost module to the hidden width ``m``, [depthwise kxk + BN
  when strided], [SE], ghost module to ``c``; identity shortcut, or depthwise kxk + BN + 1x1 +
  BN when the stride or width changes);
* ``bot``: ResNet's bottleneck v1.5 (1x1 to the inner width ``c / e``, kxk carrying the
  stride, 1x1 to ``inner * e``, a projection shortcut when stride or width changes, act after
  the sum).

Widths: every block's ``c`` (and ``gb``'s ``m``, ``bot``'s inner width) is rounded by the
network's width rule; expanded widths are ``make_divisible(in * e)`` (divisor 8, as timm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..layers import (
    Act,
    BatchNorm,
    Conv,
    GhostModule,
    LayerScale,
    Residual,
    Sequential,
    SqueezeExcite,
)
from .spec import Stage, make_divisible

SE_REDUCE_FROM = ("input", "mid")
SE_ROUNDINGS = ("round", "divisible")


@dataclass(frozen=True)
class SqueezeRule:
    """How a block's squeeze-excite is shaped.

    ``act``: its activation (None: the block's); ``gate``: ``sigmoid`` (EfficientNet) or
    ``hard_sigmoid`` (MobileNetV3, GhostNet). ``reduce_from``: the ratio is of the block's
    input channels (``"input"``, EfficientNet: timm computes ``mid * se / e``) or of its
    expanded channels (``"mid"``, MobileNetV3, GhostNet). ``rounding``: Python's ``round``
    (EfficientNet) or ``make_divisible`` by ``divisor`` (MobileNetV3: 8, GhostNet: 4).
    """

    act: str | None = None
    gate: str = "sigmoid"
    reduce_from: str = "input"
    rounding: str = "round"
    divisor: int = 8

    def layer(self, channels: int, stage: Stage, block_act: str) -> SqueezeExcite:
        ratio = stage.se if self.reduce_from == "mid" else stage.se / stage.expand
        value = channels * ratio
        reduced = round(value) if self.rounding == "round" else make_divisible(value,
                                                                               self.divisor)
        return SqueezeExcite(channels, reduced, act=self.act or block_act, gate=self.gate)


@dataclass(frozen=True)
class BlockContext:
    """What every block of a network shares: the default activation, the squeeze-excite rule,
    the width rule (``width(c)``: c channels at w = 1 scaled and rounded) and MobileNetV4's
    layer scale (None: none)."""

    act: str
    se: SqueezeRule
    width: Callable[[float], int]
    layer_scale: float | None = None


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int, act: str | None,
                groups: int = 1) -> list:
    layers = [Conv(cin, cout, kernel, stride, groups=groups), BatchNorm(cout)]
    return layers + [Act(act)] if act else layers


def _identity_shortcut(body: list, cin: int, cout: int, stride: int, stage: Stage,
                       default: bool = True):
    """``body`` as a Sequential, wrapped in an identity Residual when the block keeps its
    stride and width and the block string allows it (``skip`` forces, ``noskip`` forbids)."""
    allowed = default if stage.skip is None else stage.skip
    seq = Sequential(tuple(body))
    return Residual(seq) if allowed and stride == 1 and cin == cout else seq


def depthwise_separable(cin: int, stage: Stage, stride: int, ctx: BlockContext,
                        pw_act: bool = False):
    act = stage.act or ctx.act
    cout = ctx.width(stage.out)
    layers = conv_bn_act(cin, cin, stage.kernel, stride, act, groups=cin)
    if stage.se:
        layers.append(ctx.se.layer(cin, stage, act))
    layers += conv_bn_act(cin, cout, 1, 1, act if pw_act else None)
    if pw_act:
        return Sequential(tuple(layers)), cout
    return _identity_shortcut(layers, cin, cout, stride, stage), cout


def depthwise_separable_act(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    return depthwise_separable(cin, stage, stride, ctx, pw_act=True)


def inverted_residual(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    act = stage.act or ctx.act
    cout = ctx.width(stage.out)
    mid = make_divisible(cin * stage.expand)
    layers = conv_bn_act(cin, mid, 1, 1, act)
    layers += conv_bn_act(mid, mid, stage.kernel, stride, act, groups=mid)
    if stage.se:
        layers.append(ctx.se.layer(mid, stage, act))
    layers += conv_bn_act(mid, cout, 1, 1, None)
    return _identity_shortcut(layers, cin, cout, stride, stage), cout


def edge_residual(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    act = stage.act or ctx.act
    cout = ctx.width(stage.out)
    mid = make_divisible(cin * stage.expand)
    layers = conv_bn_act(cin, mid, stage.kernel, stride, act)
    if stage.se:
        layers.append(ctx.se.layer(mid, stage, act))
    layers += conv_bn_act(mid, cout, 1, 1, None)
    return _identity_shortcut(layers, cin, cout, stride, stage), cout


def conv_block(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    cout = ctx.width(stage.out)
    layers = conv_bn_act(cin, cout, stage.kernel, stride, stage.act or ctx.act)
    return _identity_shortcut(layers, cin, cout, stride, stage, default=False), cout


def universal_inverted_residual(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    act = stage.act or ctx.act
    cout = ctx.width(stage.out)
    mid = make_divisible(cin * stage.expand)
    layers: list = []
    if stage.start:
        layers += conv_bn_act(cin, cin, stage.start, 1 if stage.kernel else stride, None,
                              groups=cin)
    layers += conv_bn_act(cin, mid, 1, 1, act)
    if stage.kernel:
        layers += conv_bn_act(mid, mid, stage.kernel, stride, act, groups=mid)
    if stage.se:
        layers.append(ctx.se.layer(mid, stage, act))
    layers += conv_bn_act(mid, cout, 1, 1, None)
    if stage.end:
        layers += conv_bn_act(cout, cout, stage.end,
                              stride if not (stage.start or stage.kernel) else 1, None,
                              groups=cout)
    if ctx.layer_scale is not None:
        layers.append(LayerScale(cout, ctx.layer_scale))
    return _identity_shortcut(layers, cin, cout, stride, stage), cout


def ghost_module(cin: int, cout: int, act: str | None, ratio: int = 2) -> GhostModule:
    primary = math.ceil(cout / ratio)
    return GhostModule(
        primary=Sequential(tuple(conv_bn_act(cin, primary, 1, 1, act))),
        cheap=Sequential(tuple(conv_bn_act(primary, primary * (ratio - 1), 3, 1, act,
                                           groups=primary))),
        out_ch=cout)


def ghost_bottleneck(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    act = stage.act or ctx.act
    cout, mid, k = ctx.width(stage.out), ctx.width(stage.mid), stage.kernel
    body: list = [ghost_module(cin, mid, act)]
    if stride > 1:
        body += [Conv(mid, mid, k, stride, groups=mid), BatchNorm(mid)]
    if stage.se:
        body.append(ctx.se.layer(mid, stage, act))
    body.append(ghost_module(mid, cout, None))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential((Conv(cin, cin, k, stride, groups=cin), BatchNorm(cin),
                               Conv(cin, cout, 1), BatchNorm(cout)))
    return Residual(Sequential(tuple(body)), shortcut), cout


def bottleneck(cin: int, stage: Stage, stride: int, ctx: BlockContext):
    act = stage.act or ctx.act
    inner = ctx.width(stage.out / stage.expand)
    cout = int(inner * stage.expand)
    body = Sequential(tuple(conv_bn_act(cin, inner, 1, 1, act)
                            + conv_bn_act(inner, inner, stage.kernel, stride, act)
                            + conv_bn_act(inner, cout, 1, 1, None)))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(tuple(conv_bn_act(cin, cout, 1, stride, None)))
    return Residual(body, shortcut, act=act), cout


# kind -> builder(cin, stage, stride, ctx) -> (layer, cout); and what each block string of
# that kind must or may say beyond r, k, s, c.
BLOCKS: dict[str, Callable] = {
    "ds": depthwise_separable,
    "dsa": depthwise_separable_act,
    "ir": inverted_residual,
    "er": edge_residual,
    "cn": conv_block,
    "uir": universal_inverted_residual,
    "gb": ghost_bottleneck,
    "bot": bottleneck,
}


def check_stage(stage: Stage) -> None:
    """Refuse a block string its kind cannot build (a ValueError naming the problem)."""
    if stage.block not in BLOCKS:
        raise ValueError(f"unknown block kind {stage.block!r}; known: {', '.join(BLOCKS)}")
    positive = {"repeats": stage.repeats, "stride": stage.stride, "channels (c)": stage.out,
                "expansion (e)": stage.expand}
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"{name} must be above 0, got {value:g}")
    if stage.se < 0 or stage.se > 16:
        raise ValueError(f"squeeze-excite ratio (se) must be in [0, 16], got {stage.se:g}")
    kernels = {"kernel (k)": stage.kernel, "start kernel (a)": stage.start,
               "end kernel (p)": stage.end}
    for name, value in kernels.items():
        if value < 0 or value > 31:
            raise ValueError(f"{name} must be from 0 to 31, got {value}")
    if stage.block != "uir":
        if stage.kernel < 1:
            raise ValueError(f"kernel (k) must be at least 1 for a {stage.block} block")
        if stage.start or stage.end:
            raise ValueError("only uir blocks take extra depthwise kernels (a, p)")
    elif not (stage.kernel or stage.start or stage.end) and stage.stride > 1:
        raise ValueError("a strided uir block needs a depthwise conv (k, a or p above 0)")
    if stage.block == "gb" and stage.mid < 1:
        raise ValueError("a gb (ghost bottleneck) block needs its hidden width m above 0")
    if stage.block != "gb" and stage.mid:
        raise ValueError("only gb blocks take a hidden width (m)")
    if stage.block in ("gb", "bot") and stage.skip is not None:
        raise ValueError(f"{stage.block} blocks always have a shortcut; drop skip/noskip")
    if stage.block == "dsa" and stage.skip:
        raise ValueError("dsa blocks never have a shortcut; drop skip")
