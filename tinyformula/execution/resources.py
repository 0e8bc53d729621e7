"""What this machine can give a search: usable cores, available memory, and how many local
worker processes that allows."""

from __future__ import annotations

import os

from ..core.memory import available_memory

# How much memory one local worker process needs at most: torch, a dataset copy and a small
# candidate in training (measured: ~600 MB per worker on Fashion-MNIST's default preset).
WORKER_MEMORY_BYTES = 1 << 30


__all__ = ["WORKER_MEMORY_BYTES", "available_memory", "cap_workers", "usable_cores"]


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
