"""``validate()``: check a search's formula (or any formulas) on a longer schedule, with seeds
the search never used, against the fixed formulas and the search's own best networks, scored
on the split the search never scored on.

Everything that can be wrong with the input is checked before any file is written. The
trainings are then planned into ``validation.sqlite`` (:mod:`.store`) and run on the
search's executors (in-process, local processes, Dask, GPUs: :func:`..driver.start_executor`),
each stored as it finishes: the same call after an interruption (``kill -9`` included)
trains only what is left. The maths is :mod:`tinyformula.formula.validation`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ...core.errors import TinyFormulaError
from ...core.locks import LOCK_NAME, RunLock
from ...core.paths import check_output_path
from ...core.version import VERSION
from ...data import cached_dataset
from ...execution.cluster import reach_scheduler
from ...execution.jobs import DataSource, TrialJob, TrialState
from ...formula.estimator import BUILTIN_BASES, TinyFormula
from ...formula.loading import load_formula
from ...formula.validation import (
    RULE,
    fidelity,
    movement,
    schedule_report,
    search_difference_sd,
)
from ...training.config import TrainConfig
from ..driver import check_main_guard, start_executor
from ..estimate import training_seconds, wall_seconds
from ..results import SearchResult, load_run, unfinished
from ..trials import Trial
from .config import ALL_BASELINES, Schedule, ValidationConfig
from .plan import (
    Training,
    fidelity_points,
    plan_entries,
    plan_trainings,
)
from .result import FIGURE_NAME, REPORT_FORMAT, REPORT_VERSION, ValidationResult
from .store import NAME as STORE_NAME
from .store import ValidationStore

RUN_FORMULA = "run"        # in ``formulas``: the run's own formula
FITTED = "fitted"          # its default name
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


def validate(run, *, formulas=None, progress: bool = True, log=None,
             **settings) -> ValidationResult:
    """Validate a finished search's formula (or ``formulas``) and return the result.

    Parameters
    ----------
    run : str or Path
        A finished run folder (``tinyformula fit --out``).
    formulas : None, mapping or sequence
        The formulas under test. None: the run's own, named ``fitted``. A mapping of names to
        :class:`TinyFormula` objects or formula files; or a sequence of those, of
        ``"NAME=PATH"`` strings, and of ``"run"`` (the run's own formula). Each must be
        fitted on the run's base and cost.
    progress : bool
        A progress bar with its ETA on stderr.
    log : callable
        Where notes go (default: stderr).
    **settings
        :class:`ValidationConfig` fields: ``budgets``, ``images``, ``epochs``,
        ``schedules``, ``seeds``, ``baselines``, ``preset``, ``fidelity``, ``score_size``,
        ``out``, ``executor``, ``workers``, ``scheduler``, ``device``, ``cuda_graph``,
        ``trials_per_gpu`` (None keeps the default).

    Writes ``validation.sqlite``, ``validation.json`` and ``validation.md`` into ``out``
    (default: the run folder), and the validated run's formula with its evidence as
    ``out/formula.json`` (in the run folder: its own formula file, updated). The figure is
    :func:`tinyformula.plot_validation`'s.
    """
    config = ValidationConfig.from_options(**settings)
    log = log or (lambda message: print(message, file=sys.stderr))
    run_path = Path(run)
    search = validated_run(run_path)
    tested = tested_formulas(formulas, search)
    out = check_out(config.out, run_path)
    execution = replace(search.config, executor=config.executor, workers=config.workers,
                        scheduler=config.scheduler, device=config.device,
                        cuda_graph=config.cuda_graph, trials_per_gpu=config.trials_per_gpu,
                        out=str(out)).resolved()
    if execution.scheduler:
        reach_scheduler(execution.scheduler)
    if execution.scheduler is None and (execution.workers or os.cpu_count() or 1) > 1:
        check_main_guard()
    dataset = cached_dataset(search.config.data, search.config.data_dir)
    scored = len(dataset.val_labels)
    score_size = min(config.score_size or config.preset_values.score_size or scored, scored)
    search_images = search.config.rung_train_sizes[-1] * search.config.epochs
    schedules = config.resolve_schedules(search_images, len(dataset.train_labels))
    used = {search.config.seed, search.config.seed + 1}
    seeds = config.resolve_seeds(used, search.config.seed)
    budgets = config.resolve_budgets(search.config.c_range)

    yardstick = search.yardstick
    notes = []
    wanted = config.wanted_baselines
    if not wanted and len(tested) < 2:
        raise TinyFormulaError("--baselines none compares the tested formulas with each other: "
                               "give two or more with --formula")
    baselines = [b for b in wanted if b != "published" or search.config.base in BUILTIN_BASES]
    if "published" in wanted and "published" not in baselines:
        notes.append(f"the published Tiny Formula exists for {', '.join(BUILTIN_BASES)} only: "
                     f"not available for {search.config.base}, left out")
    trials = search.trials
    trials = trials[(trials["status"] == "ok") & (trials["seed"] == search.config.seed)
                    & (trials["rung"] == search.config.top_rung)]
    entries = plan_entries(yardstick, budgets, tested, baselines, trials)
    count = config.preset_values.fidelity if config.fidelity is None else config.fidelity
    points = fidelity_points(yardstick, search.frontier, count)
    trainings = plan_trainings(entries, schedules, seeds, points)
    for entry in entries:
        if entry.short or (entry.config is None
                           and not entry.note.startswith("unavailable: the published")):
            notes.append(f"c = {entry.budget:g}, {entry.formula}: {entry.note}")
    identity = {"base": search.config.base, "data": search.config.data,
                "num_classes": yardstick.num_classes,
                "resolution_base": yardstick.resolution_base,
                "batch_size": search.config.batch_size, "scored_on": "held-out split",
                "score_size": score_size}
    data = DataSource(search.config.data, search.config.data_dir, None)

    def job(row_id: int, training: Training, device: str) -> TrialJob:
        return TrialJob(id=row_id, base=search.config.base, scale=training.config.scale,
                        resolution_base=yardstick.resolution_base, data=data,
                        train=TrainConfig(train_size=training.schedule.train_size,
                                          epochs=training.schedule.epochs,
                                          batch_size=search.config.batch_size, seed=training.seed,
                                          device=device, cuda_graph=execution.cuda_graph,
                                          val_size=score_size))

    labels = _labels(entries, points)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    store_existed, lock_existed = (out / STORE_NAME).exists(), (out / LOCK_NAME).exists()
    with RunLock(out) as lock:
        store = None
        try:
            store = ValidationStore.open(out / STORE_NAME, identity)
            store.write_plan(identity, trainings)
            rows = store.rows()
            pending = [t for t in trainings
                       if rows[t.key]["status"] in (TrialState.PENDING, TrialState.FAILED)]
            if pending:
                log(_plan_message(len(trainings), pending, execution.workers, score_size))
                with contextlib.ExitStack() as stack:
                    # As the search's trials, for the GPU planner, which measures the memory
                    # of the largest with the search's settings (images // its epochs).
                    as_trials = [Trial(rows[t.key]["id"], 0, t.seed, t.config,
                                       images=t.schedule.train_size * search.config.epochs)
                                 for t in pending]
                    executor, device = start_executor(execution, yardstick, as_trials, dataset,
                                                      stack, log)
                    _train(store, executor, [job(rows[t.key]["id"], t, device) for t in pending],
                           {rows[t.key]["id"]: t for t in pending}, labels, len(trainings),
                           progress)
            stored = store.rows()
            rows = {t.key: stored[t.key] for t in trainings}  # this call's, not older ones
        except BaseException:
            if store is None and not store_existed:  # refused before anything was written
                lock.release(remove=not lock_existed)
                if created:
                    with contextlib.suppress(OSError):
                        out.rmdir()
            raise
        finally:
            if store is not None:
                store.close()
        report = _report(search, run_path, out, tested, baselines, budgets, schedules, seeds,
                         entries, points, rows, score_size, scored, search_images, notes,
                         dataset.val_source)
        result = ValidationResult(out, report)
        result.save()
        own = next((name for name, f in tested.items() if f is search.formula), None)
        # The run's formula carries its evidence: its verdicts against the fixed formulas (a
        # validation without baselines has none, and leaves the evidence it has alone).
        if own is not None and baselines:
            search.formula.validation_ = result.entry(own)
            search.formula.save(out / "formula.json")
    return result


def validated_run(path: Path) -> SearchResult:
    """The run to validate: a finished search with a formula, or a one-line refusal."""
    if path.exists() and not path.is_dir():
        raise TinyFormulaError(f"{path} is a file; give the run folder of 'tinyformula fit'")
    if not (path / "trials.sqlite").is_file():
        raise TinyFormulaError(f"{path} is not a run folder (no trials.sqlite); give the --out "
                               f"folder of a finished 'tinyformula fit'")
    search = load_run(path)
    if not search.finished:
        pending = int((search.trials["status"] == "pending").sum())
        raise unfinished(path, pending, len(search.trials))
    if search.formula is None:
        raise TinyFormulaError(f"{path} holds no formula (no formula.json: the search fitted "
                               f"none); run 'tinyformula fit --out {path}' with the same options "
                               f"to fit it, then validate")
    return search


def tested_formulas(formulas, search: SearchResult) -> dict[str, TinyFormula]:
    """The formulas under test by name, each loaded with every check and refused unless it
    was fitted on the run's base and cost."""
    if formulas is None:
        formulas = [RUN_FORMULA]
    if isinstance(formulas, (str, Path, TinyFormula)):
        formulas = [formulas]
    items: list[tuple[str | None, object]] = []
    if isinstance(formulas, Mapping):
        items = list(formulas.items())
    elif isinstance(formulas, Sequence):
        for item in formulas:
            if isinstance(item, str) and "=" in item and not Path(item).exists():
                name, _, item = item.partition("=")
                items.append((name, item))
            else:
                items.append((None, item))
    else:
        raise TinyFormulaError(f"formulas must be formula files, TinyFormula objects or "
                               f"'{RUN_FORMULA}', got {type(formulas).__name__}")
    if not items:
        raise TinyFormulaError("give at least one formula to validate")
    tested: dict[str, TinyFormula] = {}
    for i, (name, item) in enumerate(items):
        if isinstance(item, str) and item == RUN_FORMULA:
            name, formula = name or FITTED, search.formula
        else:
            formula = load_formula(item, base=search.config.base, cost=search.config.cost)
            name = name or _name_of(item, i)
        if not NAME_PATTERN.match(name):
            raise TinyFormulaError(f"formula name {name!r}: use letters, digits and . _ + - "
                                   f"(at most 64)")
        if name in ALL_BASELINES or name in tested:
            raise TinyFormulaError(f"formula name {name!r} is taken (baselines: "
                                   f"{', '.join(ALL_BASELINES)}); name it NAME=PATH")
        tested[name] = formula
    return tested


def _name_of(item, index: int) -> str:
    if isinstance(item, (str, Path)):
        path = Path(item)
        name = path.parent.name if path.name == "formula.json" and path.parent.name else path.stem
        return re.sub(r"[^A-Za-z0-9_.+-]", "-", name)[:64] or f"formula{index + 1}"
    return f"formula{index + 1}"


def check_out(out, run_path: Path) -> Path:
    """Where the validation's files go: the run folder, or a folder that holds no search."""
    if out is None:
        return check_output_path("the run folder", run_path)
    path = check_output_path("--out", out)
    if path.exists() and not path.is_dir():
        raise TinyFormulaError(f"--out {path} is a file; give a folder")
    if (path / "trials.sqlite").exists() and path.resolve() != run_path.resolve():
        raise TinyFormulaError(f"--out {path} holds another search; give the run folder itself "
                               f"or a folder of its own")
    return path


def _labels(entries, points) -> dict[str, str]:
    """What each training is for, to show as it finishes."""
    labels: dict[str, list[str]] = {}
    for entry in entries:
        if entry.network is not None:
            labels.setdefault(entry.network, []).append(f"c={entry.budget:g} {entry.formula}")
    for point in points:
        labels.setdefault(point["network"], []).append(f"frontier trial {point['trial']}")
    return {network: ", ".join(names) for network, names in labels.items()}


def _plan_message(total: int, pending: list[Training], workers: int | None,
                  score_size: int) -> str:
    seconds = wall_seconds([training_seconds(t.config, t.schedule.images, score_size)
                            for t in pending], workers)
    expected = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{max(seconds, 1):.0f} s"
    return (f"validation: {total} trainings, {total - len(pending)} already done; expected "
            f"about {expected} on an idle 2-core CPU (much less on a GPU)")


def _train(store: ValidationStore, executor, jobs: list[TrialJob], by_id: dict[int, Training],
           labels: dict, total: int, progress: bool) -> None:
    """Train the jobs, storing each result as it arrives."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=total - len(jobs), unit="training", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    try:
        for result in executor.train(jobs):
            store.record(result.id, result)
            training = by_id[result.id]
            outcome = (f"top-1 {result.top1:.1%} ({result.seconds:.0f} s)"
                       if result.state is TrialState.OK else f"{result.state}: {result.message}")
            bar.update(1)
            bar.write(f"{labels.get(training.network, training.network)}  seed={training.seed}"
                      f"  {training.schedule.images:,} images  {outcome}", file=sys.stderr)
    finally:
        bar.close()


def _report(search: SearchResult, run_path: Path, out: Path, tested, baselines, budgets,
            schedules, seeds, entries, points, rows, score_size, scored, search_images, notes,
            val_source) -> dict:
    """The whole report (``validation.json``) from the stored trainings."""
    def top1(network: str, seed: int, schedule: Schedule):
        row = rows.get((network, seed, schedule.train_size, schedule.epochs))
        return row["top1"] if row and row["status"] == TrialState.OK.value else None

    networks = {(e.budget, e.formula): e.network for e in entries if e.network}
    fallback = search_difference_sd(search.seed_spread.get("mean_abs_diff"))
    names = [b for b in baselines if any(e.formula == b and e.network for e in entries)]
    scores_list, by_schedule = [], []
    for schedule in schedules:
        scores: dict = {}
        for (c, formula), network in networks.items():
            for seed in seeds:
                value = top1(network, seed, schedule)
                scores_list.append({"c_budget": c, "formula": formula,
                                    "images": schedule.images, "seed": seed, "top1": value})
                if value is not None:
                    scores.setdefault((c, formula), {})[seed] = value
        by_schedule.append(schedule_report(budgets, list(tested), names, scores, networks,
                                           fallback))
    moves = movement([(s.images, r) for s, r in zip(schedules, by_schedule)], list(tested))
    fid = fidelity([{**{k: v for k, v in p.items() if k != "config"},
                     "long": top1(p["network"], seeds[0], schedules[-1])} for p in points])
    failed = [r for r in rows.values() if r["status"] not in ("ok", "pending")]
    if failed:
        notes.append(f"{len(failed)} training(s) did not finish ok (diverged or failed) and are "
                     f"left out; run the same command again to retry the failed ones")
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "version_written_by": VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "run": str(run_path), "out": str(out), "figure": str(out / FIGURE_NAME),
        "base": search.config.base, "data": search.config.data, "cost": search.config.cost,
        "scored_on": (f"{score_size:,} of {search.config.data}'s held-out images "
                      if score_size < scored else f"{search.config.data}'s held-out split ")
        + f"({val_source})",
        "score_size": score_size, "search_images": search_images,
        "search_seeds": [search.config.seed, search.config.seed + 1],
        "seeds": list(seeds), "budgets": list(budgets),
        "schedules": [s.to_dict(search_images) for s in schedules],
        "tested": {name: formula.source or name for name, formula in tested.items()},
        "baselines": names, "entries": [e.to_dict() for e in entries],
        "scores": scores_list, "by_schedule": by_schedule, "movement": moves, "fidelity": fid,
        "notes": notes, "rule": RULE,
        "trainings": {"planned": len(rows), "ok": sum(r["status"] == "ok" for r in rows.values()),
                      "failed": len(failed),
                      "seconds": sum(r["seconds"] or 0.0 for r in rows.values())},
    }
