"""What runs inside a worker: one trial trained and reported, and the set-up of a worker
process (die with the driver, one torch thread, its GPU claimed before CUDA starts)."""

from __future__ import annotations

import os
from dataclasses import replace

from .jobs import TrialJob, TrialResult, TrialState


def run_trial(job: TrialJob, threads: int | None = None) -> TrialResult:
    """Train one planned trial and return its result; never raises for a failed trial."""
    try:
        from ..data import cached_dataset
        from ..training.trainer import train

        data = cached_dataset(job.data.name, job.data.data_dir, job.data.validation,
                              job.data.checksum)
        config = job.train if threads is None else replace(job.train, threads=threads)
        result = train(data, job.base, job.scale, config, resolution_base=job.resolution_base)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a trial's failure is data, not a crash of the search
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return TrialResult(job.id, TrialState.FAILED, message=message)
    return TrialResult(job.id, TrialState(result.status), top1=result.top1, loss=result.loss,
                       seconds=result.seconds, images_per_s=result.images_per_s,
                       message=result.message)


def init_worker(threads: int, driver_pid: int, pids=None) -> None:
    """Worker set-up: die with the driver (even a ``kill -9``'d one), one torch thread, tell
    the driver this process's id (``pids``, a queue: so it can stop it); Ctrl-C is the
    driver's to handle (it stops workers)."""
    import signal

    from ..core.signals import die_with_parent

    die_with_parent(driver_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if pids is not None:
        pids.put(os.getpid())
    import torch

    torch.set_num_threads(threads)


def init_gpu_worker(slots, threads: int, driver_pid: int, pids=None) -> None:
    """GPU worker set-up: claim a GPU (before CUDA starts in this process), then as above."""
    from .gpu import claim_gpu

    claim_gpu(slots)
    init_worker(threads, driver_pid, pids)
