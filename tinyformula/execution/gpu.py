"""Several trials on one GPU: how many, on which device, and how a Dask cluster runs them.

A small candidate's trial uses a fraction of a modern GPU even with its step in a CUDA graph,
so a search runs N trials at once per GPU, each in its own worker process
(:class:`~.slots.GpuExecutor`). N is the smallest number that reaches (within ``tolerance``)
the best aggregate throughput of a short measured ramp (1, 2, 4, ... trials at once), capped
by how many trials fit in the GPU's free memory (:mod:`.gpu_memory`), and over all GPUs by
the host: one CPU core and :func:`~.gpu_memory.host_bytes_per_worker` of memory per worker
process. A user override replaces the ramp; it is still capped by host memory, and noted
where it exceeds what GPU memory allows.

Every worker process is pinned to one GPU before CUDA starts in it: ``CUDA_VISIBLE_DEVICES``
set to that GPU's id *in the parent's list* (:func:`worker_environment`: with the parent at
``CUDA_VISIBLE_DEVICES=4,6``, the workers of visible GPU 1 get ``6``), so its trials run on
``cuda`` and a trial's score does not depend on which GPU or worker ran it.

Everything here but :func:`visible_gpus` is plain arithmetic, testable without a GPU. Dask
workers declare the resource :data:`DASK_RESOURCE`, one unit per worker process, each running
one thread (:func:`dask_gpu_plan` checks a running cluster's workers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import TinyFormulaError

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


def measure_ramp(aggregate: Callable[[int], float], cap: int,
                 tolerance: float = RAMP_TOLERANCE) -> dict[int, float]:
    """``{n: aggregate(n)}`` for n = 1, 2, 4, ... up to ``cap``, stopping once a step gains
    less than ``tolerance`` over the previous one. ``aggregate(n)`` runs ``n`` short trials
    at once on one GPU and returns their total training images per second (the executor
    owns the worker processes: :meth:`~.slots.GpuExecutor.ramp_rate`)."""
    ramp: dict[int, float] = {}
    previous = None
    for n in ramp_steps(cap):
        ramp[n] = aggregate(n)
        if previous is not None and ramp[n] < (1 + tolerance) * previous:
            break
        previous = ramp[n]
    return ramp


def host_worker_cap(cores: int, memory: int | None, worker_bytes: int) -> tuple[int, int]:
    """How many GPU worker processes the host allows: (by cores, by memory). One core per
    worker (it launches its trial's kernels and prepares its batches) and ``worker_bytes`` of
    ``memory`` (available bytes; None = unknown: no memory cap) each; at least one."""
    by_memory = (max(1, memory // worker_bytes) if memory is not None and worker_bytes > 0
                 else 1 << 30)
    return max(1, cores), by_memory


def plan_gpu_workers(gpus: list[Gpu], trial_bytes: int, *, override: int | None = None,
                     ramp: dict[int, float] | None = None,
                     max_per_gpu: int = MAX_TRIALS_PER_GPU,
                     host_cap: tuple[int, int] | None = None) -> GpuPlan:
    """Trials at once per GPU and each worker's GPU.

    Per GPU: ``override`` when given (a note if it exceeds what memory allows); else the
    ramp's choice capped by memory; with no ramp, as many as fit in memory (at most
    ``max_per_gpu``). The ramp is measured on one GPU and applied to every GPU of the same
    free memory or more; a GPU with room for none still gets one trial and a note. Then the
    host (``host_cap`` = (by cores, by memory), from :func:`host_worker_cap`) caps the total
    number of workers, shared out evenly over the GPUs (never below one per GPU): the cores
    cap applies to a chosen N, the memory cap to an override too.
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
    if host_cap is not None:
        by_cores, by_memory = host_cap
        limits = [(by_memory, f"host memory allows {by_memory} worker process(es)")]
        if override is None:
            limits.insert(0, (by_cores, f"{by_cores} usable core(s), one per worker"))
        for limit, why in limits:
            if sum(per_gpu.values()) > limit:
                per_gpu = share_out(per_gpu, limit)
                notes.append(f"{sum(per_gpu.values())} trials at once in all: {why}")
    slots = tuple(gpu.index for k in range(max(per_gpu.values()))
                  for gpu in gpus if k < per_gpu[gpu.index])
    return GpuPlan(per_gpu=per_gpu, slots=slots, notes=tuple(notes))


def share_out(per_gpu: dict[int, int], total: int) -> dict[int, int]:
    """``per_gpu`` cut down to ``total`` workers in all (at least one per GPU), taking from the
    GPUs with the most first, so the GPUs end as even as they can."""
    shared = dict(per_gpu)
    while sum(shared.values()) > max(total, len(shared)):
        most = max(shared, key=lambda index: (shared[index], index))
        shared[most] -= 1
    return shared


