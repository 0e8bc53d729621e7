"""Latency model: predict a candidate's inference latency from a per-block lookup table.

In the spirit of ProxylessNAS's and nn-Meter's latency tables: a network is cut into *units*
(its top-level blocks: the stem, each block of each stage, the head, pooling, the classifier;
see :func:`units`), each unit is timed once, alone, at the input shape it meets in the network,
and a candidate's latency is predicted as ``a + b x (sum of its units' latencies)`` (each a
10th percentile, :data:`STATISTIC`: the prediction is the latency of an otherwise idle machine). The
correction ``a + b`` is fitted on a few whole networks measured end to end (the calibration
set: candidates the search itself would draw), because summing isolated blocks misses what
happens between them (container calls, cache effects).

The table is built lazily: a prediction that meets a unit the table lacks times it then and
saves it, so each distinct (unit, input shape) is profiled once per machine;
:meth:`LatencyModel.prebuild` profiles a whole candidate list (a search plan) up front. A lookup
table rather than a fitted regressor because it is exact where it has been measured and the
search space is discrete (channels in multiples of 8 or 4, whole pixels); the price is that new
shapes cost a profile.

Tables live in ``$TINYFORMULA_CACHE/latency`` (default ``~/.cache/tinyformula/latency``), one
JSON file per base, keyed by machine, device, runtime, threads, batch and torch version, written
atomically under a lock, with a checksum. A corrupt or stale file is refused with one line that
names it, never overwritten. Once the units of a candidate are in the table, predicting it is
pure Python (no torch call, no module built): about 0.3 ms.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .bases import get_base
from .bases.spec import BaseNetwork
from .cost import layer_cost
from .errors import TinyFormulaError
from .files import checksum, write_atomically
from .layers import Network, Residual, Sequential
from .measure import (
    Protocol,
    Setting,
    last_level_cache_bytes,
    machine_description,
    measure_network,
    time_module,
)
from .scale import Scale

FORMAT = 1
# The statistic the table keeps and predicts: each block's (and each calibration network's) 10th
# percentile. Other processes sharing the CPU inflate the median by whatever share of calls they
# interrupt (at a load of 8 on 2 cores the calibration came out 1.8-4.9x), while the 10th
# percentile barely moves; so a table built on a busy machine still predicts the latency of an
# otherwise idle one, which is what the median measures there.
STATISTIC = "p10_ms"
CALIBRATION_CANDIDATES = 8
CALIBRATION_SEED = 12345
MIN_FIT_UNITS = 8  # timed blocks of one kind before estimate_ms fits a line to them


def cache_root() -> Path:
    """``$TINYFORMULA_CACHE`` if set, else ``$XDG_CACHE_HOME/tinyformula`` (``~/.cache``)."""
    if os.environ.get("TINYFORMULA_CACHE"):
        return Path(os.environ["TINYFORMULA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyformula"


# -- units ---------------------------------------------------------------------------------------

def _is_container(layer) -> bool:
    """A Sequential whose children are all blocks (a stage list or a stage), not layers."""
    return isinstance(layer, Sequential) and all(
        isinstance(child, (Sequential, Residual)) for child in layer.layers)


def units(network: Network) -> list[tuple[object, tuple]]:
    """The network cut into units, each with the input shape ``(channels, h, w)`` it meets.

    Containers (the stage list, each stage) are opened; everything else at the top of the tree
    (a conv-BN-act stem, a residual or plain block, pooling, a classifier) is one unit.
    """
    found: list[tuple[object, tuple]] = []

    def walk(sequence: Sequential, shape: tuple) -> tuple:
        for child in sequence.layers:
            if _is_container(child):
                shape = walk(child, shape)
            else:
                found.append((child, shape))
                shape = layer_cost(child, shape).shape
        return shape

    walk(network.body, (network.in_channels, network.resolution, network.resolution))
    return found


def unit_key(unit, shape: tuple) -> str:
    """A stable key for a unit at an input shape: a digest of its description and the shape."""
    return hashlib.sha1(f"{shape}|{unit!r}".encode()).hexdigest()[:20]


MAX_COPIES = {"torch": 16, "onnxruntime": 4}  # onnxruntime copies cost an export each


def unit_copies(unit, shape: tuple, setting: Setting) -> list:
    """Identical modules for ``unit``, enough that cycling through them (weights and inputs)
    overflows the last-level cache, as the rest of a network does between two calls of a
    block: timed alone and hot, blocks ran 15-80% faster than inside their network."""
    import math

    from .build import build_layer, init_weights

    def make():
        module = build_layer(unit)
        init_weights(module)  # the built network's initialisation
        return module

    first = make()
    size = 4 * (sum(p.numel() for p in first.parameters()) + setting.batch * math.prod(shape))
    count = max(1, min(MAX_COPIES[setting.runtime], -(-last_level_cache_bytes() // size)))
    return [first] + [make() for _ in range(count - 1)]


# -- the table file ------------------------------------------------------------------------------

def table_key(base: str, setting: Setting) -> dict:
    """Everything a table's timings depend on."""
    import torch

    return {"format": FORMAT, "base": base, "machine": machine_description(setting.device),
            "device": setting.device, "runtime": setting.runtime, "threads": setting.threads,
            "batch": setting.batch, "torch": torch.__version__,
            "onnxruntime": _onnxruntime_version() if setting.runtime == "onnxruntime" else None}


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def table_path(key: dict, cache_dir: Path | None = None) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = (f"{key['base']}-{key['device']}-{key['runtime']}-t{key['threads']}-b{key['batch']}"
            f"-{digest}.json")
    return Path(cache_dir or cache_root() / "latency") / name


