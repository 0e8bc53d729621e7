"""Running a search: check the settings, plan the trials, merge the plan with the store, train
the pending trials, and hand the finished trials to :func:`~.results.finish_search`.
With successive halving (:mod:`.halving`) the plan grows one rung at a time: each
rung is planned from the stored results of the rung below, merged, and trained.

``search()`` is the toolkit's main job and ``tinyformula fit`` its command. Running the same
search on the same folder again continues where it stopped; a folder holding a different
search is refused, never overwritten.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from ..core.errors import TinyFormulaError
from ..core.folders import check_folder, mark_folder, unmark_folder
from ..core.locks import RunLock
from ..core.paths import check_output_path
from ..cost.yardstick import Configuration, Yardstick
from ..data import cached_dataset
from ..execution.cluster import reach_scheduler
from ..execution.executors import make_executor
from ..execution.jobs import DataSource, TrialJob, TrialState
from ..execution.resources import cap_workers
from ..nets.bases import base_record
from ..training.config import TrainConfig
from .config import SearchConfig
from .estimate import training_seconds, wall_seconds
from .halving import plan_rung, small_rung_warning
from .results import SearchResult, finish_search
from .space import plan_candidates
from .stages import plan_second_stage
from .store import TrialStore
from .trials import PlannedTrial, Trial

# Trials run (again) when a search starts or resumes: not yet run, failed (a crash, a bad
# setting), or out of GPU memory even alone on a GPU (memory may be free next time).
RETRIED = (TrialState.PENDING, TrialState.FAILED, TrialState.OOM)


def search_candidates(config: SearchConfig, yardstick: Yardstick) -> list[Configuration]:
    """The search's candidates, in the sampler's order (a prefix-stable stream)."""
    return plan_candidates(yardstick, config.trials, sampler=config.sampler,
                           c_range=config.c_range, seed=config.seed, planner=config.planner)


def plan_trials(config: SearchConfig, yardstick: Yardstick) -> list[PlannedTrial]:
    """The trials of rung 0 (every trial of a full-schedule search), in execution order: each
    candidate with the search's seed (common random numbers), then the first few again with
    the next seed (noise replicates)."""
    return plan_rung(config.rungs(), 0, search_candidates(config, yardstick), [])


def expected_seconds(config: SearchConfig, trials: list[Trial]) -> list[float]:
    """Each trial's seconds on one idle core (:func:`.estimate.training_seconds`)."""
    return [training_seconds(t.config, t.images, config.val_size) for t in trials]


def trial_jobs(config: SearchConfig, yardstick: Yardstick, trials: list[Trial],
               device: str | None = None) -> list[TrialJob]:
    """What the executors train: one typed job per trial (on ``device``, default the
    config's)."""
    device = device or config.device
    # The prepared cache's checksum: every worker checks its copy against it.
    checksum = cached_dataset(config.data, config.data_dir).checksum or None
    data = DataSource(config.data, config.data_dir, config.val_size, checksum)
    record = base_record(config.base)
    return [TrialJob(id=t.id, base=config.base, base_record=record, scale=t.scale,
                     resolution_base=yardstick.resolution_base, data=data,
                     train=TrainConfig(train_size=t.images // config.epochs, epochs=config.epochs,
                                       batch_size=config.batch_size, seed=t.seed,
                                       device=device, cuda_graph=config.cuda_graph))
            for t in trials]


