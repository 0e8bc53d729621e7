"""Where trials run: in this process, in local worker processes, on local GPUs
(:class:`~.slots.GpuExecutor`), or on a Dask cluster.

Every executor runs the same function, :func:`~.worker.run_trial`, on typed jobs
(:class:`~.jobs.TrialJob`) and yields :class:`~.jobs.TrialResult` as they finish; whoever
called it (the search driver) keeps the results. Each worker process loads the dataset
itself, once. Executors know nothing of searches.

On GPUs every worker process runs one trial at a time, pinned to one GPU, and a trial whose
CUDA graph capture failed is trained again eagerly in a fresh process (the one whose capture
failed runs nothing more); see :mod:`.slots` for the local executor and
:class:`DaskExecutor` for a cluster.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from ..core.errors import TinyFormulaError
from .jobs import TrialJob, TrialResult, TrialState
from .slots import GpuExecutor
from .worker import init_worker, run_trial


class LocalExecutor:
    """Trials in this process (``workers=1``) or in a pool of ``workers`` processes, on the
    CPU (GPU trials run in a :class:`~.slots.GpuExecutor`, one pinned process per slot).

    Every trial trains with one torch thread, whatever the layout: on 2 cores two
    single-thread processes train 1.25-1.34x faster than one two-thread process
    (experiments/bench_cores.py), and a trial's score then does not depend on how many
    workers ran it, so a search resumed with another --workers (or on Dask) is the same search.
    """

    threads = 1

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool = None
        self._pids = None   # each worker process reports its id here, to be stopped on demand

    def __enter__(self):
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            self._pids = context.SimpleQueue()
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=init_worker,
                                             initargs=(self.threads, os.getpid(), self._pids))
        return self

    def __exit__(self, kind, value, traceback):
        if self._pool is not None:
            if kind is not None:
                # Interrupted or failed: stop the trials in flight now; finished ones are stored.
                self._stop_workers()
            self._pool.shutdown(wait=kind is None, cancel_futures=True)
        return False

    def _stop_workers(self) -> None:
        """SIGTERM every worker process this pool started (they reported their ids)."""
        while self._pids is not None and not self._pids.empty():
            try:
                os.kill(self._pids.get(), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass

    def train(self, jobs: Iterable[TrialJob]) -> Iterator[TrialResult]:
        """Train ``jobs``, yielding each result as it finishes (in any order)."""
        if self._pool is None:
            for job in jobs:
                yield _no_rerun(run_trial(job, self.threads))
            return
        from concurrent.futures import as_completed

        futures = [self._pool.submit(run_trial, job, self.threads) for job in jobs]
        for future in as_completed(futures):
            yield _no_rerun(future.result())


def _no_rerun(result: TrialResult) -> TrialResult:
    """A failed capture where no fresh process can rerun the trial (a CUDA trial run outside
    a GPU executor): a failure, retried when the search resumes."""
    if result.state is TrialState.CAPTURE_FAILED:
        return TrialResult(result.id, TrialState.FAILED, message=result.message)
    return result


class DaskExecutor:
    """Trials on Dask distributed: a ``LocalCluster`` of ``workers`` single-threaded processes,
    or the running cluster at ``scheduler`` (``tcp://host:port``).

    GPU trials: with ``gpu_slots`` (a local :class:`~.gpu.GpuPlan`'s slots) the local
    cluster has one single-threaded worker per slot, each pinned to its GPU through the
    parent's ``CUDA_VISIBLE_DEVICES`` (``visible``) and declaring one ``GPU_TRIALS`` slot. On
    a running cluster, ``device`` decides (:func:`~.gpu.dask_gpu_plan`, after asking the
    workers): CUDA trials (``cuda``, or ``auto`` where workers declare ``GPU_TRIALS``) ask for
    one slot each, and the cluster's GPU workers must run one thread each. After entering,
    :attr:`job_device` is the device the jobs must name. A GPU trial whose capture failed is
    trained again eagerly once its worker process has been restarted (or, when the worker
    cannot be restarted, retired from the cluster); one out of memory is tried once more
    after its worker's restart, then reported (``oom``: retried when the search resumes).
    """

    def __init__(self, workers: int, scheduler: str | None = None, *,
                 gpu_slots: tuple[int, ...] = (), device: str = "auto",
                 visible: str | None = None, log=None, trial=run_trial):
        self.workers = len(gpu_slots) or workers
        self.scheduler = scheduler
        self.gpu_slots = tuple(gpu_slots)
        self.device = device
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
        self.log = log or (lambda message: None)
        self.trial = trial   # what a worker runs on each job (tests pass a fake)
        self.resources: dict[str, int] | None = None
        self.job_device: str | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._jobs: dict = {}   # a future's key -> its job

    def __enter__(self):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise TinyFormulaError("the dask executor needs Dask distributed: "
                                   "pip install 'tinyformula[dask]'") from None
        from .gpu import dask_gpu_plan, dask_trial_resources

        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as error:
                raise TinyFormulaError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                       f"({type(error).__name__}); is it running?") from None
            try:
                self.resources, self.job_device = dask_gpu_plan(self.device,
                                                                self._worker_info())
            except TinyFormulaError:
                self._client.close()
                raise
        elif self.gpu_slots:
            self._cluster = _pinned_cluster(self.gpu_slots, self.visible)
            self._client = Client(self._cluster)
            self.resources, self.job_device = dask_trial_resources(), "cuda"
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        return self

    def _worker_info(self) -> dict[str, dict]:
        """The cluster's workers: threads, declared resources, and (for ``auto`` with no
        declared GPU slots) whether each sees a GPU."""
        from .gpu import DASK_RESOURCE
        from .worker import sees_cuda

        workers = {info.get("name") or address: dict(info, address=address)
                   for address, info in self._client.scheduler_info()["workers"].items()}
        if self.device == "auto" and not any((w.get("resources") or {}).get(DASK_RESOURCE)
                                             for w in workers.values()):
            seen = self._client.run(sees_cuda)
            for info in workers.values():
                info["cuda"] = bool(seen.get(info["address"]))
        return workers

    def __exit__(self, *exc):
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def train(self, jobs: Iterable[TrialJob]) -> Iterator[TrialResult]:
        """Train ``jobs`` on the cluster, yielding each result as it finishes; a trial whose
        capture failed is trained again eagerly (after its worker process is replaced)."""
        from dask.distributed import as_completed

        futures = as_completed([self._submit(job) for job in jobs], with_results=False)
        notes: dict[int, str] = {}
        for future in futures:
            result = future.result()
            job = self._jobs.pop(future.key)
            if result.state is TrialState.CAPTURE_FAILED:
                where = self._replace_worker(future)
                notes[job.id] = (f"{result.message.split('; train it again')[0]}; trained "
                                 f"again eagerly after {where}")
                self.log(f"trial {job.id + 1}: {notes[job.id]}")
                futures.add(self._submit(replace(job, train=job.train.replace(
                    cuda_graph=False))))
                continue
            if result.state is TrialState.OOM:
                # Its process may be unreliable (out of memory inside a capture): replace it,
                # and try the trial once more, wherever memory is free now.
                where = self._replace_worker(future)
                if job.id not in notes:
                    notes[job.id] = f"out of GPU memory; tried again after {where}"
                    self.log(f"trial {job.id + 1}: {notes[job.id]}")
                    futures.add(self._submit(job))
                    continue
            if result.id in notes:
                result = replace(result, message="; ".join(
                    part for part in (notes.pop(result.id), result.message) if part))
            yield _no_rerun(result)

    def _submit(self, job: TrialJob):
        future = self._client.submit(self.trial, job, 1, pure=False, resources=self.resources)
        self._jobs[future.key] = job
        return future

    def _replace_worker(self, future) -> str:
        """End the worker process that ran ``future`` (restarted by its nanny, or retired);
        says what happened."""
        holders = self._client.who_has([future]).get(future.key) or ()
        if not holders:
            return "its worker had gone"
        try:
            self._client.restart_workers(list(holders))
            return "restarting its worker process"
        except Exception:  # no nanny to restart it: take it out of the cluster
            self._client.retire_workers(list(holders), close_workers=True)
            return "retiring its worker from the cluster"


def _pinned_cluster(slots: tuple[int, ...], visible: str | None):
    """A local Dask cluster with one worker per GPU slot, each pinned to its GPU, one thread
    and one ``GPU_TRIALS`` slot (:func:`~.gpu.pinned_dask_workers`)."""
    from dask.distributed import Nanny, Scheduler, SpecCluster

    from .gpu import pinned_dask_workers

    specs = {name: {"cls": Nanny, "options": options}
             for name, options in pinned_dask_workers(slots, visible).items()}
    return SpecCluster(workers=specs, scheduler={"cls": Scheduler,
                                                 "options": {"dashboard_address": None}},
                       silence_logs=40)


def make_executor(kind: str, workers: int | None, scheduler: str | None,
                  gpu_slots: tuple[int, ...] | None = None, device: str = "auto", log=None):
    """The executor a (checked) search config names: on ``gpu_slots`` (a local GPU plan's
    slots) a :class:`~.slots.GpuExecutor` (``local``) or a pinned local Dask cluster
    (``dask``); else the CPU's. ``device``: what the trials train on (a Dask cluster's GPU
    workers are asked for a slot per CUDA trial)."""
    if kind == "dask":
        return DaskExecutor(workers or os.cpu_count() or 1, scheduler,
                            gpu_slots=tuple(gpu_slots or ()), device=device, log=log)
    if gpu_slots:
        return GpuExecutor(tuple(gpu_slots), log=log)
    return LocalExecutor(workers)
