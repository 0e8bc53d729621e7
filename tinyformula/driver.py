"""Running a search: check the settings, plan the trials, merge the plan with the store, train
the pending trials, and hand the finished trials to :func:`~tinyformula.results.finish_search`.

``search()`` is the toolkit's main job and ``tinyformula fit`` its command. Running the same
search on the same folder again continues where it stopped; a folder holding a different
search is refused, never overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import TinyFormulaError
from .results import SearchResult, finish_search
from .runlock import RunLock
from .search_config import SearchConfig
from .space import plan_candidates
from .store import TrialStore
from .trial import DataSource, Trial, TrialJob, TrialState
from .validate import cap_workers, check_output_path, reach_scheduler
from .yardstick import Configuration, Yardstick

# Effective throughput of a 2-core CPU on small candidates, in forward-FLOPs per second (fitted
# on a smoke run's trial times); used only to print an expected duration.
CPU_TRAIN_FLOPS_PER_S = 2.5e10
TRIAL_OVERHEAD_S = 0.5


def plan_trials(config: SearchConfig,
                yardstick: Yardstick) -> list[tuple[int, int, Configuration]]:
    """Every trial of the search as (candidate, seed, configuration), in execution order: each
    candidate with the search's seed (common random numbers), then the first few again with
    the next seed (noise replicates)."""
    candidates = plan_candidates(yardstick, config.trials, sampler=config.sampler,
                                 c_range=config.c_range, seed=config.seed)
    plan = [(index, config.seed, candidate) for index, candidate in enumerate(candidates)]
    plan += [(index, config.seed + 1, candidate)
             for index, candidate in enumerate(candidates[:config.replicates])]
    return plan


def expected_seconds(config: SearchConfig, trials: list[Trial]) -> float:
    """A rough CPU estimate from FLOPs: training costs ~3x a forward pass per image, plus
    BatchNorm recalibration (2,048 images) and scoring."""
    images = config.train_size * config.epochs
    work = sum(t.config.flops * (3 * images + config.val_size + 2048) for t in trials)
    return work / CPU_TRAIN_FLOPS_PER_S + TRIAL_OVERHEAD_S * len(trials)


def trial_jobs(config: SearchConfig, yardstick: Yardstick, trials: list[Trial],
               device: str | None = None) -> list[TrialJob]:
    """What the executors train: one typed job per trial (on ``device``, default the
    config's)."""
    from .train import TrainConfig

    device = device or config.device
    data = DataSource(config.data, config.data_dir, config.val_size)
    return [TrialJob(id=t.id, base=config.base, scale=t.scale,
                     resolution_base=yardstick.resolution_base, data=data,
                     train=TrainConfig(train_size=config.train_size, epochs=config.epochs,
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

    from .gpu import measure_trial_bytes, plan_gpu_workers, visible_gpus

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
    from .executors import cached_dataset, make_executor

    config = SearchConfig.from_options(base=base, data=data, **settings).resolved()
    log = log or (lambda message: print(message, file=sys.stderr))
    # Everything that can be wrong with the input is checked before the folder is touched.
    out = check_output_path("--out", config.out)
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"--out {out} is a file; give a folder for the run")
    if config.scheduler:
        reach_scheduler(config.scheduler)
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    if config.train_size > len(dataset.train_images):
        raise TinyFormulaError(f"--train-size {config.train_size} is more than the "
                               f"{len(dataset.train_images)} training images of {config.data}")
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    planned = plan_trials(config, yardstick)
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
            trials = store.merge_plan(config, planned)
            # Failed trials (a bad setting, a crash) are tried again; diverged ones are results.
            pending = [t for t in trials if t.state in (TrialState.PENDING, TrialState.FAILED)]
            if not pending:
                store.write_plan(config, yardstick, trials)
                planned_written = True
            else:
                slots, device = plan_gpus(config, yardstick, pending, dataset, log)
                workers = config.workers
                if config.scheduler is None and not slots:
                    workers, note = cap_workers(config.workers, len(pending))
                    if note:
                        log(note)
                with make_executor(config.executor, workers, config.scheduler,
                                   slots) as executor:
                    store.write_plan(config, yardstick, trials)
                    planned_written = True
                    minutes = expected_seconds(config, pending) / 60
                    log(f"{config.preset} preset: {len(trials)} trials ({config.replicates} of "
                        f"them replicates), {config.train_size:,} images x {config.epochs} "
                        f"epoch(s) each; {len(trials) - len(pending)} already done. Expected "
                        f"about {minutes:.0f} min on a 2-core CPU (much less on a GPU).")
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
            bar.write(f"trial {result.id + 1}/{len(trials)}  r={trial.config.r:.3f} "
                      f"d={trial.config.d:.3f} w={trial.config.w:.3f} seed={trial.seed}  "
                      f"{outcome}", file=sys.stderr)
    finally:
        bar.close()
    return [by_id[t.id] for t in trials]
