"""Sizes against what the machine can hold, checked before anything is allocated.

A size a user gives (a batch, a number of images, a schedule) reaches an allocator somewhere;
past what the machine has, the allocator fails with a long traceback or the kernel kills the
process. Each place that allocates from a user's size estimates a *lower bound* of what it
needs and asks :func:`check_fits` first: refused in one line that says what was asked, what
it needs and what is possible here. The bounds are lower bounds on purpose: a refusal is
always right, and what they let through is what the machine may well hold.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import TinyFormulaError

GB = 2**30


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


def available_bytes(device: str = "cpu") -> int | None:
    """Memory available on ``device`` ("cpu", "cuda", "cuda:N"): the machine's, or the GPU's
    free memory plus what this process's caching allocator holds unused (asks torch only for
    a CUDA device). None when unknown."""
    if str(device).startswith("cuda"):
        try:
            import torch

            index = int(str(device).split(":", 1)[1]) if ":" in str(device) else None
            cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
            return int(torch.cuda.mem_get_info(index)[0]) + max(0, int(cached))
        except (RuntimeError, ValueError, AssertionError, ImportError):
            return None
    return available_memory()


def gigabytes(amount: float) -> str:
    return f"{amount / GB:,.3g} GB"


def check_fits(need: float, what: str, device: str = "cpu",
               possible: Callable[[int], str] | None = None) -> None:
    """Refuse ``what`` when it needs at least ``need`` bytes and ``device`` has less
    available. ``possible(available)`` says what would fit ("at most --batch 318")."""
    available = available_bytes(device)
    if available is None or need <= available:
        return
    where = "this machine" if not str(device).startswith("cuda") else f"the GPU ({device})"
    hint = f"; {possible(available)}" if possible is not None else ""
    raise TinyFormulaError(f"{what} needs at least {gigabytes(need)} of memory and {where} "
                           f"has {gigabytes(available)} available{hint}")


def largest(per_item: float, available: int, fixed: float = 0.0) -> int:
    """How many items of ``per_item`` bytes fit in ``available`` beside ``fixed``."""
    return max(0, int((available - fixed) // per_item)) if per_item > 0 else 0
