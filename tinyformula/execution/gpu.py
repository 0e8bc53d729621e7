"""Several trials on one GPU: how many, on which device, and how workers claim their GPU.

A small candidate's trial uses a fraction of a modern GPU even with its step in a CUDA graph,
so a search runs N trials at once per GPU, each in its own worker process. N is the smallest
number that reaches (within ``tolerance``) the best aggregate throughput of a short measured
ramp (1, 2, 4, ... trials at once), capped by how many trials fit in the GPU's free memory;
a user override replaces the ramp but not the memory cap's warning. Every worker process
claims one GPU before CUDA starts in it (``CUDA_VISIBLE_DEVICES``), so its trials run on
``cuda`` and a trial's score does not depend on which GPU or worker ran it.

Everything here but :func:`visible_gpus` and :func:`measure_trial_bytes` is plain
arithmetic, testable without a GPU. Dask workers on a cluster declare the resource
:data:`DASK_RESOURCE` (one unit per trial slot; whole numbers, since fractions of one GPU
do not add up exactly: nine tasks of ``1/9`` each fail to fit in 1.0 in floating point).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

# A CUDA context and torch's kernels, per process (typical, not measured here).
CONTEXT_BYTES = 512 * 2**20
MEMORY_HEADROOM = 0.9        # plan with 90% of the free memory
MAX_TRIALS_PER_GPU = 16
RAMP_TOLERANCE = 0.05        # N reaching 95% of the best measured throughput is enough
DASK_RESOURCE = "GPU_TRIALS"


@dataclass(frozen=True)
class Gpu:
    """One visible GPU: ``index`` is its number in this process (``cuda:index``)."""

    index: int
    name: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class GpuPlan:
    """How many trials run at once on each GPU, and the GPU of each worker process.

    ``slots`` lists, per worker, the index of its GPU, interleaved across GPUs so a short
    job list still spreads over all of them. ``notes`` are lines for the user.
    """

    per_gpu: dict[int, int]
    slots: tuple[int, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def workers(self) -> int:
        return len(self.slots)


def trials_that_fit(free_bytes: int, trial_bytes: int, headroom: float = MEMORY_HEADROOM) -> int:
    """How many trials of ``trial_bytes`` (context included) fit in ``free_bytes`` (0 if none)."""
    if trial_bytes <= 0:
        raise ValueError(f"a trial's memory must be positive, got {trial_bytes}")
    return max(0, int(free_bytes * headroom) // trial_bytes)


def estimate_trial_bytes(params: int, activation_elements: int, batch_size: int,
                         optimizer: str = "sgd", ema: bool = False) -> int:
    """A rough upper bound on one trial's GPU memory when none was measured: the CUDA context;
    fp32 weights, gradients and optimizer state (momentum; AdamW's two moments) and an EMA
    copy; and ``activation_elements`` (the outputs of every layer for one image) kept for
    the backward pass at 4 bytes each (bf16 halves most of them: hence an upper bound),
    doubled for the graph's private pool and the allocator's rounding."""
    copies = 2 + (2 if optimizer == "adamw" else 1) + (1 if ema else 0)
    return CONTEXT_BYTES + 4 * params * copies + 2 * 4 * activation_elements * batch_size


def choose_trials_per_gpu(ramp: dict[int, float], cap: int,
                          tolerance: float = RAMP_TOLERANCE) -> int:
    """From a measured ramp ``{trials at once: aggregate images/s}``, the fewest trials at
    once within ``tolerance`` of the best rate among those at most ``cap``; 1 if none fit."""
    usable = {n: rate for n, rate in ramp.items() if 1 <= n <= cap}
    if not usable:
        return 1
    best = max(usable.values())
    return min(n for n, rate in usable.items() if rate >= (1 - tolerance) * best)


def ramp_steps(cap: int) -> list[int]:
    """Trials at once to measure: 1, 2, 4, ... up to ``cap`` (``cap`` itself last)."""
    steps, n = [], 1
    while n < cap:
        steps.append(n)
        n *= 2
    return steps + [max(1, cap)]


def measure_ramp(aggregate_rate: Callable[[int], float], cap: int,
                 tolerance: float = RAMP_TOLERANCE) -> dict[int, float]:
    """``{n: aggregate_rate(n)}`` for n = 1, 2, 4, ... up to ``cap``, stopping once a step
    gains less than ``tolerance`` over the previous one. ``aggregate_rate(n)`` runs ``n``
    short trials at once on one GPU and returns their total training images per second (the
    executor owns the worker processes, so it supplies this)."""
    ramp: dict[int, float] = {}
    previous = None
    for n in ramp_steps(cap):
        ramp[n] = aggregate_rate(n)
        if previous is not None and ramp[n] < (1 + tolerance) * previous:
            break
        previous = ramp[n]
    return ramp


def plan_gpu_workers(gpus: list[Gpu], trial_bytes: int, *, override: int | None = None,
                     ramp: dict[int, float] | None = None,
                     max_per_gpu: int = MAX_TRIALS_PER_GPU) -> GpuPlan:
    """Trials at once per GPU and each worker's GPU.

    Per GPU: ``override`` when given (a note if it exceeds what memory allows); else the
    ramp's choice capped by memory; with no ramp, as many as fit in memory (at most
    ``max_per_gpu``). The ramp is measured on one GPU and applied to every GPU of the same
    free memory or more; a GPU with room for none still gets one trial and a note.
    """
    if not gpus:
        raise ValueError("no GPU to plan for")
    if override is not None and override < 1:
        raise ValueError(f"trials per GPU must be at least 1, got {override}")
    per_gpu, notes = {}, []
    for gpu in gpus:
        cap = min(max_per_gpu, trials_that_fit(gpu.free_bytes, trial_bytes))
        if override is not None:
            n = override
            if n > cap:
                notes.append(f"cuda:{gpu.index}: {n} trials at once asked for, memory allows "
                             f"about {cap} ({gpu.free_bytes / 2**30:.1f} GiB free, "
                             f"{trial_bytes / 2**30:.2f} GiB per trial)")
        elif cap == 0:
            n = 1
            notes.append(f"cuda:{gpu.index}: {gpu.free_bytes / 2**30:.1f} GiB free, a trial "
                         f"needs about {trial_bytes / 2**30:.2f} GiB; running one at a time")
        elif ramp:
            n = choose_trials_per_gpu(ramp, cap)
        else:
            n = cap
        per_gpu[gpu.index] = n
    slots = tuple(gpu.index for k in range(max(per_gpu.values()))
                  for gpu in gpus if k < per_gpu[gpu.index])
    return GpuPlan(per_gpu=per_gpu, slots=slots, notes=tuple(notes))


def worker_environment(gpu_index: int, visible: str | None = None) -> dict[str, str]:
    """The environment that pins a worker process to visible GPU ``gpu_index``: the physical
    id from the parent's ``CUDA_VISIBLE_DEVICES`` (``visible``; None = all GPUs visible),
    so inside the worker that GPU is ``cuda`` (``cuda:0``)."""
    if visible is None or visible.strip() == "":
        return {"CUDA_VISIBLE_DEVICES": str(gpu_index)}
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    if not 0 <= gpu_index < len(ids):
        raise ValueError(f"GPU {gpu_index} is not among CUDA_VISIBLE_DEVICES={visible!r}")
    return {"CUDA_VISIBLE_DEVICES": ids[gpu_index]}


def claim_gpu(slots, visible: str | None = None) -> int:
    """In a new worker process, before CUDA starts: take a GPU index from ``slots`` (a
    multiprocessing queue filled with :attr:`GpuPlan.slots`) and pin this process to it."""
    gpu_index = slots.get()
    os.environ.update(worker_environment(gpu_index, visible))
    return gpu_index


def dask_worker_resources(trials_per_gpu: int) -> dict[str, int]:
    """What a Dask worker process pinned to one GPU declares (``--resources``). With one
    trial slot per worker process, start N such processes per GPU:
    ``CUDA_VISIBLE_DEVICES=i dask worker SCHEDULER --nworkers N --nthreads 1
    --resources GPU_TRIALS=1``; or one process with N threads and ``GPU_TRIALS=N``."""
    if trials_per_gpu < 1:
        raise ValueError(f"trials per GPU must be at least 1, got {trials_per_gpu}")
    return {DASK_RESOURCE: trials_per_gpu}


def dask_trial_resources() -> dict[str, int]:
    """What each GPU trial asks of Dask (``client.submit(..., resources=...)``): one slot."""
    return {DASK_RESOURCE: 1}


# -- needs a GPU -----------------------------------------------------------------------------------

def visible_gpus() -> list[Gpu]:
    """The GPUs this process sees, with free memory now. Starts CUDA in the calling process
    (a context of a few hundred MiB per GPU stays until it exits)."""
    import torch

    gpus = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        gpus.append(Gpu(index, torch.cuda.get_device_name(index), free, total))
    return gpus


def measure_trial_bytes(data, base, scale, config, *, resolution_base: int | None = None) -> int:
    """Peak GPU memory of a short run of one trial (warm-up, capture and a few replays at
    the configured batch size and scoring batch), plus :data:`CONTEXT_BYTES`. Measure the
    search's largest candidate (highest c and resolution): the others need less. Call it
    before :func:`visible_gpus`, whose free memory then excludes this process's context."""
    import dataclasses

    import torch

    from ..training.steps import WARMUP_STEPS
    from ..training.trainer import train

    device = torch.device(config.device if config.device.startswith("cuda") else "cuda")
    short = dataclasses.replace(config, device=str(device), epochs=1,
                                train_size=min(len(data.train_images),
                                               config.batch_size * (WARMUP_STEPS + 3)))
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()  # the peak below then counts this run alone
    torch.cuda.reset_peak_memory_stats(device)
    result = train(data, base, scale, short, resolution_base=resolution_base)
    if result.status not in ("ok", "diverged"):
        raise RuntimeError(f"could not measure a trial's memory: {result.status} {result.message}")
    peak = torch.cuda.max_memory_reserved(device)
    torch.cuda.empty_cache()  # so visible_gpus() afterwards sees the memory free again
    return peak + CONTEXT_BYTES
