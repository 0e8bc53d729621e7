"""What this machine can give a search: usable cores, available memory, and how many local
worker processes that allows."""

from __future__ import annotations

import os

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
