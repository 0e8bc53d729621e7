"""Trials on GPUs: one worker process per trial slot, each pinned to its GPU, and what happens
when a trial's CUDA graph capture fails or its GPU runs out of memory.

A :class:`~.gpu.GpuPlan`'s slots name, per worker, the GPU it runs on (several per GPU). Each
slot is one long-lived process (:func:`~.worker.serve`), pinned before CUDA starts in it, that
trains one trial at a time; the driver sends it jobs over a pipe. Owning each process (rather
than a pool's) lets the executor end exactly the one that must not go on:

* **capture failed** (:data:`~.jobs.TrialState.CAPTURE_FAILED`): that process's CUDA state is
  unreliable. Its process is replaced by a fresh one on the same GPU and the trial is trained
  again there, eagerly (``cuda_graph=False``); its result says so.
* **out of memory** with other trials running on the same GPU: the slot is retired (that GPU
  runs one trial fewer from then on, and the log says so) and the trial goes back in the
  queue. Out of memory *alone* on its GPU is the trial's result (``oom``: retried when the
  search resumes), and the process is replaced.
* **the process died** (a crash, a kill): replaced; the trial is tried once more, then
  reported as failed (retried when the search resumes).

:class:`SlotBoard` holds these decisions as plain bookkeeping, testable without processes.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from .gpu import worker_environment
from .jobs import TrialJob, TrialResult, TrialState
from .worker import init_worker, run_trial, serve

DIED_RETRIES = 1   # a trial whose worker process died is tried this many more times


@dataclass(frozen=True)
class Action:
    """What to do after a slot reports: ``result`` to hand on (None: not finished yet);
    ``requeue`` a job to train again; ``restart`` the slot's process (a fresh one, same
    GPU); ``retire`` the slot (its GPU runs one trial fewer); ``note`` for the log and for the
    trial's eventual message."""

    result: TrialResult | None = None
    requeue: TrialJob | None = None
    restart: bool = False
    retire: bool = False
    note: str = ""


class SlotBoard:
    """Which slots are in service on which GPU, and what a slot's report means.

    ``slots[k]`` is slot k's GPU (an index in the parent's numbering)."""

    def __init__(self, slots: tuple[int, ...]):
        self.gpu = dict(enumerate(slots))
        self.active = set(self.gpu)
        self.died: dict[int, int] = {}   # job id -> times its worker died under it

    def on_gpu(self, gpu: int) -> int:
        """Slots in service on ``gpu``."""
        return sum(self.gpu[slot] == gpu for slot in self.active)

    def decide(self, slot: int, job: TrialJob, result: TrialResult | None) -> Action:
        """The action for ``slot``'s report on ``job``: its ``result``, or None when the
        worker process died."""
        gpu = self.gpu[slot]
        if result is None:
            self.died[job.id] = self.died.get(job.id, 0) + 1
            if self.died[job.id] <= DIED_RETRIES:
                return Action(requeue=job, restart=True,
                              note=f"the worker process on cuda:{gpu} died; trial tried again")
            return Action(restart=True, result=TrialResult(
                job.id, TrialState.FAILED,
                message=f"the worker process on cuda:{gpu} died under this trial twice"))
        if result.state is TrialState.CAPTURE_FAILED:
            if job.train.cuda_graph:
                eager = replace(job, train=job.train.replace(cuda_graph=False))
                return Action(requeue=eager, restart=True,
                              note=f"{result.message.split('; train it again')[0]}; trained "
                                   f"again eagerly in a fresh worker process")
            return Action(restart=True, result=replace(result, state=TrialState.FAILED))
        if result.state is TrialState.OOM:
            running = self.on_gpu(gpu)
            if running > 1:
                self.active.discard(slot)
                return Action(requeue=job, retire=True,
                              note=f"out of GPU memory with {running} trials at once on "
                                   f"cuda:{gpu}; cuda:{gpu} now runs {running - 1}, and this "
                                   f"trial was tried again")
            return Action(restart=True, result=replace(
                result, message=f"{result.message} (alone on cuda:{gpu}; retried when the "
                                f"search resumes)"))
        return Action(result=result)