def read_table(path: Path, key: dict) -> dict:
    """The table stored at ``path`` (``units`` and ``calibrations``), or an empty one; a file
    that cannot be read, fails its checksum or was made for another key is refused."""
    if not path.exists():
        return {"key": key, "units": {}, "calibrations": {}}
    advice = f"delete {path} to rebuild it"
    try:
        data = json.loads(path.read_text())
        body, stored_checksum = data["body"], data["checksum"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TinyFormulaError(f"latency table {path} is corrupt ({type(error).__name__}); "
                               f"{advice}") from None
    if not isinstance(body, dict) or checksum(body) != stored_checksum:
        raise TinyFormulaError(f"latency table {path} is corrupt (checksum mismatch); {advice}")
    if not (isinstance(body.get("units"), dict) and isinstance(body.get("calibrations"), dict)):
        raise TinyFormulaError(f"latency table {path} is corrupt (no units or calibrations); "
                               f"{advice}")
    if body.get("key") != key:
        stored = body.get("key") or {}
        changed = sorted(k for k in set(key) | set(stored) if stored.get(k) != key.get(k))
        raise TinyFormulaError(f"latency table {path} is stale: made for another "
                               f"{', '.join(changed)}; {advice}")
    return body


def write_table(path: Path, body: dict) -> None:
    """Merge ``body`` into the file under a lock (another process may have added units) and
    replace it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = read_table(path, body["key"])
        merged = {"key": body["key"],
                  "units": {**current["units"], **body["units"]},
                  "calibrations": {**current["calibrations"], **body["calibrations"]}}
        write_atomically(path, json.dumps({"body": merged, "checksum": checksum(merged)},
                                          indent=1, sort_keys=True))
    body.update(merged)


@contextmanager
def _locked(path: Path):
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the model -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calibration:
    """``measured ~ offset_ms + factor x sum of unit latencies``, fitted on whole networks."""

    offset_ms: float
    factor: float
    points: tuple  # ((unit sum ms, measured ms), ...)

    def to_dict(self) -> dict:
        return {"offset_ms": self.offset_ms, "factor": self.factor,
                "points": [list(p) for p in self.points]}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(float(data["offset_ms"]), float(data["factor"]),
                   tuple(tuple(p) for p in data["points"]))

    @classmethod
    def fit(cls, points: list[tuple[float, float]]) -> "Calibration":
        """Least squares on *relative* error (weights 1/measured^2): a 10% miss on a 2 ms
        network counts as much as one on a 50 ms network. With fewer than two distinct unit
        sums, or a fit that is not increasing, a plain ratio."""
        weights = [1 / m ** 2 for _, m in points]
        sw = sum(weights)
        mean_s = sum(w * s for w, (s, _) in zip(weights, points)) / sw
        mean_m = sum(w * m for w, (_, m) in zip(weights, points)) / sw
        var = sum(w * (s - mean_s) ** 2 for w, (s, _) in zip(weights, points))
        if len(points) >= 2 and var > 0:
            factor = sum(w * (s - mean_s) * (m - mean_m)
                         for w, (s, m) in zip(weights, points)) / var
            offset = mean_m - factor * mean_s
            if factor > 0:
                return cls(offset, factor, tuple(points))
        ratio = sum(m for _, m in points) / sum(s for s, _ in points)
        return cls(0.0, ratio, tuple(points))


class LatencyModel:
    """Predicted latency of any (r, d, w) of one base on one device, runtime and thread count.

    Use :meth:`load_or_build`; :meth:`predict_ms` then answers in pure Python once a candidate's
    units are in the table (it times missing units itself unless ``lazy=False``).
    """

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
        """Load the table for this base and setting (or start one), and make sure it is
        calibrated for ``num_classes`` and ``resolution_base`` (timing the calibration networks
        the first time)."""
        base = get_base(base) if isinstance(base, str) else base
        setting = Setting(device, threads, batch, runtime).check()
        key = table_key(base.name, setting)
        path = table_path(key, cache_dir)
        model = cls(base, setting, path, read_table(path, key), protocol, lazy)
        model.calibration(num_classes, resolution_base)
        return model

    def _calibration_id(self, num_classes: int, resolution_base: int | None) -> str:
        return f"classes{num_classes}-px{resolution_base or self.base.default_resolution}"

    def calibration(self, num_classes: int = 1000,
                    resolution_base: int | None = None) -> Calibration:
        """The correction for networks of this input size and class count; fitted (and saved)
        on first use by timing :data:`CALIBRATION_CANDIDATES` whole networks."""
        ident = self._calibration_id(num_classes, resolution_base)
        stored = self._table["calibrations"].get(ident)
        if stored is not None:
            return Calibration.from_dict(stored)
        from .space import plan_candidates
        from .yardstick import Yardstick

        points = []
        started = time.perf_counter()
        flops = Yardstick(self.base.name, num_classes, resolution_base)
        candidates = plan_candidates(flops, CALIBRATION_CANDIDATES, seed=CALIBRATION_SEED)
        self.prebuild([c.scale for c in candidates], num_classes, resolution_base)  # one save
        for candidate in candidates:
            network = self.base.network(candidate.scale, num_classes, resolution_base)
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
        started = time.perf_counter()
        for unit, shape in pending:
            timing = time_module(unit_copies(unit, shape, self.setting), shape, self.setting,
                                 self.protocol)
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
        return calibration.offset_ms + calibration.factor * total

    def _line(self, kind: str) -> tuple[float, float] | None:
        """Least-squares (intercept, ms per FLOP) over the table's blocks of one kind, refitted
        as the table grows by a tenth; None with too few blocks of that kind."""
        entries = [(v["flops"], v[STATISTIC]) for v in self._table["units"].values()
                   if v.get("unit") == kind and v.get("flops") is not None]
        cached = self._lines.get(kind)
        if cached is not None and len(entries) <= 1.1 * cached[0]:
            return cached[1]
        if len(entries) < MIN_FIT_UNITS:
            return None
        n = len(entries)
        mean_x = sum(x for x, _ in entries) / n
        mean_y = sum(y for _, y in entries) / n
        var = sum((x - mean_x) ** 2 for x, _ in entries)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in entries) / var if var else 0.0
        line = (mean_y - slope * mean_x, slope)
        self._lines[kind] = (n, line)
        return line

    def predict_ms(self, scale: Scale, num_classes: int = 1000,
                   resolution_base: int | None = None) -> float:
        """Predicted latency in milliseconds of the base at ``scale`` on an otherwise idle
        machine (see :data:`STATISTIC`): pure Python when the candidate's units are in the
        table (else they are timed first, if ``lazy``)."""
        network = self.base.network(scale, num_classes, resolution_base)
        calibration = self.calibration(num_classes, resolution_base)
        return calibration.offset_ms + calibration.factor * self._unit_sum(network)

    def __repr__(self) -> str:
        return (f"<LatencyModel {self.base.name} {self.setting.device} {self.setting.runtime} "
                f"threads={self.setting.threads} batch={self.setting.batch}: "
                f"{len(self._units)} units, {self.path}>")
