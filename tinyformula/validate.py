"""One place that checks user-facing values, in the spirit of scikit-learn's ``_parameter_constraints``.

A constraint is declared once, next to the parameter it guards, and :func:`check` applies it::

    SEED = Integer(0, 2**63 - 1)
    seed = check("seed", value, SEED)

Every failure is a :class:`~tinyformula.errors.TinyFormulaError` naming the parameter, the
allowed range (and, where given, why), and the value received: the CLI prints it as one line
with exit status 2. Booleans are never accepted as numbers (``True`` is no trial count).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyFormulaError


@dataclass(frozen=True)
class Integer:
    """A whole number in ``[low, high]`` (either bound may be None: unbounded)."""

    low: int | None = None
    high: int | None = None
    why: str = ""

    def describe(self) -> str:
        if self.high is None:
            return f"a whole number of at least {self.low}" if self.low is not None \
                else "a whole number"
        if self.low is None:
            return f"a whole number of at most {self.high:,}"
        return f"a whole number from {self.low} to {self.high:,}"

    def convert(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return None
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            return None
        return value


@dataclass(frozen=True)
class Real:
    """A finite number between ``low`` and ``high``; ``closed`` says which ends are allowed
    (``"both"``, ``"left"``, ``"right"`` or ``"neither"``)."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    why: str = ""

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        if self.low is not None and self.high is not None:
            return f"a finite number in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"a finite number {'at least' if left == '[' else 'above'} {self.low:g}"
        if self.high is not None:
            return f"a finite number {'at most' if right == ']' else 'below'} {self.high:g}"
        return "a finite number"

    def convert(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            return None
        if not math.isfinite(value):
            return None
        if self.low is not None and (value < self.low or
                                     (value == self.low and self.closed in ("right", "neither"))):
            return None
        if self.high is not None and (value > self.high or
                                      (value == self.high and self.closed in ("left", "neither"))):
            return None
        return value


@dataclass(frozen=True)
class Options:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]
    why: str = ""

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def convert(self, value):
        return value if isinstance(value, str) and value in self.choices else None


def check(name: str, value, constraint, *, allow_none: bool = False):
    """``value`` converted to the constraint's type, or a one-line error naming ``name``."""
    if value is None and allow_none:
        return None
    converted = constraint.convert(value)
    if converted is None:
        why = f" ({constraint.why})" if constraint.why else ""
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise TinyFormulaError(f"{name} must be {constraint.describe()}{why}, got {shown}")
    return converted


POSITIVE_INT = Integer(1)
SEED = Integer(0, 2**63 - 1, why="seeds are stored as 64-bit SQLite integers")
COUNT_LIMIT = 100_000_000
COUNT = Integer(1, COUNT_LIMIT, why="no dataset or schedule here needs more")


# -- where results go --------------------------------------------------------------------------

def check_output_path(name: str, path) -> Path:
    """A path a command will create or write: not empty, each part within the file system's
    name length, and under a folder this user can write. Nothing is created here."""
    text = str(path) if path is not None else ""
    if not text.strip():
        raise TinyFormulaError(f"{name} must name a folder or file, got {text!r}")
    if "\0" in text:
        raise TinyFormulaError(f"{name} must not contain a NUL character")
    path = Path(text)
    existing = _nearest_existing(path.absolute())
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    too_long = [part for part in path.parts if len(os.fsencode(part)) > name_max]
    if too_long:
        raise TinyFormulaError(f"{name}: the name {too_long[0][:40]!r}... is longer than the "
                               f"{name_max} bytes a file name may have here")
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path.absolute()))) >= path_max:
        raise TinyFormulaError(f"{name} is longer than the {path_max} bytes a path may have")
    if not existing.is_dir() and existing != path.absolute():
        raise TinyFormulaError(f"{name}: {existing} is a file, not a folder")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TinyFormulaError(f"{name}: cannot write in {folder} (read-only or not yours); "
                               f"choose another place")
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (never raises for overlong names)."""
    while path != path.parent:
        try:
            if os.path.lexists(path):
                return path
        except (OSError, ValueError):
            pass
        path = path.parent
    return path


def _pathconf(path: Path, key: str, default: int) -> int:
    try:
        return os.pathconf(path if path.is_dir() else path.parent, key)
    except (OSError, ValueError):
        return default


# -- where trials run ----------------------------------------------------------------------------

PORT = Integer(1, 65535, why="a TCP port")


def check_scheduler(address: str) -> tuple[str, str, int]:
    """A Dask scheduler address ``[tcp://]host:port`` (IPv6 hosts in brackets), as
    (protocol, host, port); a one-line error for anything else. Nothing is contacted here."""
    from urllib.parse import urlsplit

    text = address.strip() if isinstance(address, str) else ""
    example = "tcp://host:8786"
    if not text:
        raise TinyFormulaError(f"--scheduler must be an address like {example}, got {address!r}")
    if "://" not in text:
        text = "tcp://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise TinyFormulaError(f"--scheduler {address!r} is not an address like {example} "
                               f"({error})") from None
    if parts.scheme not in ("tcp", "tls"):
        raise TinyFormulaError(f"--scheduler {address!r}: Dask schedulers speak tcp:// or "
                               f"tls://, not {parts.scheme}://; give {example}")
    if not host or port is None or parts.path not in ("", "/") or parts.query or parts.username:
        raise TinyFormulaError(f"--scheduler {address!r} is not an address like {example} "
                               f"(a host and a port)")
    return parts.scheme, host, check("the --scheduler port", port, PORT)


def reach_scheduler(address: str, timeout: float = 10.0) -> None:
    """Open (and close) a TCP connection to the scheduler, so an unreachable one is reported
    before anything is planned or written."""
    import socket

    _, host, port = check_scheduler(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise TinyFormulaError(f"cannot reach the Dask scheduler at {address} ({reason}); is it "
                               f"running?") from None


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, and for CUDA a GPU torch can see: checked once,
    before any trial, rather than by every trial. Imports torch only for a CUDA device."""
    if not isinstance(device, str) or not (
            device in ("auto", "cpu", "cuda")
            or (device.startswith("cuda:") and device[5:].isdigit())):
        raise TinyFormulaError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if ":" in device else 0
        if index >= count:
            seen = f"sees {count} CUDA GPU(s)" if count else "sees no CUDA GPU"
            raise TinyFormulaError(f"--device {device} asked for, but torch {seen}; use "
                                   f"--device cpu or auto")
    return device


# How much memory one local worker process needs at most: torch, a dataset copy and a small
# candidate in training (measured: ~600 MB per worker on Fashion-MNIST's default preset).
WORKER_MEMORY_BYTES = 1 << 30


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cap_workers(asked: int | None, jobs: int) -> tuple[int, str]:
    """How many local worker processes to start for ``jobs`` trials: what was asked (default:
    one per core), at most one per job, per usable core and per ``WORKER_MEMORY_BYTES`` of
    available memory (at least one). Returns the count and, when it is below what was asked,
    one line saying why (empty otherwise)."""
    workers, cores, memory = asked or usable_cores(), usable_cores(), available_memory()
    limits = {max(jobs, 1): f"{jobs} trial(s) to run", cores: f"{cores} usable core(s)"}
    if memory is not None:
        limits.setdefault(max(memory // WORKER_MEMORY_BYTES, 1),
                          f"{memory / 2**30:.1f} GB available at "
                          f"{WORKER_MEMORY_BYTES / 2**30:g} GB per worker")
    capped = min(workers, *limits)
    if capped >= workers or asked is None:
        return capped, ""
    return capped, f"--workers {asked} capped at {capped}: {limits[capped]}"
