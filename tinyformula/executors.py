"""Where trials run: in this process, in local worker processes, or on a Dask cluster.

Every executor runs the same function, :func:`run_trial`, on typed jobs
(:class:`~tinyformula.trial.TrialJob`) and yields :class:`~tinyformula.trial.TrialResult` as
they finish; only the search driver writes the store. Each worker process loads the dataset
itself, once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace

from .errors import TinyFormulaError
from .trial import TrialJob, TrialResult, TrialState


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str, data_dir: str | None, validation: int | None = None):
    """The dataset, loaded once per process (workers are reused for many trials); with
    ``validation``, scored on that many images carved out of its training split."""
    if validation:
        from .data.core import carve_validation

        return carve_validation(cached_dataset(name, data_dir), validation)
    from .data import load_dataset

    return load_dataset(name, data_dir)


def run_trial(job: TrialJob, threads: int | None = None) -> TrialResult:
    """Train one planned trial and return its result; never raises for a failed trial."""
    try:
        from .train import train

        data = cached_dataset(job.data.name, job.data.data_dir, job.data.validation)
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


def _init_worker(threads: int, driver_pid: int) -> None:
    """Worker set-up: die with the driver (even a ``kill -9``'d one), one torch thread; Ctrl-C
    is the driver's to handle (it stops workers)."""
    import signal

    from .signals import die_with_parent

    die_with_parent(driver_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)


def _init_gpu_worker(slots, threads: int, driver_pid: int) -> None:
    """GPU worker set-up: claim a GPU (before CUDA starts in this process), then as above."""
    from .gpu import claim_gpu

    claim_gpu(slots)
    _init_worker(threads, driver_pid)


class LocalExecutor:
    """Trials in this process (``workers=1``) or in a pool of ``workers`` processes; with
    ``gpu_slots`` (a :class:`~tinyformula.gpu.GpuPlan`'s slots), one worker per slot, each
    pinned to its GPU, several per GPU (small candidates leave most of a card idle).

    Every trial trains with one torch thread, whatever the layout: on 2 cores two
    single-thread processes train 1.25-1.34x faster than one two-thread process
    (experiments/bench_cores.py), and a trial's score then does not depend on how many
    workers ran it, so a search resumed with another --workers (or on Dask) is the same search.
    """

    threads = 1

    def __init__(self, workers: int | None = None, gpu_slots: tuple[int, ...] | None = None):
        self.gpu_slots = tuple(gpu_slots or ())
        self.workers = len(self.gpu_slots) or workers or os.cpu_count() or 1
        self._pool = None

    def __enter__(self):
        if self.workers > 1 or self.gpu_slots:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            if self.gpu_slots:
                slots = context.Queue()
                for slot in self.gpu_slots:
                    slots.put(slot)
                initializer, initargs = _init_gpu_worker, (slots, self.threads, os.getpid())
            else:
                initializer, initargs = _init_worker, (self.threads, os.getpid())
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=initializer, initargs=initargs)
        return self

    def __exit__(self, kind, value, traceback):
        if self._pool is not None:
            if kind is not None:
                # Interrupted or failed: stop the trials in flight now; finished ones are stored.
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()
            self._pool.shutdown(wait=kind is None, cancel_futures=True)
        return False

    def train(self, jobs: Iterable[TrialJob]) -> Iterator[TrialResult]:
        """Train ``jobs``, yielding each result as it finishes (in any order)."""
        if self._pool is None:
            for job in jobs:
                yield run_trial(job, self.threads)
            return
        from concurrent.futures import as_completed

        futures = [self._pool.submit(run_trial, job, self.threads) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


class DaskExecutor:
    """Trials on Dask distributed: a ``LocalCluster`` of ``workers`` single-threaded processes,
    or the running cluster at ``scheduler`` (``tcp://host:port``)."""

    def __init__(self, workers: int, scheduler: str | None = None, gpu: bool = False):
        self.workers = workers
        self.scheduler = scheduler
        # On a cluster, GPU trials ask for one GPU_TRIALS slot each (see tinyformula.gpu).
        self.resources = None
        if gpu and scheduler:
            from .gpu import dask_trial_resources

            self.resources = dask_trial_resources()
        self._client = self._cluster = None

    def __enter__(self):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise TinyFormulaError("the dask executor needs Dask distributed: "
                                   "pip install 'tinyformula[dask]'") from None
        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as error:
                raise TinyFormulaError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                       f"({type(error).__name__}); is it running?") from None
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        return self

    def __exit__(self, *exc):
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def train(self, jobs: Iterable[TrialJob]) -> Iterator[TrialResult]:
        """Train ``jobs`` on the cluster, yielding each result as it finishes."""
        from dask.distributed import as_completed

        futures = [self._client.submit(run_trial, job, 1, pure=False, resources=self.resources)
                   for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def make_executor(kind: str, workers: int | None, scheduler: str | None,
                  gpu_slots: tuple[int, ...] | None = None, gpu: bool = False):
    """The executor a (checked) search config names; ``gpu_slots`` from a local GPU plan;
    ``gpu``: on a Dask cluster, trials ask for a GPU trial slot."""
    if kind == "dask":
        return DaskExecutor(workers or os.cpu_count() or 1, scheduler, gpu=gpu)
    return LocalExecutor(workers, gpu_slots=gpu_slots)
