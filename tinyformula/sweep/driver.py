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
from pathlib import Path

from ..core.errors import TinyFormulaError
from ..core.locks import RunLock
from ..core.paths import check_output_path
from ..cost.yardstick import Configuration, Yardstick
from ..data import cached_dataset
from ..execution.cluster import reach_scheduler
from ..execution.executors import make_executor
from ..execution.jobs import DataSource, TrialJob, TrialState
from ..execution.resources import cap_workers
from ..training.config import TrainConfig
from .config import SearchConfig
from .halving import plan_rung
from .results import SearchResult, finish_search
from .space import plan_candidates
from .store import TrialStore
from .trials import PlannedTrial, Trial

# Effective throughput of a 2-core CPU on small candidates, in forward-FLOPs per second (fitted
# on a smoke run's trial times); used only to print an expected duration.
CPU_TRAIN_FLOPS_PER_S = 2.5e10
TRIAL_OVERHEAD_S = 0.5


def search_candidates(config: SearchConfig, yardstick: Yardstick) -> list[Configuration]:
    """The search's candidates, in the sampler's order (a prefix-stable stream)."""
    return plan_candidates(yardstick, config.trials, sampler=config.sampler,
                           c_range=config.c_range, seed=config.seed, planner=config.planner)


def plan_trials(config: SearchConfig, yardstick: Yardstick) -> list[PlannedTrial]:
    """The trials of rung 0 (every trial of a full-schedule search), in execution order: each
    candidate with the search's seed (common random numbers), then the first few again with
    the next seed (noise replicates)."""
    return plan_rung(config.rungs(), 0, search_candidates(config, yardstick), [])


def expected_seconds(config: SearchConfig, trials: list[Trial]) -> float:
    """A rough CPU estimate from FLOPs: training costs ~3x a forward pass per image, plus
    BatchNorm recalibration (2,048 images) and scoring."""
    work = sum(t.config.flops * (3 * t.images + config.val_size + 2048) for t in trials)
    return work / CPU_TRAIN_FLOPS_PER_S + TRIAL_OVERHEAD_S * len(trials)


def trial_jobs(config: SearchConfig, yardstick: Yardstick, trials: list[Trial],
               device: str | None = None) -> list[TrialJob]:
    """What the executors train: one typed job per trial (on ``device``, default the
    config's)."""
    device = device or config.device
    data = DataSource(config.data, config.data_dir, config.val_size)
    return [TrialJob(id=t.id, base=config.base, scale=t.scale,
                     resolution_base=yardstick.resolution_base, data=data,
                     train=TrainConfig(train_size=t.images // config.epochs, epochs=config.epochs,
                                       batch_size=config.batch_size, seed=t.seed,
                                       device=device, cuda_graph=config.cuda_graph))
            for t in trials]


def plan_gpus(config: SearchConfig, yardstick: Yardstick, trials: list[Trial], dataset,
              log) -> tuple[tuple[int, ...], str]:
    """Where GPU trials run: ``(worker slots, device name for the jobs)``. Empty slots and
    the configured device when the search trains on the CPU (or no GPU is visible).

    On CUDA, one worker process per slot, pinned to its GPU (so jobs say plain ``cuda``);
    how many share a GPU follows the measured memory of the largest pending candidate, or
    ``--trials-per-gpu``. ``cuda:N`` keeps the search on GPU N alone.
    """
    if config.device == "cpu" or config.executor != "local":
        return (), config.device
    import torch

    if not torch.cuda.is_available():
        return (), config.device
    from dataclasses import replace

    from ..execution.gpu import measure_trial_bytes, plan_gpu_workers, visible_gpus

    largest = max(trials, key=lambda t: (t.config.resolution, t.config.c))
    job = trial_jobs(config, yardstick, [largest], device="cuda")[0]
    trial_bytes = measure_trial_bytes(dataset, job.base, job.scale,
                                      replace(job.train, device=config.device if
                                              config.device.startswith("cuda") else "cuda"),
                                      resolution_base=job.resolution_base)
    gpus = visible_gpus()
    if config.device.startswith("cuda:"):
        gpus = [g for g in gpus if g.index == int(config.device.split(":", 1)[1])]
    plan = plan_gpu_workers(gpus, trial_bytes, override=config.trials_per_gpu)
    for note in plan.notes:
        log(note)
    log(f"{plan.workers} trials at once on {len(plan.per_gpu)} GPU(s) "
        f"({trial_bytes / 2**30:.2f} GiB measured per trial)")
    return plan.slots, "cuda"