def plan_gpus(config: SearchConfig, yardstick: Yardstick, trials: list[Trial], dataset,
              log) -> tuple[tuple[int, ...], str]:
    """Where GPU trials run: ``(worker slots, device name for the jobs)``. Empty slots and
    the configured device when the search trains on the CPU, no GPU is visible, or a running
    Dask cluster's own workers decide (``--scheduler``).

    On CUDA, one worker process per slot, pinned to its GPU (so jobs say plain ``cuda``).
    How many share a GPU: ``--trials-per-gpu``, else the measured throughput ramp (when the
    search has enough trials to repay it), capped by what fits in the GPU's memory (the
    largest pending candidate's measured memory, its data counted) and by the host's cores
    and memory. ``cuda:N`` keeps the search on GPU N alone.
    """
    if config.device == "cpu" or config.scheduler is not None:
        return (), config.device
    import torch

    if not torch.cuda.is_available():
        return (), config.device
    from ..execution import slots
    from ..execution.gpu import host_worker_cap, plan_gpu_workers, trials_that_fit, visible_gpus
    from ..execution.gpu_memory import host_bytes_per_worker
    from ..execution.resources import available_memory, usable_cores

    largest = max(trials, key=lambda t: (t.config.resolution, t.config.c))
    job = trial_jobs(config, yardstick, [largest], device="cuda")[0]
    # Measured in processes of their own: this one keeps no CUDA context for the whole
    # search, and a failed capture cannot leave it unreliable.
    memory = _measure_memory(replace(job, train=job.train.replace(
        device=config.device if config.device.startswith("cuda") else "cuda")), log)
    log(f"GPU memory: {memory.describe()}")
    gpus = slots.run_apart(visible_gpus)
    if config.device.startswith("cuda:"):
        gpus = [g for g in gpus if g.index == int(config.device.split(":", 1)[1])]
    host = host_worker_cap(usable_cores(), available_memory(), host_bytes_per_worker(dataset))
    ramp = None
    cap = min(min(MAX_RAMP, trials_that_fit(gpus[0].free_bytes, memory.total)), *host)
    if config.trials_per_gpu is None and cap > 1:
        if len(trials) >= RAMP_MIN_TRIALS_PER_SLOT * cap:
            ramp = _measure_ramp(job, gpus[0].index, cap, log)
        else:
            log(f"throughput ramp not measured for {len(trials)} trial(s): up to {cap} at "
                f"once by memory")
    plan = plan_gpu_workers(gpus, memory.total, override=config.trials_per_gpu, ramp=ramp,
                            host_cap=host)
    for note in plan.notes:
        log(note)
    each = ", ".join(f"cuda:{index} {n}" for index, n in plan.per_gpu.items())
    log(f"{plan.workers} trials at once on {len(plan.per_gpu)} GPU(s) ({each})")
    return plan.slots, "cuda"


def _measure_memory(job: TrialJob, log):
    """The largest candidate's GPU memory (:func:`~tinyformula.execution.gpu_memory.
    measure_job_memory`), in a fresh process; eagerly (again in a fresh process) if its
    capture failed; a one-line error if it cannot be measured at all."""
    from ..execution import slots
    from ..execution.gpu_memory import measure_job_memory

    try:
        return slots.run_apart(measure_job_memory, job)
    except RuntimeError as error:
        if not job.train.cuda_graph:
            raise TinyFormulaError(f"could not measure a trial's GPU memory: {error}") from None
        log(f"measuring a trial's GPU memory with its step graphed failed ({error}); "
            f"measuring it eagerly")
        return _measure_memory(replace(job, train=job.train.replace(cuda_graph=False)), log)


# The throughput ramp: measured only when a search has at least this many trials per slot
# it could use (it costs a few short trials at each step), each ramp trial training this
# many steady-state steps after its warm-up and capture (long enough to overlap).
RAMP_MIN_TRIALS_PER_SLOT = 4
RAMP_STEADY_STEPS = 200
MAX_RAMP = 16


def _measure_ramp(job: TrialJob, gpu: int, cap: int, log) -> dict[int, float] | None:
    """Aggregate training images/s of 1, 2, 4, ... up to ``cap`` short copies of ``job`` at
    once on ``gpu`` (:func:`~tinyformula.execution.gpu.measure_ramp`), in worker processes
    of their own; None (with a note) if a ramp trial fails."""
    import math

    from ..execution.gpu import measure_ramp
    from ..execution.slots import GpuExecutor
    from ..training.steps import WARMUP_STEPS

    train = job.train
    images = train.batch_size * (WARMUP_STEPS + 1 + RAMP_STEADY_STEPS)
    size = min(images, train.train_size or images)
    short = replace(job, train=train.replace(train_size=size, epochs=math.ceil(images / size),
                                             bn_recalibrate=0, val_size=train.batch_size))
    try:
        with GpuExecutor((gpu,) * cap) as executor:
            ramp = measure_ramp(lambda n: executor.ramp_rate(short, n), cap)
    except RuntimeError as error:
        log(f"throughput ramp not measured ({error}); trials at once from memory alone")
        return None
    log("throughput ramp (training images/s, trials at once): " +
        ", ".join(f"{n}: {rate:,.0f}" for n, rate in ramp.items()))
    return ramp


