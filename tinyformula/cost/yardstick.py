"""How c is measured: one value that every stage asks, instead of loose (base, classes, size) parts.

c is a candidate's cost relative to the base network at r = d = w = 1, with the same number of
classes and the same base resolution. A :class:`Yardstick` holds those conventions and *which*
cost (FLOPs by default), and answers everything that turns a configuration into c or a budget
into an absolute amount. The formula, the search, the sampler, the width solver and the plots
all hold one; nothing rebuilds it from parts.

:class:`Configuration` is the one shape of "a network and what it costs": its ``c`` is always
the cost *achieved* by that network; a budget asked for is called ``budget`` wherever it
travels beside one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import ClassVar

from ..core.constraints import Integer, Options, check, check_fields
from ..core.errors import TinyFormulaError
from ..nets.bases import base_record, get_base, restore_base
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE, BaseNetwork
from ..nets.count import Cost
from ..nets.scale import Scale
from .budgets import check_budget
from .meters import METERS, Meter, get_meter

COST_NAMES = tuple(METERS)


@dataclass(frozen=True)
class Configuration:
    """A concrete scaled network and what it costs.

    ``c`` is the cost it achieves relative to the base (under the yardstick that measured it);
    ``flops`` and ``params`` are absolute, whichever cost c is of.
    """

    r: float
    d: float
    w: float
    c: float
    resolution: int
    flops: int
    params: int

    @property
    def scale(self) -> Scale:
        return Scale(self.r, self.d, self.w)

    def to_dict(self) -> dict:
        return asdict(self)


def restore_recorded_base(data, origin: str) -> None:
    """Register the base a stored yardstick records (its ``base_spec``), if it has one."""
    if isinstance(data, dict) and "base_spec" in data:
        restore_base(data["base_spec"], origin)


@dataclass(frozen=True)
class Yardstick:
    """The conventions that make a relative cost c absolute.

    Parameters
    ----------
    base : str
        Name of the base network (``tinyformula bases`` lists them), or the path of a spec
        file (``mynet.toml``): the yardstick keeps the name the file registers.
    num_classes : int
        Classifier outputs; the base at r = d = w = 1 is counted with as many.
    resolution_base : int or None
        Input size at r = 1 (None: the base's own, 224; small-image data uses 32).
    cost : str
        Which cost c is relative to: ``"flops"`` (fvcore's count, the default), ``"params"``,
        ``"activations"`` (output elements of every convolution and linear layer, as Dollár et
        al. 2021 count them), all exact from the analytic model; or ``"latency"``, inference
        latency at batch 1 predicted by the latency table of ``device`` (measured once per
        block on this machine, see :mod:`tinyformula.cost.latency`).
    device, threads, runtime : str, int, str
        Where latency is measured (only for ``cost="latency"``): ``"cpu"`` or ``"cuda"``,
        torch threads, ``"torch"`` or ``"onnxruntime"``.
    """

    base: str = "efficientnet_b0"
    num_classes: int = 1000
    resolution_base: int | None = None
    cost: str = "flops"
    device: str = "cpu"
    threads: int = 1
    runtime: str = "torch"

    constraints: ClassVar[dict] = {
        "num_classes": NUM_CLASSES,
        "cost": Options(COST_NAMES),
        "threads": Integer(1, 1024),
    }

    def __post_init__(self):
        network = get_base(self.base)
        object.__setattr__(self, "base", network.name)
        object.__setattr__(self, "resolution_base",
                           check("resolution_base", network.default_resolution
                                 if self.resolution_base is None else self.resolution_base,
                                 RESOLUTION_BASE))
        check_fields(self)
        self.meter.check(self)

    # -- what it measures ----------------------------------------------------------------------

    @property
    def network(self) -> BaseNetwork:
        return get_base(self.base)

    @property
    def meter(self) -> Meter:
        """The registered meter of this yardstick's cost."""
        return get_meter(self.cost)

    @property
    def unit(self) -> str:
        return self.meter.unit

    def cost_of(self, scale: Scale | None = None) -> Cost:
        """Every analytic cost of the base scaled by ``scale`` (resolution, FLOPs, params)."""
        return self.network.cost(scale, self.num_classes, self.resolution_base)

    def amount(self, scale: Scale | None = None, exact: bool = True) -> float:
        """The chosen cost of ``scale``, in its unit (e.g. FLOPs, or ms of latency).

        Counted costs are always exact. A predicted one (latency) with ``exact=False``
        estimates what its table lacks instead of timing it (what a search's bisections and
        rejected draws use); a configuration that is kept is measured exactly."""
        return self.meter.amount(self, scale or Scale(), exact)

    @cached_property
    def predictor(self):
        """What predicts the cost (the latency table of this base on this device; loaded, or
        calibrated on first use); None for a counted cost."""
        return self.meter.predictor(self)

    @cached_property
    def reference(self) -> float:
        """The chosen cost of the base at r = d = w = 1: what c = 1 means."""
        return self.amount(Scale())

    def c(self, scale: Scale) -> float:
        """The relative cost of ``scale``."""
        return self.amount(scale) / self.reference

    def measure(self, scale: Scale, exact: bool = True) -> Configuration:
        """``scale`` as a :class:`Configuration`: its resolution, FLOPs, params and c
        (``exact`` as in :meth:`amount`)."""
        cost = self.cost_of(scale)
        amount = self.meter.amount(self, scale, exact)
        return Configuration(r=scale.r, d=scale.d, w=scale.w, c=amount / self.reference,
                             resolution=cost.resolution, flops=cost.flops, params=cost.params)

    def budget(self, c: float) -> float:
        """The absolute amount (e.g. FLOPs) a relative budget ``c`` allows."""
        return check_budget(c) * self.reference

    def fits(self, scale: Scale, c: float, exact: bool = True) -> bool:
        """Whether ``scale`` costs no more than the budget c (``exact`` as in :meth:`amount`)."""
        return self.amount(scale, exact) <= self.budget(c)

    # -- variants and persistence --------------------------------------------------------------

    def replace(self, **changes) -> "Yardstick":
        """The same yardstick with some conventions changed (None values keep this one's)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Plain data; a meter's own settings (where latency is measured) only for it; a base
        that is not built in, its record (``base_spec``: its spec and checksum), so whoever
        reads this needs no spec file."""
        record = base_record(self.base)
        return {"base": self.base, "num_classes": self.num_classes,
                "resolution_base": self.resolution_base, "cost": self.cost,
                **self.meter.settings(self), **({"base_spec": record} if record else {})}

    @classmethod
    def from_dict(cls, data: dict, origin: str = "a stored yardstick") -> "Yardstick":
        restore_recorded_base(data, origin)
        try:
            meter = get_meter(data.get("cost", "flops"))
            settings = {k: data[k] for k in meter.setting_names if k in data}
            return cls(base=data["base"], num_classes=data["num_classes"],
                       resolution_base=data.get("resolution_base"), cost=meter.name,
                       **settings)
        except (KeyError, TypeError, AttributeError) as error:
            raise TinyFormulaError(f"a stored yardstick is incomplete ({error!r})") from None

    def describe_cost(self) -> str:
        """The cost in words, with where it is measured: "FLOPs", "latency (cpu, ...)"."""
        return self.meter.describe(self)

    def __str__(self) -> str:
        return (f"{self.describe_cost()} of {self.base} ({self.num_classes} classes, "
                f"{self.resolution_base} px at r = 1)")
