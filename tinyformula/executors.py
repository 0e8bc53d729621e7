"""Where trials run: in this process, in local worker processes, or on a Dask cluster.

Every executor runs the same function, :func:`run_trial`, on plain-dict jobs and yields
plain-dict results as they finish; only the search driver writes the store. Each worker
process loads the dataset itself, once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator

from .errors import TinyFormulaError

EXECUTORS = ("local", "dask")


@functools.lru_cache(maxsize=2)
def cached_dataset(name: str, data_dir: str | None):
    """The dataset, loaded once per process (workers are reused for many trials)."""
    from .data import load_dataset

    return load_dataset(name, data_dir)


def run_trial(job: dict) -> dict:
    """Train one planned trial and return its result; never raises for a failed trial."""
    try:
        from .scale import Scale
        from .train import TrainConfig, train

        data = cached_dataset(job["data"], job["data_dir"])
        config = TrainConfig(**job["train"], seed=job["seed"], device=job["device"],
                             threads=job.get("threads"))
        result = train(data, job["base"], Scale(job["r"], job["d"], job["w"]), config,
                       resolution_base=job["resolution_base"]).to_dict()
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a trial's failure is data, not a crash of the search
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        result = {"status": "failed", "message": message}
    return {**result, "id": job["id"]}


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class LocalExecutor:
    """Trials in this process (``workers=1``) or in a pool of ``workers`` processes, each
    with ``cores // workers`` torch threads."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self._pool = None

    def __enter__(self):
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_set_threads, initargs=(self.threads,))
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return False

    def run(self, jobs: Iterable[dict]) -> Iterator[dict]:
        jobs = [dict(job, threads=self.threads) for job in jobs]
        if self._pool is None:
            for job in jobs:
                yield run_trial(job)
            return
        from concurrent.futures import as_completed

        futures = [self._pool.submit(run_trial, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


class DaskExecutor:
    """Trials on Dask distributed: a ``LocalCluster`` of ``workers`` single-threaded processes,
    or the running cluster at ``scheduler`` (``tcp://host:port``)."""

    def __init__(self, workers: int = 2, scheduler: str | None = None):
        self.workers = workers
        self.scheduler = scheduler
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

    def run(self, jobs: Iterable[dict]) -> Iterator[dict]:
        from dask.distributed import as_completed

        futures = [self._client.submit(run_trial, dict(job, threads=1), pure=False)
                   for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def make_executor(kind: str, workers: int | None, scheduler: str | None):
    if kind not in EXECUTORS:
        raise TinyFormulaError(f"unknown executor {kind!r}; known: {', '.join(EXECUTORS)}")
    if kind == "dask":
        return DaskExecutor(workers or 2, scheduler)
    if scheduler:
        raise TinyFormulaError("--scheduler needs --executor dask")
    return LocalExecutor(workers or 1)