def search(base: str | None = None, data: str | None = None, *, progress: bool = True,
           log=None, **settings) -> SearchResult:
    """Run (or resume) a search and return its result.

    ``base`` and ``data`` and every keyword in ``settings`` are :class:`SearchConfig` fields
    (``preset``, ``trials``, ``out``, ``executor``, ...; None keeps the default). See
    ``tinyformula fit --help``.
    """
    requested = SearchConfig.from_options(base=base, data=data, **settings)
    config = requested.resolved()
    spawns, advice = spawns_workers(config)
    if spawns:
        check_main_guard(advice)
    log = log or (lambda message: print(message, file=sys.stderr))
    # Everything that can be wrong with the input is checked before the folder is touched.
    out = check_output_path("--out", config.out)
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"--out {out} is a file; give a folder for the run")
    # Only a new or empty folder, or one holding this toolkit's search, takes a search; a
    # foreign one (another program's files, a final training) is refused before any write.
    check_folder(out, RUN_KIND, RUN_MADE_BY, legacy=holds_search)
    if config.scheduler:
        reach_scheduler(config.scheduler)
    images = len(cached_dataset(config.data, config.data_dir).train_images)
    config = requested.resolved(train_images=images)
    config = _check_folder(out, config, requested)
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    if not yardstick.meter.exact:  # a predicted cost (latency) may time blocks while planning
        log(f"Planning {config.trials} candidates by {yardstick.describe_cost()}, predicted "
            f"from this machine's latency table: the blocks it lacks are timed now (progress "
            f"bars below) and kept for every later search and prediction on this machine.")
    candidates = search_candidates(config, yardstick)
    if config.schedule == "halving":
        warning = small_rung_warning(config.rung_train_sizes[0], config.epochs,
                                     config.batch_size)
        if warning:
            log(warning)
    fresh = not (out / "trials.sqlite").exists()
    marked = check_folder(out, RUN_KIND, RUN_MADE_BY, legacy=holds_search)
    mark_folder(out, RUN_KIND, RUN_MADE_BY)
    with RunLock(out) as lock:
        store, run = None, None
        try:
            store = TrialStore.open(out / "trials.sqlite")
            with contextlib.ExitStack() as stack:
                run = _PlanRunner(config, yardstick, store, dataset, stack, log, progress)
                by_rung: dict[int, list[PlannedTrial]] = {}
                rungs = config.rungs(dataset.num_classes)
                for rung in range(config.top_rung + 1):
                    while True:  # the top rung may be topped up once it has finished
                        # A rung's plan depends only on the stored results of the rung below
                        # (and, for a top-up, of its own).
                        by_rung[rung] = plan_rung(rungs, rung, candidates, store.trials())
                        if not run([p for k in sorted(by_rung) for p in by_rung[k]],
                                   lambda trials, pending: _plan_message(config, rung, trials,
                                                                         pending)):
                            break
                # The second stage: sampled around the first stage's formula (or read back).
                # A stage that cannot be planned is skipped, never the search's end: the
                # default preset has one, and a search always ends with a formula when its
                # first stage has one (the same first stage skips it again on resume).
                try:
                    stage = plan_second_stage(config, yardstick, candidates, run.trials,
                                              store.trials())
                except TinyFormulaError as error:
                    log(f"warning: no second stage: {error}. The formula is fitted on the "
                        f"first stage's trials.")
                    stage = []
                if stage:
                    run([p for k in sorted(by_rung) for p in by_rung[k]] + stage,
                        lambda trials, pending: f"second stage: {len(stage)} candidates "
                        f"sampled around the formula's band, {len(stage) - len(pending)} "
                        f"already done")
                trials = run.trials
        finally:
            if store is not None:
                store.close()
            if fresh and not (run and run.written):
                lock.release(remove=True)
                _remove_store(out, unmark=not marked)
        return finish_search(out, config, yardstick, trials, log)


class _PlanRunner:
    """Merges a plan with the store, writes it, and trains what is pending (starting the
    executor on first need); ``trials`` holds every planned trial after the last call."""

    def __init__(self, config, yardstick, store, dataset, stack, log, progress):
        self.config, self.yardstick, self.store = config, yardstick, store
        self.dataset, self.stack, self.log, self.progress = dataset, stack, log, progress
        self.executor, self.device = None, config.device
        self.trials: list[Trial] = []
        self.written = False   # whether a plan reached the store
        self.tried: set[int] = set()   # trials this call has already trained once

    def __call__(self, planned: list[PlannedTrial], message) -> bool:
        """Run ``planned``; True when anything was pending (and is now trained)."""
        config, store = self.config, self.store
        trials = store.merge_plan(config, planned)
        # Failed trials (a bad setting, a crash, out of memory) are tried again, once per
        # call: a trial that fails again waits for the next run of the search (a plan run
        # again, as the top rung's top-up does, would otherwise retry it forever). Diverged
        # ones are results.
        pending = [t for t in trials if t.state in RETRIED and t.id not in self.tried]
        self.tried.update(t.id for t in pending)
        if pending and self.executor is None:
            self.executor, self.device = start_executor(config, self.yardstick, pending,
                                                         self.dataset, self.stack, self.log)
        store.write_plan(config, self.yardstick, trials)
        self.written = True
        if pending:
            self.log(message(trials, pending))
            estimates = dict(zip((t.id for t in pending), expected_seconds(config, pending)))
            trials = _train_pending(store, self.executor, trials,
                                    trial_jobs(config, self.yardstick, pending, self.device),
                                    self.progress, estimates, self.log)
        self.trials = trials
        return bool(pending)


