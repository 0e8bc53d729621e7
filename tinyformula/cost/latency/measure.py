"""Measuring inference latency soundly: where it runs (:class:`Setting`) and how it is timed
(:class:`Protocol`).

The protocol: pin the thread count, put the module in eval mode under ``torch.inference_mode()``
(or an onnxruntime session with the same thread count), warm up, then time single calls until
the median is known to about 1% (the standard error of the median, estimated from the
inter-quartile range, below ``precision`` x median) or a cap on repeats or seconds is reached.
The garbage collector is paused while timing. The result reports the median and the spread
(p10, p25, p75, p90). A block timed for the latency table may be given as several identical
copies, called in turn, so that its weights are not cache-hot as they never are in a network.
Nothing can stop *other processes* from sharing the CPU: the load average
is recorded beside the numbers so a reader can judge them.

Everything that needs torch or onnxruntime is imported inside the functions that use it.
"""

from __future__ import annotations

import gc
import io
import math
import os
import platform
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import util as import_util
from pathlib import Path
from typing import Callable, ClassVar

from ...core.constraints import Integer, Options, check_fields
from ...core.errors import TinyFormulaError
from ...core.memory import check_fits, largest
from ...core.threads import torch_threads
from ...nets.layers import Network

DEVICES = ("cpu", "cuda")
CALIBRATION_NETWORKS = 8   # whole networks a latency table's correction is fitted on
RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Setting:
    """Where a latency is measured: device, thread count, batch size and runtime. The values
    are checked on construction; :meth:`check` also asks this machine whether it can measure
    them (enough cores, the runtime installed, a CUDA device)."""

    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    runtime: str = "torch"

    constraints: ClassVar[dict] = {
        "device": Options(DEVICES),
        "threads": Integer(1, 1024),
        "batch": Integer(1, 4096, why="a batch beyond 4,096 images measures throughput, "
                                      "not latency"),
        "runtime": Options(RUNTIMES),
    }

    def __post_init__(self):
        check_fields(self, label="{flag}")

    def check(self) -> "Setting":
        """Refuse a setting this machine cannot measure (one clear :class:`TinyFormulaError`)."""
        cores = os.cpu_count() or 1
        if self.threads > cores:
            raise TinyFormulaError(
                f"--threads {self.threads} is more than this machine's {cores} cores; "
                f"oversubscribed threads time the scheduler, not the network")
        if self.runtime == "onnxruntime" and not _installed("onnxruntime", "onnx"):
            raise TinyFormulaError("the onnxruntime runtime needs onnx and onnxruntime: "
                                   "pip install 'tinyformula[latency]'")
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise TinyFormulaError("--device cuda: no CUDA device is available here "
                                       "(torch.cuda.is_available() is False); use --device cpu")
            if self.runtime == "onnxruntime":
                import onnxruntime

                if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                    raise TinyFormulaError("this onnxruntime has no CUDAExecutionProvider; "
                                           "install onnxruntime-gpu or use --runtime torch")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def _installed(*modules: str) -> bool:
    return all(import_util.find_spec(name) is not None for name in modules)


def machine_description(device: str = "cpu") -> str:
    """What the timings belong to: the CPU model (or GPU name), core count and platform."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{cpu}; {os.cpu_count()} cores; {platform.system()} {platform.machine()}"
    if device == "cuda":
        import torch

        text += f"; {torch.cuda.get_device_name()}"
    return text


def last_level_cache_bytes(default: int = 32 << 20) -> int:
    """The largest CPU cache's size (Linux sysfs), else ``default``."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if text and text[-1] in units and text[:-1].isdigit():
            sizes.append(int(text[:-1]) * units[text[-1]])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes, default=default)


@dataclass(frozen=True)
class Protocol:
    """How long to time: ``warmup`` calls (and at least ``warmup_seconds``), then at least
    ``min_reps`` calls and ``min_seconds``, stopping once the median's standard error
    (0.93 x IQR / sqrt(n)) is below ``precision`` x median, or at ``max_reps`` / ``max_seconds``.

    A latency table built with it times each block over at most ``max_copies`` identical
    copies (None: the runtime's own cap) and calibrates on ``calibration_networks`` whole
    networks. A protocol other than the ``standard`` one keeps its own table (its ``name`` is
    part of the table's key), so a quick look never mixes rough timings into a careful table.
    """

    name: str = "standard"
    warmup: int = 5
    warmup_seconds: float = 0.05
    min_reps: int = 15
    min_seconds: float = 0.1
    max_reps: int = 2000
    max_seconds: float = 3.0
    precision: float = 0.01
    calibration_networks: int = CALIBRATION_NETWORKS
    max_copies: int | None = None

    def __post_init__(self):
        if not (1 <= self.min_reps <= self.max_reps) or self.warmup < 0:
            raise TinyFormulaError("a protocol needs 1 <= min_reps <= max_reps and warmup >= 0")


