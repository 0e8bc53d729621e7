"""Where trials run: in this process, in local worker processes, or on a Dask cluster.

Every executor runs the same function, :func:`~.worker.run_trial`, on typed jobs
(:class:`~.jobs.TrialJob`) and yields :class:`~.jobs.TrialResult` as they finish; whoever
called it (the search driver) keeps the results. Each worker process loads the dataset
itself, once. Executors know nothing of searches.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.errors import TinyFormulaError
from .jobs import TrialJob, TrialResult
from .worker import init_gpu_worker, init_worker, run_trial


class LocalExecutor:
    """Trials in this process (``workers=1``) or in a pool of ``workers`` processes; with
    ``gpu_slots`` (a :class:`~.gpu.GpuPlan`'s slots), one worker per slot, each
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
        self._pids = None   # each worker process reports its id here, to be stopped on demand

    def __enter__(self):
        if self.workers > 1 or self.gpu_slots:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            self._pids = context.SimpleQueue()
            if self.gpu_slots:
                slots = context.Queue()
                for slot in self.gpu_slots:
                    slots.put(slot)
                initializer = init_gpu_worker
                initargs: tuple = (slots, self.threads, os.getpid(), self._pids)
            else:
                initializer, initargs = init_worker, (self.threads, os.getpid(), self._pids)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=initializer, initargs=initargs)
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
        # On a cluster, GPU trials ask for one GPU_TRIALS slot each (see :mod:`.gpu`).
        self.resources = None
        if gpu and scheduler:
            from .gpu import dask_trial_resources

            self.resources = dask_trial_resources()
        self._client: Any = None
        self._cluster: Any = None

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