def start_executor(config: SearchConfig, yardstick: Yardstick, pending: list[Trial], dataset,
                    stack: contextlib.ExitStack, log):
    """The executor for the pending trials, entered on ``stack``, and the device its jobs name:
    GPU slots when training on CUDA, else worker processes capped by jobs, cores and memory."""
    slots, device = plan_gpus(config, yardstick, pending, dataset, log)
    workers = config.workers
    if config.scheduler is None and not slots:
        workers, note = cap_workers(config.workers, len(pending))
        if note:
            log(note)
    executor = stack.enter_context(make_executor(config.executor, workers, config.scheduler,
                                                 slots, device=device, log=log))
    # A running Dask cluster's workers decide where its trials train (GPU_TRIALS declared).
    return executor, getattr(executor, "job_device", None) or device


def _plan_message(config: SearchConfig, rung: int, trials: list[Trial],
                  pending: list[Trial]) -> str:
    at = [t for t in trials if t.rung == rung]
    replicates = sum(t.seed != config.seed for t in at)
    where = (f", rung {rung} of {config.top_rung} (eta {config.eta:g})"
             if config.schedule == "halving" else "")
    seconds = wall_seconds(expected_seconds(config, pending), config.workers)
    busy = _busy_factor()
    here = (f"; this machine is busy (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
            f"cores), so more like {duration(seconds * busy)}" if busy > 1.2 else "")
    return (f"{config.preset} preset{where}: {len(at)} trials ({replicates} of them "
            f"replicates), {config.rung_train_sizes[rung]:,} images x {config.epochs} epoch(s) "
            f"each; {len(at) - len(pending)} already done. Expected about {duration(seconds)} "
            f"on an idle 2-core CPU (much less on a GPU){here}; the progress bar's estimate "
            f"is measured on the trials as they finish.")


def duration(seconds: float) -> str:
    """Seconds in words a person reads at a glance: ``42 s``, ``3 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _busy_factor() -> float:
    """How much slower than idle this CPU is likely to run now: the 1-minute load average
    per core, counting the search's own workers as not yet started (at least 1)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return 1.0
    return max(1.0, (load + 2) / max(2, os.cpu_count() or 1))


def _check_folder(out: Path, config: SearchConfig, requested: SearchConfig) -> SearchConfig:
    """``config``, continuing the search the run folder already holds (see
    ``SearchConfig.continuing``), or a one-line refusal when it holds another search. Reads
    only: a refused folder is left byte for byte as it was."""
    path = out / "trials.sqlite"
    if not path.is_file():
        return config
    store = TrialStore.open(path, create=False)
    try:
        config = config.continuing(store.config(), requested)
        store.check_same_search(config)
        store.yardstick(), store.trials()  # every stored value checked before any write
    finally:
        store.close()
    return config


def spawns_workers(config: SearchConfig) -> tuple[bool, str]:
    """Whether the search will start worker processes on this machine (which import the main
    script again), and the advice for a script that does not guard its top level: local
    processes (``workers`` > 1), GPU workers (one per slot, whatever ``workers`` says) or a
    local Dask cluster; a running Dask cluster (``scheduler``) starts none here."""
    if config.scheduler is not None:
        return False, ""
    if config.device != "cpu":
        import torch

        if torch.cuda.is_available():
            return True, ("(GPU trials always run in worker processes; only device='cpu' "
                          "with workers=1 trains in this one)")
    if config.executor == "dask":
        return True, "(or use the local executor with workers=1)"
    if (config.workers or os.cpu_count() or 1) > 1:
        return True, "(or pass workers=1)"
    return False, ""


