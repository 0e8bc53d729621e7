"""The costs c can be measured in, as registered meters: FLOPs, parameters, activations and
latency.

A :class:`Meter` says how much of its cost a scaled base has, in what unit, and what that
amount depends on. The analytic meters read the exact count of the layer tree
(:mod:`tinyformula.nets.count`); the latency meter predicts this machine's inference latency
from its latency table (:mod:`tinyformula.cost.latency`). Everything that differs between
costs is asked of the meter, so no caller branches on a cost's name: the yardstick, the width
solver, the formula, the command line and the plots all hold a meter.

``register_meter`` adds one (the registry is the four built in today, as fvcore's handles are
one small function per operator).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import TinyFormulaError
from ..nets.count import Cost

if TYPE_CHECKING:
    from ..nets.scale import Scale
    from .yardstick import Yardstick

# SI prefixes of counted amounts (100M FLOPs, 1.5M parameters); case does not matter.
PREFIXES = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def with_prefix(amount: float) -> str:
    """A count written with the largest SI prefix that keeps it at least 1, four significant
    digits: ``250M``, ``1.2G``, ``690.5K``."""
    for prefix in ("T", "G", "M", "K"):
        if amount >= PREFIXES[prefix]:
            return f"{amount / PREFIXES[prefix]:.4g}{prefix}"
    return f"{amount:.4g}"


@dataclass(frozen=True)
class Meter:
    """One cost c can be relative to.

    Attributes
    ----------
    name : str
        Its name on the command line (``--cost NAME``) and in files.
    unit : str
        What one unit of it is, in words ("FLOPs", "parameters", "ms").
    exact : bool
        Whether the amount is counted exactly from the analytic model (else it is predicted,
        and a solver re-checks an estimate before answering).
    machine_bound : bool
        Whether the amount belongs to the machine it was measured on (a formula fitted with it
        refuses another machine).
    display_scale, display_unit : float, str
        How an amount is shown on an axis: divided by ``display_scale``, in ``display_unit``
        ("MFLOPs", "ms").
    setting_names : tuple of str
        The yardstick fields the amount depends on beyond base, classes and resolution (where
        latency is measured); stored with a run and a formula.
    words : tuple of str
        How an absolute amount of this cost is written after its number (lower case, the
        first one is how it is printed): ``parse`` and ``format`` read and write them.
    example : str
        An absolute budget of this cost as a user would type it (``100M``, ``3ms``).
    """

    name: str
    unit: str
    exact: bool
    machine_bound: bool
    display_scale: float
    display_unit: str
    setting_names: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    example: str = ""

    def amount(self, yardstick: Yardstick, scale: Scale, exact: bool = True) -> float:
        """How much of this cost the base of ``yardstick`` scaled by ``scale`` has."""
        raise NotImplementedError

    def parse(self, unit: str, own: bool = False) -> float | None:
        """The factor that turns a number written with ``unit`` (what follows it, spaces
        removed: ``"M"``, ``"MFLOPs"``, ``"ms"``) into this cost's unit; None when ``unit``
        is not one of this cost's. ``own``: the budget is for a formula of this cost, so a
        bare SI prefix (``"M"``) is read as this cost where it is a count."""
        raise NotImplementedError

    def format(self, amount: float) -> str:
        """An amount of this cost, written so that :meth:`parse` reads it back (four
        significant digits): ``"98.09M FLOPs"``, ``"3.021 ms"``."""
        raise NotImplementedError

    def settings(self, yardstick: Yardstick) -> dict:
        """What the amount depends on beyond base, classes and resolution (stored with it):
        the yardstick's values of :attr:`setting_names`."""
        return {name: getattr(yardstick, name) for name in self.setting_names}

    def check(self, yardstick: Yardstick) -> None:
        """Refuse a yardstick this meter cannot measure here (one line)."""

    def describe(self, yardstick: Yardstick) -> str:
        """The cost in words, with where it is measured: "FLOPs", "latency (cpu, ...)"."""
        return self.unit

    def predictor(self, yardstick: Yardstick):
        """What predicts the amount (the latency table), loaded once per yardstick; None for
        an exact count."""
        return None