class _Slot:
    """One slot's worker process and the pipe to it."""

    def __init__(self, context, gpu: int, visible: str | None, threads: int):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, daemon=True, name=f"tinyformula-gpu{gpu}",
                                       args=(child, gpu, visible, threads, os.getpid()))
        self.process.start()
        child.close()

    def send(self, function: Callable, *args) -> None:
        self.connection.send((function, args))

    def receive(self):
        """The reply to the last :meth:`send`; None if the process died."""
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            return None

    def stop(self, now: bool = False) -> None:
        """End the process: asked to finish (or, ``now``, terminated), killed if it lingers."""
        if not now:
            try:
                self.connection.send(None)
            except (OSError, ValueError):
                now = True
        if now and self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.process.join(timeout=2 if now else 30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.connection.close()


class GpuExecutor:
    """Trials on GPUs, one worker process per slot (``slots``: each worker's GPU, from a
    :class:`~.gpu.GpuPlan`), pinned through the parent's ``CUDA_VISIBLE_DEVICES``
    (``visible``: default this process's at construction). See the module doc for failed
    captures, out-of-memory trials and dead workers; ``log`` receives a line for each.

    ``trial`` is the function a worker runs on each job (default
    :func:`~.worker.run_trial`; a module-level function for tests and benchmarks).
    """

    threads = 1

    def __init__(self, slots: tuple[int, ...], *, visible: str | None = None, log=None,
                 trial: Callable[..., TrialResult] = run_trial):
        if not slots:
            raise ValueError("a GPU executor needs at least one slot")
        self.slots = tuple(slots)
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
        for gpu in set(self.slots):  # a GPU not among the visible ones: refused here, not in
            worker_environment(gpu, self.visible)  # every worker
        self.log = log or (lambda message: None)
        self.trial = trial
        self.workers = len(self.slots)
        self.board = SlotBoard(self.slots)
        self._slots: dict[int, _Slot] = {}
        self._context = None

    def __enter__(self):
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")
        for slot in self.board.active:  # all at once: they start (import torch) in parallel
            self._start(slot)
        return self

    def __exit__(self, kind, value, traceback):
        # Interrupted or failed: stop the trials in flight now; finished ones are stored.
        for worker in self._slots.values():
            worker.stop(now=kind is not None)
        self._slots.clear()
        return False

    def _start(self, slot: int) -> None:
        self._slots[slot] = _Slot(self._context, self.board.gpu[slot], self.visible,
                                  self.threads)

    def _end(self, slot: int, restart: bool) -> None:
        self._slots.pop(slot).stop(now=True)
        if restart:
            self._start(slot)

    def train(self, jobs: Iterable[TrialJob]) -> Iterator[TrialResult]:
        """Train ``jobs``, yielding each result as it finishes (in any order); a trial
        retried or trained again eagerly is yielded once, with what happened in its
        message."""
        from multiprocessing.connection import wait

        queue = deque(jobs)
        notes: dict[int, list[str]] = {}
        busy: dict[int, TrialJob] = {}
        while queue or busy:
            for slot in sorted(self.board.active - set(busy)):
                if not queue:
                    break
                busy[slot] = job = queue.popleft()
                self._slots[slot].send(self.trial, job, self.threads)
            ready = wait([self._slots[slot].connection for slot in busy])
            for slot in [s for s in busy if self._slots[s].connection in ready]:
                job = busy.pop(slot)
                reply = self._slots[slot].receive()
                result = _result(job, reply)
                action = self.board.decide(slot, job, result)
                if action.note:
                    notes.setdefault(job.id, []).append(action.note)
                    self.log(f"trial {job.id + 1}: {action.note}")
                if action.restart or action.retire:
                    self._end(slot, restart=action.restart)
                if action.requeue is not None:
                    queue.appendleft(action.requeue)
                if action.result is not None:
                    said = notes.pop(job.id, [])
                    message = "; ".join(said + [action.result.message] if action.result.message
                                        else said)
                    yield replace(action.result, message=message)

    def run_together(self, function: Callable, args: list[tuple]) -> list:
        """``function(*a)`` for each ``a`` in ``args``, each on its own slot, all at once
        (at most one per slot in service); the values in order. A worker's error raises."""
        active = sorted(self.board.active)
        if len(args) > len(active):
            raise ValueError(f"{len(args)} calls at once, {len(active)} slots")
        for slot, arguments in zip(active, args):
            self._slots[slot].send(function, *arguments)
        values = []
        for slot in active[:len(args)]:
            reply = self._slots[slot].receive()
            if reply is None or reply[0] != "ok":
                raise RuntimeError(f"worker on cuda:{self.board.gpu[slot]} failed: "
                                   f"{reply[1] if reply else 'its process died'}")
            values.append(reply[1])
        return values

    def ramp_rate(self, job: TrialJob, n: int) -> float:
        """Aggregate steady-state training images/s of ``n`` copies of ``job`` trained at once
        (on the first ``n`` slots): :func:`~.gpu.aggregate_rate` of their windows."""
        from .gpu import aggregate_rate

        results = self.run_together(self.trial, [(job, self.threads)] * n)
        bad = [r for r in results if r.state is not TrialState.OK or not r.steady_seconds]
        if bad:
            raise RuntimeError(f"a ramp trial ended {bad[0].state}: {bad[0].message}")
        return aggregate_rate([(r.steady_start, r.steady_seconds, r.steady_images)
                               for r in results])


def _result(job: TrialJob, reply) -> TrialResult | None:
    """A worker's reply as a result (None: its process died)."""
    if reply is None:
        return None
    kind, value = reply
    if kind == "ok":
        return value
    return TrialResult(job.id, TrialState.FAILED, message=value)


def run_apart(function: Callable, *args):
    """``function(*args)`` in a fresh process that ends when it returns (its error raises
    here): CUDA work this process must neither risk nor keep a context for, such as
    measuring a trial's memory or reading the GPUs' free memory."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=init_worker,
                             initargs=(1, os.getpid())) as pool:
        return pool.submit(function, *args).result()
