"""Latency model: predict a candidate's inference latency from a per-block lookup table.

In the spirit of ProxylessNAS's and nn-Meter's latency tables: a network is cut into *units*
(its top-level blocks: the stem, each block of each stage, the head, pooling, the classifier;
see :mod:`.units`), each unit is timed once, alone, at the input shape it meets in the network,
and a candidate's latency is predicted as ``a + b x (sum of its units' latencies)`` (each a
10th percentile, :data:`STATISTIC`: the prediction is the latency of an otherwise idle
machine). The correction ``a + b`` (:mod:`.calibration`) is fitted on a few whole networks
measured end to end.

The table (:mod:`.table`) is built lazily: a prediction that meets a unit the table lacks times
it then and saves it, so each distinct (unit, input shape) is profiled once per machine;
:meth:`LatencyModel.prebuild` profiles a whole candidate list (a search plan) up front. A lookup
table rather than a fitted regressor because it is exact where it has been measured and the
search space is discrete (channels in multiples of 8 or 4, whole pixels); the price is that new
shapes cost a profile. Once the units of a candidate are in the table, predicting it is pure
Python (no torch call, no module built): about 0.3 ms.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from contextvars import ContextVar
from pathlib import Path

from ...core.errors import TinyFormulaError
from ...core.numeric import least_squares_line
from ...nets.bases import get_base
from ...nets.bases.spec import BaseNetwork
from ...nets.count import layer_cost
from ...nets.layers import Network
from ...nets.scale import Scale
from .calibration import Calibration, calibration_scales
from .measure import Protocol, Setting, measure_network, time_module
from .table import check_writable, read_table, table_key, table_path, write_table
from .units import unit_copies, unit_key, units

# The statistic the table keeps and predicts: each block's (and each calibration network's) 10th
# percentile. Other processes sharing the CPU inflate the median by whatever share of calls they
# interrupt (at a load of 8 on 2 cores the calibration came out 1.8-4.9x), while the 10th
# percentile barely moves; so a table built on a busy machine still predicts the latency of an
# otherwise idle one, which is what the median measures there.
STATISTIC = "p10_ms"
MIN_FIT_UNITS = 8  # timed blocks of one kind before estimate_ms fits a line to them
# Whether a table may time what it lacks (off while reading a finished run: see no_timing).
_TIMING = ContextVar("tinyformula_latency_timing", default=True)


@contextlib.contextmanager
def no_timing():
    """Inside this block no latency table times anything: a block a table lacks is estimated
    from the blocks of its kind it has (see :meth:`LatencyModel.estimate_ms`), and a table
    with no calibration, or too few blocks of a kind to estimate from, raises
    :class:`TinyFormulaError` saying so. What ``tinyformula plot`` draws a latency run with:
    the search that made the run timed what it needed; a plot only reads."""
    token = _TIMING.set(False)
    try:
        yield
    finally:
        _TIMING.reset(token)


def _progress(items, what: str, unit: str):
    """A progress bar on stderr over ``items`` (a list) when there is more than one."""
    from tqdm import tqdm

    return tqdm(items, desc=what, unit=unit, file=sys.stderr, leave=False,
                disable=len(items) < 2, dynamic_ncols=True)


class LatencyModel:
    """Predicted latency of any (r, d, w) of one base on one device, runtime and thread count.

    Use :meth:`load_or_build`; :meth:`predict_ms` then answers in pure Python once a candidate's
    units are in the table (it times missing units itself unless ``lazy=False``).
    ``min_fit_units``: timed blocks of one kind before :meth:`estimate_ms` fits a line to them.
    """

    min_fit_units = MIN_FIT_UNITS

    def __init__(self, base: BaseNetwork, setting: Setting, path: Path, table: dict,
                 protocol: Protocol, lazy: bool = True):
        self.base = base
        self.setting = setting
        self.path = path
        self.protocol = protocol
        self.lazy = lazy
        self._table = table
        self._units: dict[str, float] = {k: v[STATISTIC] for k, v in table["units"].items()}
        self.profiled = 0  # units this object timed (0 when every prediction hit the table)
        self._lines: dict[str, tuple[int, tuple[float, float]]] = {}  # estimate_ms's fits
        self.profile_seconds = 0.0  # time spent building modules and timing them

    # -- construction

    @classmethod
    def load_or_build(cls, base: BaseNetwork | str, device: str = "cpu", threads: int = 1,
                      runtime: str = "torch", batch: int = 1, num_classes: int = 1000,
                      resolution_base: int | None = None, *, cache_dir: Path | None = None,
                      protocol: Protocol = Protocol(), lazy: bool = True) -> "LatencyModel":
        """Load the table for this base, setting and protocol (or start one), and make sure it
        is calibrated for ``num_classes`` and ``resolution_base`` (timing the protocol's
        ``calibration_networks`` whole networks the first time)."""
        base = get_base(base) if isinstance(base, str) else base
        setting = Setting(device, threads, batch, runtime).check()
        key = table_key(base.name, setting, protocol.name)
        path = table_path(key, cache_dir)
        model = cls(base, setting, path, read_table(path, key), protocol, lazy)
        model.calibration(num_classes, resolution_base)
        return model

    def _calibration_id(self, num_classes: int, resolution_base: int | None) -> str:
        return f"classes{num_classes}-px{resolution_base or self.base.default_resolution}"

    def calibration(self, num_classes: int = 1000, resolution_base: int | None = None,
                    scales: list[Scale] | None = None) -> Calibration:
        """The correction for networks of this input size and class count; fitted (and saved)
        on first use by timing whole networks: ``scales`` (default
        :func:`~.calibration.calibration_scales`' draw of the protocol's
        ``calibration_networks``)."""
        ident = self._calibration_id(num_classes, resolution_base)
        stored = self._table["calibrations"].get(ident)
        if stored is not None:
            return Calibration.from_dict(stored)
        if not _TIMING.get():
            raise TinyFormulaError(
                f"the latency table {self.path} has no calibration for {num_classes} classes "
                f"at {resolution_base or self.base.default_resolution} px on this machine, and "
                f"nothing is timed here; a search or 'tinyformula latency' builds it")
        check_writable(self.path)  # before timing anything that could not be kept
        if scales is None:
            scales = calibration_scales(self.base, num_classes, resolution_base,
                                        self.protocol.calibration_networks)
        points = []
        started = time.perf_counter()
        self.prebuild(scales, num_classes, resolution_base)  # one save for every block
        for scale in _progress(scales, f"latency table: calibrating on {len(scales)} "
                                       f"whole networks", "network"):
            network = self.base.network(scale, num_classes, resolution_base)
            unit_sum = self._unit_sum(network)
            measured = getattr(measure_network(network, self.setting, self.protocol),
                               STATISTIC)
            points.append((unit_sum, measured))
        self.profile_seconds += time.perf_counter() - started
        calibration = Calibration.fit(points)
        self._table["calibrations"][ident] = calibration.to_dict()
        self.save()
        return calibration

    def save(self) -> None:
        write_table(self.path, self._table)
        self._units = {k: v[STATISTIC] for k, v in self._table["units"].items()}

    # -- the table

    def missing(self, network: Network) -> list[tuple[object, tuple]]:
        """The units of ``network`` the table lacks (distinct)."""
        seen, out = set(), []
        for unit, shape in units(network):
            key = unit_key(unit, shape)
            if key not in self._units and key not in seen:
                seen.add(key)
                out.append((unit, shape))
        return out

    def _profile(self, pending: list[tuple[object, tuple]]) -> None:
        if not pending:
            return
        if not _TIMING.get():
            raise TinyFormulaError(f"{len(pending)} block(s) are not in the latency table "
                                   f"{self.path}, and nothing is timed here")
        check_writable(self.path)
        started = time.perf_counter()
        for unit, shape in _progress(pending, f"latency table: timing {len(pending)} new "
                                              f"blocks (once per machine)", "block"):
            copies = unit_copies(unit, shape, self.setting, self.protocol.max_copies)
            timing = time_module(copies, shape, self.setting, self.protocol)
            key = unit_key(unit, shape)
            self._table["units"][key] = {
                "median_ms": timing.median_ms, "p10_ms": timing.p10_ms,
                "iqr_ms": timing.iqr_ms, "reps": timing.reps, "load": timing.load,
                "shape": list(shape), "unit": type(unit).__name__,
                "flops": layer_cost(unit, shape).flops}
            self._units[key] = getattr(timing, STATISTIC)
            self.profiled += 1
        self.profile_seconds += time.perf_counter() - started
        self.save()

    def prebuild(self, scales, num_classes: int = 1000,
                 resolution_base: int | None = None) -> int:
        """Time every unit the given scales need that the table lacks (saved once at the end);
        returns how many were timed."""
        pending: dict[str, tuple] = {}
        for scale in scales:
            for unit, shape in self.missing(self.base.network(scale, num_classes,
                                                              resolution_base)):
                pending.setdefault(unit_key(unit, shape), (unit, shape))
        self._profile(list(pending.values()))
        return len(pending)

    def _unit_sum(self, network: Network) -> float:
        table = self._units
        total = 0.0
        pending = []
        for unit, shape in units(network):
            ms = table.get(unit_key(unit, shape))
            if ms is None:
                pending.append((unit, shape))
            else:
                total += ms
        if pending and not _TIMING.get():
            return total + self._estimated(pending)
        if pending:
            if not self.lazy:
                raise TinyFormulaError(
                    f"{len(pending)} block(s) of this candidate are not in the latency table "
                    f"{self.path}; prebuild it or allow lazy profiling")
            self._profile(pending)
            return self._unit_sum(network)
        return total

    # -- prediction

    def estimate_ms(self, scale: Scale, num_classes: int = 1000,
                    resolution_base: int | None = None) -> float:
        """Like :meth:`predict_ms`, but a block the table lacks is estimated, not timed: from
        a line (latency against FLOPs) fitted on the table's blocks of the same kind. For
        searching (a width bisection or a sampler tries many networks it then drops); a kind
        with fewer than :data:`MIN_FIT_UNITS` timed blocks is timed as in ``predict_ms``."""
        network = self.base.network(scale, num_classes, resolution_base)
        calibration = self.calibration(num_classes, resolution_base)
        total, missing = 0.0, []
        for unit, shape in units(network):
            ms = self._units.get(unit_key(unit, shape))
            if ms is not None:
                total += ms
                continue
            line = self._line(type(unit).__name__)
            if line is None:
                missing.append((unit, shape))
            else:
                total += max(0.0, line[0] + line[1] * layer_cost(unit, shape).flops)
        if missing:
            return self.predict_ms(scale, num_classes, resolution_base)
        return self._checked(calibration.offset_ms + calibration.factor * total)

    def _estimated(self, pending: list[tuple[object, tuple]]) -> float:
        """Blocks the table lacks, estimated from the line of their kind (see
        :meth:`estimate_ms`); one line when a kind has too few timed blocks."""
        total = 0.0
        for unit, shape in pending:
            line = self._line(type(unit).__name__)
            if line is None:
                raise TinyFormulaError(
                    f"the latency table {self.path} has too few {type(unit).__name__} blocks "
                    f"to estimate one it lacks, and nothing is timed here")
            total += max(0.0, line[0] + line[1] * layer_cost(unit, shape).flops)
        return total

    def _line(self, kind: str) -> tuple[float, float] | None:
        """Least-squares (intercept, ms per FLOP) over the table's blocks of one kind, refitted
        whenever the table holds another number of them (so an estimate depends on the table
        alone, not on what this process asked before); None with too few blocks of that
        kind."""
        entries = [(v["flops"], v[STATISTIC]) for v in self._table["units"].values()
                   if v.get("unit") == kind and v.get("flops") is not None]
        cached = self._lines.get(kind)
        if cached is not None and len(entries) == cached[0]:
            return cached[1]
        if len(entries) < self.min_fit_units:
            return None
        n = len(entries)
        line = least_squares_line([x for x, _ in entries], [y for _, y in entries])
        if line is None:  # every block of this kind has the same FLOPs: their mean
            line = (sum(y for _, y in entries) / n, 0.0)
        self._lines[kind] = (n, line)
        return line

    def predict_ms(self, scale: Scale, num_classes: int = 1000,
                   resolution_base: int | None = None) -> float:
        """Predicted latency in milliseconds of the base at ``scale`` on an otherwise idle
        machine (see :data:`STATISTIC`): pure Python when the candidate's units are in the
        table (else they are timed first, if ``lazy``)."""
        network = self.base.network(scale, num_classes, resolution_base)
        calibration = self.calibration(num_classes, resolution_base)
        return self._checked(calibration.offset_ms + calibration.factor * self._unit_sum(network))

    def _checked(self, ms: float) -> float:
        """A prediction, refused when it is no number (each entry of the table is checked in
        range when it is read; this guards their sum)."""
        if not math.isfinite(ms):
            raise TinyFormulaError(f"the latency table {self.path} predicts {ms:.3g} ms for this "
                                   f"network, which is no latency; delete it to rebuild it")
        return ms

    def __repr__(self) -> str:
        return (f"<LatencyModel {self.base.name} {self.setting.device} {self.setting.runtime} "
                f"threads={self.setting.threads} batch={self.setting.batch}: "
                f"{len(self._units)} units, {self.path}>")