@dataclass(frozen=True)
class CountMeter(Meter):
    """A cost counted exactly by the analytic model: one field of :class:`Cost`."""

    read: Callable[[Cost], int] = lambda cost: cost.flops
    bare_prefix: bool = False     # whether "100M" alone (no word) is this cost

    def amount(self, yardstick: Yardstick, scale: Scale, exact: bool = True) -> float:
        return self.read(yardstick.cost_of(scale))

    def parse(self, unit: str, own: bool = False) -> float | None:
        """An SI prefix (K, M, G, T; any case) and/or one of :attr:`words`: ``"MFLOPs"``,
        ``"GMACs"``, ``"Mparams"``; ``"M"`` alone for the formula's own count (``own``) or
        for FLOPs (:attr:`bare_prefix`), the reading of versions up to 0.2."""
        text = unit.lower()
        bare = own or self.bare_prefix
        for word in sorted(self.words, key=len, reverse=True) + [""]:
            if not text.endswith(word):
                continue
            prefix = text[:len(text) - len(word)].upper()
            if (word or (prefix and bare)) and (not prefix or prefix in PREFIXES):
                return PREFIXES.get(prefix, 1.0)
        return None

    def format(self, amount: float) -> str:
        return f"{with_prefix(amount)} {self.unit}"


@dataclass(frozen=True)
class LatencyMeter(Meter):
    """Inference latency at batch 1 on this machine, predicted by its latency table."""

    def parse(self, unit: str, own: bool = False) -> float | None:
        """Milliseconds (``ms``), seconds (``s``) or microseconds (``us``), in ms."""
        return {"ms": 1.0, "s": 1000.0, "us": 1e-3, "\u00b5s": 1e-3}.get(unit.lower())

    def format(self, amount: float) -> str:
        return f"{amount:.4g} ms" if math.isfinite(amount) else "- ms"

    def amount(self, yardstick: Yardstick, scale: Scale, exact: bool = True) -> float:
        model = yardstick.predictor
        predict = model.predict_ms if exact else model.estimate_ms
        return predict(scale, yardstick.num_classes, yardstick.resolution_base)

    def check(self, yardstick: Yardstick) -> None:
        from .latency.measure import Setting

        if yardstick.network.counted != "analytic":
            raise TinyFormulaError(
                f"latency tables time a base's blocks, and {yardstick.base} is a PyTorch model "
                f"counted by tracing: use --cost flops, params or activations, or declare it "
                f"as a spec (docs/bases.md)")
        Setting(yardstick.device, yardstick.threads, 1, yardstick.runtime).check()

    def describe(self, yardstick: Yardstick) -> str:
        return (f"latency ({yardstick.device}, {yardstick.runtime}, {yardstick.threads} "
                f"thread(s), batch 1)")

    def predictor(self, yardstick: Yardstick):
        """The latency table of this base on this device (loaded, or calibrated on first use:
        timing a few whole networks takes tens of seconds)."""
        from .latency.model import LatencyModel

        return LatencyModel.load_or_build(yardstick.base, yardstick.device, yardstick.threads,
                                          yardstick.runtime, 1, yardstick.num_classes,
                                          yardstick.resolution_base)


METERS: dict[str, Meter] = {}


def register_meter(meter: Meter) -> Meter:
    """Add a meter to the registry (its name must be new)."""
    if meter.name in METERS:
        raise ValueError(f"a meter called {meter.name!r} is registered already")
    METERS[meter.name] = meter
    return meter


def get_meter(name: str) -> Meter:
    """The meter called ``name``; one line naming the known ones otherwise."""
    try:
        return METERS[name]
    except (KeyError, TypeError):
        raise TinyFormulaError(f"cost must be one of {', '.join(METERS)}, got {name!r}") from None


# FLOPs are fvcore's count: one multiply-add is one FLOP, so FLOPs here equal MACs (both words
# read the same amount); a bare prefix ("100M") is FLOPs, as before units were a choice.
register_meter(CountMeter("flops", "FLOPs", exact=True, machine_bound=False, display_scale=1e6,
                          display_unit="MFLOPs", read=lambda cost: cost.flops,
                          words=("flops", "flop", "macs", "mac", "madds"), example="100M",
                          bare_prefix=True))
register_meter(CountMeter("params", "parameters", exact=True, machine_bound=False,
                          display_scale=1e6, display_unit="M parameters",
                          read=lambda cost: cost.params,
                          words=("parameters", "params", "param"), example="1.5Mparams"))
register_meter(CountMeter("activations", "activations", exact=True, machine_bound=False,
                          display_scale=1e6, display_unit="M activations",
                          read=lambda cost: cost.activations,
                          words=("activations", "acts", "act"), example="2Mact"))
register_meter(LatencyMeter("latency", "ms", exact=False, machine_bound=True, display_scale=1.0,
                            display_unit="ms", setting_names=("device", "threads", "runtime"),
                            words=("ms", "s", "us"), example="3ms"))