def check_main_guard(advice: str = "(or pass workers=1)") -> None:
    """Refuse a multi-process search started from a script's unguarded top level.

    Worker processes are spawned, and a spawned process imports the main script again: a
    ``search()`` at its top level would run again in every worker, which Python stops with a
    RuntimeError and the pool reports as a BrokenProcessPool. Finds the main script's line that
    led here and checks that it sits under ``if __name__ == "__main__":``.
    """
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") in ("__main__",
                                                                             "__mp_main__")):
        frame = frame.f_back
    path = frame and frame.f_globals.get("__file__")
    if not path or not os.path.isfile(path):
        return  # an interactive session, python -c or a notebook: nothing re-imports it
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return
    line = frame.f_lineno
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and node.lineno <= line <= (node.end_lineno or line)
                and any(isinstance(n, ast.Name) and n.id == "__name__"
                        for n in ast.walk(node.test))):
            return
    raise TinyFormulaError(
        f"search() is called at the top level of {path} (line {line}); its trials run in "
        f"worker processes that import that script again, and each would start the search "
        f"anew. Put the call under 'if __name__ == \"__main__\":' {advice}".rstrip())


def _remove_store(out: Path, unmark: bool) -> None:
    """Undo a store this call created but never used (bad input found late: no half-files),
    and the folder's marker if this call made it."""
    for suffix in ("", "-wal", "-shm"):
        (out / f"trials.sqlite{suffix}").unlink(missing_ok=True)
    if unmark:
        unmark_folder(out)  # and the folder, if nothing else is in it


RUN_KIND = "search"
RUN_MADE_BY = "tinyformula fit"


def holds_search(folder: Path) -> bool:
    """Whether an unmarked folder (written before folders were marked) holds a search: a
    trials store this toolkit wrote (another program's SQLite file is refused here)."""
    path = folder / "trials.sqlite"
    if not path.is_file():
        return False
    TrialStore.open(path, create=False).close()
    return True


def _train_pending(store: TrialStore, executor, trials: list[Trial], jobs: list[TrialJob],
                   progress: bool, estimates: dict[int, float] | None = None,
                   log=None) -> list[Trial]:
    """Train the jobs, storing each result as it arrives; return every trial, updated.

    The bar's time left is the idle-CPU estimate of the trials still to run (``estimates``,
    seconds per trial id, from their FLOPs) scaled by how the finished ones compared with
    theirs: calibrated as trials finish, and weighted by size, where a count of trials is not
    (one large candidate can take ten small ones' time). Trials that did not finish (out of
    memory, a failed capture) are counted and ``log`` says so at the end."""
    import time

    from tqdm import tqdm

    by_id = {t.id: t for t in trials}
    done = len(trials) - len(jobs)
    unfinished: dict[str, int] = {}
    best = max((t.top1 for t in trials if t.top1 is not None), default=None)
    estimates = estimates or {}
    left_work = sum(estimates.get(job.id, 0.0) for job in jobs)
    done_work, started = 0.0, time.monotonic()
    bar = tqdm(total=len(trials), initial=done, unit="trial", disable=not progress,
               file=sys.stderr, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    try:
        for result in executor.train(jobs):
            finished_at = store.record(result)
            trial = by_id[result.id] = by_id[result.id].finish(result, finished_at)
            if result.state is TrialState.OK:
                best = max(best or 0.0, result.top1)
                outcome = f"top-1 {result.top1:.1%} ({result.seconds:.0f} s)"
            else:
                outcome = f"{result.state}: {result.message}"
                if result.state in RETRIED:
                    unfinished[str(result.state)] = unfinished.get(str(result.state), 0) + 1
            work = estimates.get(result.id, 0.0)
            done_work, left_work = done_work + work, max(0.0, left_work - work)
            bar.update(1)
            notes = [f"best top-1 {best:.1%}"] if best is not None else []
            if done_work > 0 and left_work > 0:
                pace = (time.monotonic() - started) / done_work
                notes.append(f"about {duration(pace * left_work)} left")
            bar.set_postfix_str(", ".join(notes))
            bar.write(f"trial {result.id + 1}/{len(trials)}  rung={trial.rung}  "
                      f"{trial.config.scale} seed={trial.seed}  {outcome}", file=sys.stderr)
    finally:
        bar.close()
    if unfinished:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(unfinished.items()))
        (log or print)(f"{sum(unfinished.values())} trial(s) did not finish ({counts}): left "
                       f"out of this fit; running the same search again retries them")
    return [by_id[t.id] for t in trials]
