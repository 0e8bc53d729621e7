"""Running a search: check the settings, plan the trials, merge the plan with the store, train
the pending trials, and hand the finished trials to :func:`~tinyformula.results.finish_search`.

``search()`` is the toolkit's main job and ``tinyformula fit`` its command. Running the same
search on the same folder again continues where it stopped; a folder holding a different
search is refused, never overwritten.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from .errors import TinyFormulaError
from .results import SearchResult, finish_search
from .search_config import SearchConfig
from .space import plan_candidates
from .store import TrialStore
from .trial import DataSource, Trial, TrialJob, TrialState
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


def trial_jobs(config: SearchConfig, yardstick: Yardstick, trials: list[Trial]) -> list[TrialJob]:
    """What the executors train: one typed job per trial."""
    from .train import TrainConfig

    data = DataSource(config.data, config.data_dir, config.val_size)
    return [TrialJob(id=t.id, base=config.base, scale=t.scale,
                     resolution_base=yardstick.resolution_base, data=data,
                     train=TrainConfig(train_size=config.train_size, epochs=config.epochs,
                                       batch_size=config.batch_size, seed=t.seed,
                                       device=config.device))
            for t in trials]


def search(base: str | None = None, data: str | None = None, *, progress: bool = True,
           log=None, **settings) -> SearchResult:
    """Run (or resume) a search and return its result.

    ``base`` and ``data`` and every keyword in ``settings`` are :class:`SearchConfig` fields
    (``preset``, ``trials``, ``out``, ``executor``, ...; None keeps the default). See
    ``tinyformula fit --help``.
    """
    from .executors import cached_dataset, make_executor

    requested = SearchConfig.from_options(base=base, data=data, **settings)
    config = requested.resolved()
    if config.scheduler is None and (config.workers or os.cpu_count() or 1) > 1:
        check_main_guard()
    log = log or (lambda message: print(message, file=sys.stderr))
    # Everything that can be wrong with the input is checked before the folder is touched.
    images = len(cached_dataset(config.data, config.data_dir).train_images)
    config = requested.resolved(train_images=images)
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    yardstick = Yardstick(config.base, dataset.num_classes, dataset.resolution_base)
    planned = plan_trials(config, yardstick)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"--out {out} is a file; give a folder for the run")
    fresh = not (out / "trials.sqlite").exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {out}: {error.strerror}") from None
    store = TrialStore.open(out / "trials.sqlite")
    planned_written = False
    try:
        trials = store.merge_plan(config, planned)
        pending = [t for t in trials if t.state is TrialState.PENDING]
        if not pending:
            store.write_plan(config, yardstick, trials)
            planned_written = True
        else:
            with make_executor(config.executor, config.workers, config.scheduler) as executor:
                store.write_plan(config, yardstick, trials)
                planned_written = True
                seconds = expected_seconds(config, pending)
                expected = (f"{seconds / 60:.0f} min" if seconds >= 90 else
                            f"{max(seconds, 1):.0f} s")
                log(f"{config.preset} preset: {len(trials)} trials ({config.replicates} of them "
                    f"replicates), {config.train_size:,} images x {config.epochs} epoch(s) each; "
                    f"{len(trials) - len(pending)} already done. Expected about {expected} "
                    f"on an idle 2-core CPU (much less on a GPU).")
                trials = _train_pending(store, executor, trials,
                                        trial_jobs(config, yardstick, pending), progress)
    finally:
        store.close()
        if fresh and not planned_written:
            _remove_store(out)
    return finish_search(out, config, yardstick, trials)


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
            bar.write(f"trial {result.id + 1}/{len(trials)}  r={trial.config.r:.3f} "
                      f"d={trial.config.d:.3f} w={trial.config.w:.3f} seed={trial.seed}  "
                      f"{outcome}", file=sys.stderr)
    finally:
        bar.close()
    return [by_id[t.id] for t in trials]