# For tests and a first look (``tinyformula latency --quick``): a handful of calls, no minimum
# duration, one copy of each block, two calibration networks; about ten times faster, noisier.
QUICK = Protocol(name="quick", warmup=1, warmup_seconds=0.0, min_reps=3, min_seconds=0.0,
                 max_reps=5, max_seconds=0.5, calibration_networks=2, max_copies=1)


@dataclass(frozen=True)
class Timing:
    """One call's latency over ``reps`` timed calls, in milliseconds."""

    median_ms: float
    p10_ms: float
    p25_ms: float
    p75_ms: float
    p90_ms: float
    reps: int
    stable: bool  # whether the precision target was met before a cap
    load: float | None  # 1-minute load average when timing ended

    @property
    def iqr_ms(self) -> float:
        return self.p75_ms - self.p25_ms

    def to_dict(self) -> dict:
        return {**asdict(self), "iqr_ms": self.iqr_ms}


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolation quantile of an already sorted list."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_calls(call: Callable[[], object], protocol: Protocol = Protocol()) -> Timing:
    """Time ``call`` (which must block until its work is done) by the protocol."""
    started = time.perf_counter()
    done = 0
    while done < protocol.warmup or time.perf_counter() - started < protocol.warmup_seconds:
        call()
        done += 1
    samples: list[float] = []
    stable = False
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        while len(samples) < protocol.max_reps:
            t0 = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t0)
            n = len(samples)
            if n < protocol.min_reps or time.perf_counter() - started < protocol.min_seconds:
                continue
            if n % 5 == 0 or n == protocol.max_reps:  # sorting every call would cost O(n^2)
                ordered = sorted(samples)
                iqr = _quantile(ordered, 0.75) - _quantile(ordered, 0.25)
                if 0.93 * iqr / math.sqrt(n) <= protocol.precision * statistics.median(ordered):
                    stable = True
                    break
            if time.perf_counter() - started >= protocol.max_seconds:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    ordered = sorted(1e3 * s for s in samples)
    return Timing(median_ms=statistics.median(ordered), p10_ms=_quantile(ordered, 0.10),
                  p25_ms=_quantile(ordered, 0.25), p75_ms=_quantile(ordered, 0.75),
                  p90_ms=_quantile(ordered, 0.90), reps=len(ordered), stable=stable,
                  load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)


def time_module(modules, input_shape: tuple, setting: Setting,
                protocol: Protocol = Protocol()) -> Timing:
    """Latency of one forward pass on a ``(batch, *input_shape)`` input.

    ``modules`` is one module, or several identical copies: each timed call then goes to the
    next copy (with its own input), so weights and input come from memory as they do inside a
    network, not from a cache the previous call just filled.
    """
    copies = list(modules) if isinstance(modules, (list, tuple)) else [modules]
    # Each copy's input alone (float32) must fit: a lower bound of what timing allocates.
    per_image = 4 * math.prod(input_shape) * len(copies)
    check_fits(setting.batch * per_image,
               f"timing at --batch {setting.batch:,} ({'x'.join(map(str, input_shape))} inputs)",
               setting.device, lambda free: f"at most --batch {largest(per_image, free):,} here")
    with torch_threads(setting.threads):
        shape = (setting.batch, *input_shape)
        make = _onnxruntime_call if setting.runtime == "onnxruntime" else _torch_call
        calls = [make(module.eval(), shape, setting, seed) for seed, module in enumerate(copies)]
        for call in calls:  # warm every copy once (allocations, kernel selection)
            call()
        if len(calls) == 1:
            return time_calls(calls[0], protocol)
        turn = iter(range(1 << 62))

        def rotate():
            calls[next(turn) % len(calls)]()
        return time_calls(rotate, protocol)


def _torch_call(module, shape: tuple, setting: Setting, seed: int = 0) -> Callable[[], object]:
    import torch

    device = torch.device(setting.device)
    module = module.to(device)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
    if setting.device == "cuda":
        def call():
            with torch.inference_mode():
                module(x)
            torch.cuda.synchronize()
    else:
        def call():
            with torch.inference_mode():
                module(x)
    return call


def _onnxruntime_call(module, shape: tuple, setting: Setting,
                      seed: int = 0) -> Callable[[], object]:
    import onnxruntime
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (x,), buffer,  # type: ignore[arg-type]
                          dynamo=False, input_names=["x"],
                          output_names=["y"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = setting.threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    providers = (["CUDAExecutionProvider"] if setting.device == "cuda"
                 else ["CPUExecutionProvider"])
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=providers)
    feed = {"x": x.numpy()}

    def call():
        session.run(None, feed)
    return call


def measure_network(network: Network, setting: Setting,
                    protocol: Protocol = Protocol()) -> Timing:
    """Build ``network`` (its weights initialised as for training) and time it at its own
    input resolution."""
    from ...nets.build import build_network

    setting.check()
    module = build_network(network)
    return time_module(module, (network.in_channels, network.resolution, network.resolution),
                       setting, protocol)
