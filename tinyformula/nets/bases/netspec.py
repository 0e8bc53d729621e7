"""A base network as data: :class:`NetworkSpec`, what a spec file or ``register_base(spec=...)``
holds, read and checked field by field (:meth:`NetworkSpec.from_dict`).

A spec is a name, a stem, a table of stages as timm-style block strings (one string, or a list
of them, per stage: ``ir_r2_k3_s2_e6_c24_se0.25``; the kinds are :mod:`.blocks`'), the head,
the squeeze-excite rule, and the scaling rules (docs/bases.md). Validation is strict and names
the field: an unknown key, a missing field, a wrong type, an unknown block kind, a width of 0
or below -- each is one line (a :class:`~tinyformula.core.errors.TinyFormulaError`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ...core.constraints import INVALID, Boolean, Constraint, Integer, Options, Real, check
from ...core.errors import TinyFormulaError
from ...core.files import checksum
from .blocks import SE_REDUCE_FROM, SE_ROUNDINGS, check_stage
from .spec import DEPTH_ROUNDINGS, RESOLUTION_BASE, Stage, parse_stage

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
BLOCK_ACTS = ("relu", "relu6", "swish", "hard_swish")
GATES = ("sigmoid", "hard_sigmoid")
STAGE_DEPTHS = ("distribute", "cycle")
WIDTH_RULES = ("scaled", "at_least_base", "fixed")
STEM_RULES = ("scaled", "fixed")
CHANNELS = Integer(1, 65_536, why="a width, in channels")
KERNEL = Integer(1, 31)
STRIDE = Integer(1, 16)


@dataclass(frozen=True)
class StemSpec:
    """A kxk convolution (stride ``stride``) to ``channels``, BN, act, then a 3x3 stride-2
    max-pool when ``pool`` (ResNet's)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    pool: bool = False
    act: str | None = None


@dataclass(frozen=True)
class HeadSpec:
    """What follows the stages: ``conv`` (a 1x1 conv, BN, act before pooling; 0: none), global
    average pooling, ``pooled_conv`` (a 1x1 conv on the pooled features, MobileNetV3's
    "efficient head", with a bias and/or BN; 0: none), then the classifier. Each width follows
    its rule: ``scaled`` (by w), ``at_least_base`` (by w, never narrower than at w = 1) or
    ``fixed``. The pre-pooling conv is the module ``head``, or ``features`` when a pooled conv
    (then ``head``) follows."""

    conv: int = 0
    conv_width: str = "scaled"
    pooled_conv: int = 0
    pooled_width: str = "fixed"
    pooled_bias: bool = True
    pooled_norm: bool = False
    act: str | None = None


@dataclass(frozen=True)
class ScalingSpec:
    """How d and w reach the network.

    ``depth``: a stage of n blocks keeps ``max(1, round(n * d))`` (``"round"``, TinyNet) or
    ``ceil(n * d)`` (``"ceil"``, EfficientNet, MobileNetV2/V3). ``stage_depth``: how a stage
    of several block strings scales: ``"distribute"`` (timm's ``_scale_stage_depth``: the
    stage's total is scaled and shared out over its strings, last first, each keeping at least
    one) or ``"cycle"`` (the first block, then the others in order, cycled when d > 1: GhostNet
    here). ``divisor``: widths are ``make_divisible(c * w, divisor)``. ``stem``: whether the
    stem's width follows w; ``stem_fixed_below``: it stays fixed for w below this (timm's
    MobileNetV3: 0.75, MobileNetV4: 1.0).
    """

    depth: str = "round"
    stage_depth: str = "distribute"
    stem: str = "scaled"
    stem_fixed_below: float = 0.0
    divisor: int = 8


@dataclass(frozen=True)
class SqueezeSpec:
    """Squeeze-excite (see :class:`~.blocks.SqueezeRule`): ``act`` ``"block"`` uses the
    block's activation."""

    act: str = "block"
    gate: str = "sigmoid"
    reduce_from: str = "input"
    rounding: str = "round"


@dataclass(frozen=True)
class NetworkSpec:
    """A whole base as data; :meth:`from_dict` checks every field, :meth:`to_dict` gives the
    canonical form (defaults filled in) that a run folder and a formula file record."""

    name: str
    stem: StemSpec
    stages: tuple[tuple[Stage, ...], ...]
    stage_strings: tuple[tuple[str, ...], ...]
    summary: str = ""
    resolution: int = 224
    act: str = "relu"
    head: HeadSpec = field(default_factory=HeadSpec)
    se: SqueezeSpec = field(default_factory=SqueezeSpec)
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    layer_scale: float | None = None

    def to_dict(self) -> dict:
        def table(part) -> dict:   # unset fields (None: the network's act) are left out
            return {k: v for k, v in asdict(part).items() if v is not None}

        body = {"name": self.name, "summary": self.summary, "resolution": self.resolution,
                "act": self.act, "stem": table(self.stem),
                "stages": [list(strings) for strings in self.stage_strings],
                "head": table(self.head), "se": table(self.se),
                "scaling": table(self.scaling)}
        if self.layer_scale is not None:
            body["layer_scale"] = self.layer_scale
        return body

    @property
    def checksum(self) -> str:
        """SHA-256 of the canonical form: equal for equal networks, whatever file held them."""
        return checksum(self.to_dict())

    @classmethod
    def from_dict(cls, data, origin: str = "spec") -> "NetworkSpec":
        return _read_spec(data, origin)


# -- reading a spec ------------------------------------------------------------------------------

_TOP_KEYS = ("name", "summary", "resolution", "act", "stem", "stages", "head", "se", "scaling",
             "layer_scale")


class _Reader:
    """Reads one table of a spec, naming each field by its path on error."""

    def __init__(self, data, path: str, origin: str, known: tuple[str, ...]):
        if not isinstance(data, dict):
            where = f"{path} " if path else ""
            raise TinyFormulaError(f"{origin}: {where}must be a table of fields, got "
                                   f"{type(data).__name__}")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TinyFormulaError(f"{origin}: unknown field {self._path(path, unknown[0])!r} "
                                   f"(known: {', '.join(known)})")
        self.data, self.path, self.origin = data, path, origin

    @staticmethod
    def _path(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def get(self, key: str, constraint, default=None, required: str | None = None):
        if key not in self.data:
            if required is not None:
                raise TinyFormulaError(f"{self.origin}: missing field "
                                       f"{self._path(self.path, key)!r} ({required})")
            return default
        return check(f"{self.origin}: {self._path(self.path, key)}", self.data[key], constraint)


def _name(value, origin: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) \
            or value.lower().endswith((".toml", ".json")):
        raise TinyFormulaError(f"{origin}: name must be a letter then up to 63 letters, digits, "
                               f"'_', '.' or '-' (not a file name), got {value!r}")
    return value


def _read_stages(value, origin: str):
    if not isinstance(value, list) or not value:
        raise TinyFormulaError(f"{origin}: stages must be a non-empty list, one entry per stage "
                               f"(a block string or a list of them), got {value!r}"[:300])
    stages, strings = [], []
    for i, entry in enumerate(value):
        entry_strings = [entry] if isinstance(entry, str) else entry
        if not isinstance(entry_strings, list) or not entry_strings:
            raise TinyFormulaError(f"{origin}: stages[{i}] must be a block string or a non-empty "
                                   f"list of them, got {entry!r}"[:300])
        parsed = []
        for j, text in enumerate(entry_strings):
            where = f"stages[{i}]" + (f"[{j}]" if not isinstance(entry, str) else "")
            try:
                stage = parse_stage(text)
                check_stage(stage)
            except ValueError as error:
                raise TinyFormulaError(f"{origin}: {where} ({text!r}): {error}") from None
            if j > 0 and stage.stride != 1:
                raise TinyFormulaError(f"{origin}: {where} ({text!r}): only a stage's first "
                                       f"block string may have a stride (s{stage.stride}); "
                                       f"start a new stage")
            parsed.append(stage)
        stages.append(tuple(parsed))
        strings.append(tuple(text.strip() for text in entry_strings))
    return tuple(stages), tuple(strings)


def _read_spec(data, origin: str) -> NetworkSpec:
    top = _Reader(data, "", origin, _TOP_KEYS)
    if "name" not in data:
        raise TinyFormulaError(f"{origin}: missing field 'name' (what --base and files call it)")
    name = _name(data["name"], origin)
    act = top.get("act", Options(BLOCK_ACTS), "relu")
    acts = Options(BLOCK_ACTS)
    summary = top.get("summary", _Text(), "")
    resolution = top.get("resolution", RESOLUTION_BASE, 224)
    layer_scale = top.get("layer_scale", Real(0, 1e6, closed="right"), None)
    if "stages" not in data:
        raise TinyFormulaError(f"{origin}: missing field 'stages' (a list of block strings, one "
                               f"entry per stage)")
    stages, strings = _read_stages(data["stages"], origin)

    if "stem" not in data:
        raise TinyFormulaError(f"{origin}: missing field 'stem' (a table with at least "
                               f"channels)")
    s = _Reader(data["stem"], "stem", origin, ("channels", "kernel", "stride", "pool", "act"))
    stem = StemSpec(channels=s.get("channels", CHANNELS, required="the stem's width"),
                    kernel=s.get("kernel", KERNEL, 3), stride=s.get("stride", STRIDE, 2),
                    pool=s.get("pool", Boolean(), False), act=s.get("act", acts, None))

    h = _Reader(data.get("head", {}), "head", origin,
                ("conv", "conv_width", "pooled_conv", "pooled_width", "pooled_bias",
                 "pooled_norm", "act"))
    head_width = Integer(0, 65_536, why="a width in channels; 0 for none")
    head = HeadSpec(conv=h.get("conv", head_width, 0),
                    conv_width=h.get("conv_width", Options(WIDTH_RULES), "scaled"),
                    pooled_conv=h.get("pooled_conv", head_width, 0),
                    pooled_width=h.get("pooled_width", Options(WIDTH_RULES), "fixed"),
                    pooled_bias=h.get("pooled_bias", Boolean(), True),
                    pooled_norm=h.get("pooled_norm", Boolean(), False),
                    act=h.get("act", acts, None))

    q = _Reader(data.get("se", {}), "se", origin, ("act", "gate", "reduce_from", "rounding"))
    se = SqueezeSpec(act=q.get("act", Options(("block",) + BLOCK_ACTS), "block"),
                     gate=q.get("gate", Options(GATES), "sigmoid"),
                     reduce_from=q.get("reduce_from", Options(SE_REDUCE_FROM), "input"),
                     rounding=q.get("rounding", Options(SE_ROUNDINGS), "round"))

    c = _Reader(data.get("scaling", {}), "scaling", origin,
                ("depth", "stage_depth", "stem", "stem_fixed_below", "divisor"))
    scaling = ScalingSpec(depth=c.get("depth", Options(DEPTH_ROUNDINGS), "round"),
                          stage_depth=c.get("stage_depth", Options(STAGE_DEPTHS), "distribute"),
                          stem=c.get("stem", Options(STEM_RULES), "scaled"),
                          stem_fixed_below=float(c.get("stem_fixed_below", Real(0, 16), 0.0)),
                          divisor=c.get("divisor", Integer(1, 256), 8))
    spec = NetworkSpec(name=name, summary=summary, resolution=resolution, act=act, stem=stem,
                       stages=stages, stage_strings=strings, head=head, se=se, scaling=scaling,
                       layer_scale=None if layer_scale is None else float(layer_scale))
    return spec


class _Text(Constraint):
    """Any string of at most 500 characters."""

    def describe(self) -> str:
        return "a text of at most 500 characters"

    def convert(self, value):
        return value if isinstance(value, str) and len(value) <= 500 else INVALID