def aggregate_rate(windows: list[tuple[float, float, int]]) -> float:
    """Training images per second of trials run at once, from each one's steady-state
    window ``(start, seconds, images)`` (wall-clock start): all their images over the span
    from the first start to the last end. Windows that did not overlap count as run one
    after another, so the figure never overstates what running them together gained."""
    windows = [w for w in windows if w[1] > 0]
    if not windows:
        return 0.0
    span = max(start + seconds for start, seconds, _ in windows) - min(w[0] for w in windows)
    return sum(images for _, _, images in windows) / span if span > 0 else 0.0


def worker_environment(gpu_index: int, visible: str | None = None) -> dict[str, str]:
    """The environment that pins a worker process to visible GPU ``gpu_index``: the id at
    that position of the parent's ``CUDA_VISIBLE_DEVICES`` (``visible``; None or empty =
    all GPUs visible, ids are indices), so inside the worker that GPU is ``cuda``
    (``cuda:0``)."""
    if visible is None or visible.strip() == "":
        return {"CUDA_VISIBLE_DEVICES": str(gpu_index)}
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    if not 0 <= gpu_index < len(ids):
        raise ValueError(f"GPU {gpu_index} is not among CUDA_VISIBLE_DEVICES={visible!r}")
    return {"CUDA_VISIBLE_DEVICES": ids[gpu_index]}


# -- Dask --------------------------------------------------------------------------------------

def dask_worker_resources() -> dict[str, int]:
    """What a Dask worker process pinned to one GPU declares (``--resources``): one trial
    slot, with one thread. For N trials at once on GPU i, start N such processes:
    ``CUDA_VISIBLE_DEVICES=i dask worker SCHEDULER --nworkers N --nthreads 1
    --resources GPU_TRIALS=1``. (One process with N threads would run N captures in one
    process, and its threads would race on the capture stream and the seeded RNG.)"""
    return {DASK_RESOURCE: 1}


def dask_trial_resources() -> dict[str, int]:
    """What each GPU trial asks of Dask (``client.submit(..., resources=...)``): one slot."""
    return {DASK_RESOURCE: 1}


def pinned_dask_workers(slots: tuple[int, ...], visible: str | None) -> dict[str, dict]:
    """A local Dask cluster's GPU workers: one per slot, by name, with the environment that
    pins it (:func:`worker_environment`), one thread and one ``GPU_TRIALS`` slot."""
    counts: dict[int, int] = {}
    workers = {}
    for gpu_index in slots:
        k = counts[gpu_index] = counts.get(gpu_index, -1) + 1
        workers[f"gpu{gpu_index}-{k}"] = {"env": worker_environment(gpu_index, visible),
                                          "nthreads": 1, "resources": dask_worker_resources()}
    return workers


SETUP_HINT = ("start each GPU worker with one thread and one slot: CUDA_VISIBLE_DEVICES=i "
              "dask worker SCHEDULER --nworkers N --nthreads 1 --resources GPU_TRIALS=1")


def dask_gpu_plan(device: str, workers: dict[str, dict]) -> tuple[dict[str, int] | None, str]:
    """What a search's trials ask of a running Dask cluster, and the device its jobs name:
    ``(resources per trial, job device)``, from ``workers`` (the scheduler's worker info:
    ``nthreads``, ``resources``, and ``cuda``: whether the worker sees a GPU, when probed).

    ``cpu``: nothing asked, jobs on the CPU. ``cuda``: every trial asks for one
    ``GPU_TRIALS`` slot, so only GPU workers run them; refused when no worker declares the
    resource (the trials would wait forever) or a GPU worker runs more than one thread or
    declares more than one slot. ``auto``: as ``cuda`` when any worker declares the resource;
    else on the CPU, refused when a worker sees a GPU it has not declared (it would train
    unpinned and uncounted). ``cuda:N`` names a GPU of this machine: refused.
    """
    if device == "cpu":
        return None, "cpu"
    if device.startswith("cuda:"):
        raise TinyFormulaError(f"--device {device} names a GPU of this machine; on a Dask "
                               f"cluster use --device cuda (each GPU worker is pinned to its "
                               f"GPU)")
    gpu = {name: info for name, info in workers.items()
           if (info.get("resources") or {}).get(DASK_RESOURCE)}
    if not gpu:
        if device == "cuda":
            raise TinyFormulaError(f"no worker of the Dask cluster declares {DASK_RESOURCE}, "
                                   f"so GPU trials would wait forever; {SETUP_HINT}")
        unpinned = sorted(name for name, info in workers.items() if info.get("cuda"))
        if unpinned:
            raise TinyFormulaError(f"Dask worker {unpinned[0]} sees a GPU but declares no "
                                   f"{DASK_RESOURCE}; {SETUP_HINT} (or pass --device cpu)")
        return None, "cpu"
    for name, info in sorted(gpu.items()):
        slots, threads = info["resources"][DASK_RESOURCE], info.get("nthreads", 1)
        if threads != 1 or slots != 1:
            raise TinyFormulaError(f"Dask worker {name} runs {threads} thread(s) with "
                                   f"{DASK_RESOURCE}={slots:g}: one GPU trial per process "
                                   f"(one capture at a time, nothing else on CUDA meanwhile); "
                                   f"{SETUP_HINT}")
    return dask_trial_resources(), "cuda"


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
