"""What runs inside a worker: one trial trained and reported, the set-up of a worker process
(die with the driver, one torch thread, pinned to its GPU before CUDA starts), and a GPU
slot's worker loop (:func:`serve`)."""

from __future__ import annotations

import os
from dataclasses import replace

from .jobs import TrialJob, TrialResult, TrialState


def run_trial(job: TrialJob, threads: int | None = None) -> TrialResult:
    """Train one planned trial and return its result; never raises for a failed trial."""
    try:
        from ..data import cached_dataset
        from ..nets.bases import restore_base
        from ..training.trainer import train

        if job.base_record is not None:   # a spec or traced base, registered in this process
            restore_base(job.base_record, f"trial {job.id}", trusted=True)
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
                       message=result.message, graphed=result.graphed,
                       steady_images=result.steady_images,
                       steady_seconds=result.steady_seconds, steady_start=result.steady_start)


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


def init_gpu_worker(gpu_index: int, visible: str | None, threads: int, driver_pid: int,
                    pids=None) -> None:
    """GPU worker set-up: pin this process to the parent's visible GPU ``gpu_index``
    (``visible``: the parent's ``CUDA_VISIBLE_DEVICES``; see
    :func:`~.gpu.worker_environment`) before CUDA starts in it, then as :func:`init_worker`."""
    from .gpu import worker_environment

    os.environ.update(worker_environment(gpu_index, visible))
    init_worker(threads, driver_pid, pids)


def serve(connection, gpu_index: int, visible: str | None, threads: int,
          driver_pid: int) -> None:
    """A GPU slot's worker process: set up (:func:`init_gpu_worker`), then run each
    ``(function, args)`` received on ``connection`` and send back ``("ok", value)`` or
    ``("error", message)``, until ``None`` arrives or the driver goes away."""
    init_gpu_worker(gpu_index, visible, threads, driver_pid)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        function, args = task
        try:
            reply = ("ok", function(*args))
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}".splitlines()[0][:500])
        connection.send(reply)


def describe_worker() -> dict:
    """This worker process: its id, the GPUs it sees (``CUDA_VISIBLE_DEVICES``) and its torch
    threads (for tests and diagnostics; does not start CUDA)."""
    import torch

    return {"pid": os.getpid(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "threads": torch.get_num_threads()}


def sees_cuda() -> bool:
    """Whether this (Dask worker) process sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())