def search(base: str | None = None, data: str | None = None, *, progress: bool = True,
           log=None, **settings) -> SearchResult:
    """Run (or resume) a search and return its result.

    ``base`` and ``data`` and every keyword in ``settings`` are :class:`SearchConfig` fields
    (``preset``, ``trials``, ``out``, ``executor``, ...; None keeps the default). See
    ``tinyformula fit --help``.
    """
    requested = SearchConfig.from_options(base=base, data=data, **settings)
    config = requested.resolved()
    if config.scheduler is None and (config.workers or os.cpu_count() or 1) > 1:
        check_main_guard()
    log = log or (lambda message: print(message, file=sys.stderr))
    # Everything that can be wrong with the input is checked before the folder is touched.
    out = check_output_path("--out", config.out)
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"--out {out} is a file; give a folder for the run")
    if config.scheduler:
        reach_scheduler(config.scheduler)
    images = len(cached_dataset(config.data, config.data_dir).train_images)
    config = requested.resolved(train_images=images)
    config = _check_folder(out, config, requested)
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    candidates = search_candidates(config, yardstick)
    fresh = not (out / "trials.sqlite").exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {out}: {error.strerror}") from None
    with RunLock(out) as lock:
        store = None
        planned_written = False
        try:
            store = TrialStore.open(out / "trials.sqlite")
            with contextlib.ExitStack() as stack:
                executor, device, planned = None, config.device, []
                for rung in range(config.top_rung + 1):
                    # A rung's plan depends only on the stored results of the rung below.
                    planned += plan_rung(config.rungs(), rung, candidates, store.trials())
                    trials = store.merge_plan(config, planned)
                    # Failed trials (a bad setting, a crash) are tried again; diverged ones
                    # are results.
                    pending = [t for t in trials
                               if t.state in (TrialState.PENDING, TrialState.FAILED)]
                    if pending and executor is None:
                        executor, device = start_executor(config, yardstick, pending,
                                                           dataset, stack, log)
                    store.write_plan(config, yardstick, trials)
                    planned_written = True
                    if pending:
                        log(_plan_message(config, rung, trials, pending))
                        trials = _train_pending(store, executor, trials,
                                                trial_jobs(config, yardstick, pending, device),
                                                progress)
        finally:
            if store is not None:
                store.close()
            if fresh and not planned_written:
                lock.release(remove=True)
                _remove_store(out)
        return finish_search(out, config, yardstick, trials)


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
    executor = stack.enter_context(make_executor(
        config.executor, workers, config.scheduler, slots,
        gpu=config.device.startswith("cuda")))  # a cluster's GPU workers declare GPU_TRIALS
    return executor, device


def _plan_message(config: SearchConfig, rung: int, trials: list[Trial],
                  pending: list[Trial]) -> str:
    at = [t for t in trials if t.rung == rung]
    replicates = sum(t.seed != config.seed for t in at)
    where = (f", rung {rung} of {config.top_rung} (eta {config.eta:g})"
             if config.schedule == "halving" else "")
    seconds = expected_seconds(config, pending)
    expected = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{max(seconds, 1):.0f} s"
    return (f"{config.preset} preset{where}: {len(at)} trials ({replicates} of them "
            f"replicates), {config.rung_train_sizes[rung]:,} images x {config.epochs} epoch(s) "
            f"each; {len(at) - len(pending)} already done. Expected about {expected} on an "
            f"idle 2-core CPU (much less on a GPU).")


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
    finally:
        store.close()
    return config


def check_main_guard() -> None:
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
        f"anew. Put the call under 'if __name__ == \"__main__\":' (or pass workers=1)")


def _remove_store(out: Path) -> None:
    """Undo a store this call created but never used (bad input found late: no half-files)."""
    for suffix in ("", "-wal", "-shm"):
        (out / f"trials.sqlite{suffix}").unlink(missing_ok=True)
    try:
        out.rmdir()  # only if empty
    except OSError:
        pass


def _train_pending(store: TrialStore, executor, trials: list[Trial], jobs: list[TrialJob],
                   progress: bool) -> list[Trial]:
    """Train the jobs, storing each result as it arrives; return every trial, updated."""
    from tqdm import tqdm

    by_id = {t.id: t for t in trials}
    done = len(trials) - len(jobs)
    best = max((t.top1 for t in trials if t.top1 is not None), default=None)
    bar = tqdm(total=len(trials), initial=done, unit="trial", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    try:
        for result in executor.train(jobs):
            finished_at = store.record(result)
            trial = by_id[result.id] = by_id[result.id].finish(result, finished_at)
            if result.state is TrialState.OK:
                best = max(best or 0.0, result.top1)
                outcome = f"top-1 {result.top1:.1%} ({result.seconds:.0f} s)"
            else:
                outcome = f"{result.state}: {result.message}"
            bar.update(1)
            if best is not None:
                bar.set_postfix_str(f"best top-1 {best:.1%}")
            bar.write(f"trial {result.id + 1}/{len(trials)}  rung={trial.rung}  "
                      f"r={trial.config.r:.3f} "
                      f"d={trial.config.d:.3f} w={trial.config.w:.3f} seed={trial.seed}  "
                      f"{outcome}", file=sys.stderr)
    finally:
        bar.close()
    return [by_id[t.id] for t in trials]
