"""The search: sample, filter by FLOPs, train, keep the Pareto frontier, fit the Tiny Formula.

``search()`` is the toolkit's main job and ``tinyformula fit`` its command. A run folder holds
``trials.sqlite`` (the durable store: the plan, then each trial as it finishes), and once the
search ends ``trials.csv``, ``frontier.csv`` and ``formula.json``. Running the same search on
the same folder again continues where it stopped; a folder holding a different search is
refused, never overwritten.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .bases import get_base
from .errors import TinyFormulaError
from .formula import TinyFormula, write_atomically
from .pareto import pareto_frontier
from .presets import PRESETS
from .solve import Budget, BudgetUnreachable, solve_giant
from .space import SAMPLERS, check_c_range, plan_candidates
from .store import TRIAL_COLUMNS, TrialStore


# Effective throughput of a 2-core CPU on small candidates, in forward-FLOPs per second (fitted
# on a smoke run's trial times); used only to print an expected duration.
CPU_TRAIN_FLOPS_PER_S = 2.5e10
TRIAL_OVERHEAD_S = 0.5
SUMMARY_BUDGETS = (0.06, 0.13, 0.25, 0.5)  # where the summary shows the formula


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search. ``identity()`` is what a run folder must match."""

    base: str = "efficientnet_b0"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    preset: str = "default"
    trials: int | None = None
    train_size: int | None = None
    epochs: int | None = None
    c_range: tuple[float, float] = (0.03, 1.0)
    sampler: str = "budgeted"
    seed: int = 0
    batch_size: int = 128
    device: str = "auto"

    def resolved(self) -> "SearchConfig":
        """Fill unset sizes from the preset and check every value."""
        if self.preset not in PRESETS:
            raise TinyFormulaError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        preset = PRESETS[self.preset]
        config = replace(self,
                         trials=preset.trials if self.trials is None else self.trials,
                         train_size=preset.train_size if self.train_size is None
                         else self.train_size,
                         epochs=preset.epochs if self.epochs is None else self.epochs,
                         c_range=check_c_range(self.c_range))
        for name in ("trials", "train_size", "epochs", "batch_size"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TinyFormulaError(f"--{name.replace('_', '-')} must be at least 1, "
                                       f"got {value!r}")
        if config.sampler not in SAMPLERS:
            raise TinyFormulaError(f"unknown sampler {config.sampler!r}; known: "
                                   f"{', '.join(SAMPLERS)}")
        get_base(config.base)
        return config

    @property
    def replicates(self) -> int:
        return min(PRESETS[self.preset].replicates, self.trials or 0)

    @property
    def val_size(self) -> int:
        return PRESETS[self.preset].val_size

    def identity(self) -> dict:
        """What makes two searches the same search (the trial count may grow)."""
        return {"base": self.base, "data": self.data, "seed": self.seed,
                "sampler": self.sampler, "c_range": list(self.c_range),
                "train_size": self.train_size, "epochs": self.epochs,
                "batch_size": self.batch_size, "val_size": self.val_size}


@dataclass
class Run:
    """A search's results, as ``search()`` returns them and ``load_run()`` reads them."""

    path: Path
    config: dict
    trials: "object"            # pandas DataFrame, one row per trial
    frontier: "object"          # pandas DataFrame, the Pareto-optimal trials by c
    formula: TinyFormula | None
    seed_spread: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return bool(len(self.trials)) and not (self.trials["status"] == "pending").any()


def _jobs(config: SearchConfig, data, trials: list[dict]) -> list[dict]:
    train = {"train_size": config.train_size, "epochs": config.epochs,
             "batch_size": config.batch_size}
    return [{"id": t["id"], "base": config.base, "data": config.data, "data_dir": config.data_dir,
             "validation": config.val_size,
             "r": t["r"], "d": t["d"], "w": t["w"], "seed": t["seed"], "device": config.device,
             "resolution_base": data.resolution_base, "train": train} for t in trials]


def plan_trials(config: SearchConfig, num_classes: int, resolution_base: int) -> list[dict]:
    """Every trial of the search, in execution order: each candidate with the search's seed
    (common random numbers), then the first few again with the next seed (noise replicates)."""
    base = get_base(config.base)
    candidates = plan_candidates(base, config.trials, sampler=config.sampler,
                                 c_range=config.c_range, seed=config.seed,
                                 num_classes=num_classes, resolution_base=resolution_base)
    rows = [dict(candidate.to_dict(), candidate=candidate.index, seed=config.seed)
            for candidate in candidates]
    rows += [dict(candidate.to_dict(), candidate=candidate.index, seed=config.seed + 1)
             for candidate in candidates[:config.replicates]]
    for row in rows:
        row.pop("index")
    return rows


def _merge_plan(store: TrialStore, config: SearchConfig, planned: list[dict]) -> list[dict]:
    """Check the folder holds this search (or none) and give each planned trial its id."""
    stored = store.trials()
    meta = store.meta()
    if stored or meta:
        theirs = meta.get("identity", {})
        differ = sorted(k for k in set(theirs) | set(config.identity())
                        if theirs.get(k) != config.identity().get(k))
        if differ:
            shown = ", ".join(f"{k}: {theirs.get(k)!r} there, {config.identity().get(k)!r} here"
                              for k in differ)
            raise TinyFormulaError(f"{store.path.parent} holds a different search ({shown}); "
                                   f"choose another --out")
    by_key = {(t["candidate"], t["seed"]): t for t in stored}
    next_id = max((t["id"] for t in stored), default=-1) + 1
    for row in planned:
        known = by_key.get((row["candidate"], row["seed"]))
        if known is None:
            row["id"], next_id = next_id, next_id + 1
        elif not math.isclose(known["c"], row["c"]) or known["w"] != row["w"]:
            raise TinyFormulaError(f"{store.path} was planned differently (candidate "
                                   f"{row['candidate']}); choose another --out")
        else:
            row["id"] = known["id"]
    return planned


def expected_seconds(config: SearchConfig, trials: list[dict]) -> float:
    """A rough CPU estimate from FLOPs: training costs ~3x a forward pass per image, plus
    BatchNorm recalibration (2,048 images) and scoring."""
    images = config.train_size * config.epochs
    work = sum(t["flops"] * (3 * images + config.val_size + 2048) for t in trials)
    return work / CPU_TRAIN_FLOPS_PER_S + TRIAL_OVERHEAD_S * len(trials)


def search(base: str = "efficientnet_b0", data: str = "fashion-mnist", *, out="runs/search",
           preset: str = "default", trials: int | None = None, train_size: int | None = None,
           epochs: int | None = None, c_range=(0.03, 1.0), sampler: str = "budgeted",
           seed: int = 0, data_dir=None, executor: str = "local", workers: int | None = None,
           scheduler: str | None = None, device: str = "auto", batch_size: int = 128,
           progress: bool = True, log=None) -> Run:
    """Run (or resume) a search and return it. See ``tinyformula fit --help``."""
    from .executors import cached_dataset, make_executor

    config = SearchConfig(base=base, data=data, data_dir=str(data_dir) if data_dir else None,
                          preset=preset, trials=trials, train_size=train_size, epochs=epochs,
                          c_range=tuple(c_range), sampler=sampler, seed=seed,
                          batch_size=batch_size, device=device).resolved()
    log = log or (lambda message: print(message, file=sys.stderr))
    # Everything that can be wrong with the input is checked before the folder is touched.
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    if config.train_size > len(dataset.train_images):
        raise TinyFormulaError(f"--train-size {config.train_size} is more than the "
                               f"{len(dataset.train_images)} training images of {config.data}")
    planned = plan_trials(config, dataset.num_classes, dataset.resolution_base)
    out = Path(out)
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
        planned = _merge_plan(store, config, planned)
        finished = {t["id"] for t in store.trials() if t["status"] != "pending"}
        pending = [t for t in planned if t["id"] not in finished]
        if not pending:
            store.write_plan(config.identity(), _settings(config, dataset), planned)
            return _finish(out, store, config)
        with make_executor(executor, workers, scheduler) as runner:
            store.write_plan(config.identity(), _settings(config, dataset), planned)
            planned_written = True
            minutes = expected_seconds(config, pending) / 60
            log(f"{config.preset} preset: {len(planned)} trials ({config.replicates} of them "
                f"replicates), {config.train_size:,} images x {config.epochs} epoch(s) each; "
                f"{len(planned) - len(pending)} already done. Expected about {minutes:.0f} min "
                f"on a 2-core CPU (much less on a GPU).")
            _train_pending(store, runner, _jobs(config, dataset, pending), len(planned),
                           progress, log)
        return _finish(out, store, config)
    finally:
        store.close()
        if fresh and not planned_written:
            _remove_store(out)


def _remove_store(out: Path) -> None:
    """Undo a store this call created but never used (bad input found late: no half-files)."""
    for suffix in ("", "-wal", "-shm"):
        (out / f"trials.sqlite{suffix}").unlink(missing_ok=True)
    try:
        out.rmdir()  # only if empty
    except OSError:
        pass


def _settings(config: SearchConfig, dataset) -> dict:
    return {**asdict(config), "num_classes": dataset.num_classes,
            "resolution_base": dataset.resolution_base, "replicates": config.replicates}


def _train_pending(store, runner, jobs, total, progress, log) -> None:
    from tqdm import tqdm

    done = total - len(jobs)
    best = max((t["top1"] for t in store.trials() if t["top1"] is not None), default=None)
    by_id = {job["id"]: job for job in jobs}
    bar = tqdm(total=total, initial=done, unit="trial", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for result in runner.run(jobs):
            store.record(result["id"], result)
            job = by_id[result["id"]]
            if result.get("status") == "ok":
                best = max(best or 0.0, result["top1"])
                outcome = f"top-1 {result['top1']:.1%} ({result['seconds']:.0f} s)"
            else:
                outcome = f"{result.get('status')}: {result.get('message', '')}"
            bar.update(1)
            if best is not None:
                bar.set_postfix_str(f"best top-1 {best:.1%}")
            bar.write(f"trial {result['id'] + 1}/{total}  r={job['r']:.3f} d={job['d']:.3f} "
                      f"w={job['w']:.3f} seed={job['seed']}  {outcome}", file=sys.stderr)
    finally:
        bar.close()


def _seed_spread(trials: list[dict]) -> dict:
    """Top-1 differences between the two seeds of each replicated candidate."""
    runs: dict[int, dict[int, float]] = {}
    for t in trials:
        if t["status"] == "ok":
            runs.setdefault(t["candidate"], {})[t["seed"]] = t["top1"]
    gaps = [abs(a - b) for seeds in runs.values() if len(seeds) == 2
            for a, b in [tuple(seeds.values())]]
    if not gaps:
        return {}
    return {"pairs": len(gaps), "mean_abs_diff": statistics.fmean(gaps), "max_abs_diff": max(gaps)}


def _csv(rows: list[dict], columns) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _finish(out: Path, store: TrialStore, config: SearchConfig) -> Run:
    trials = store.trials()
    write_atomically(out / "trials.csv", _csv(trials, TRIAL_COLUMNS))
    frontier = pareto_frontier(trials, seed=config.seed)
    write_atomically(out / "frontier.csv", _csv(frontier, TRIAL_COLUMNS))
    settings = store.meta()["settings"]
    ok = sum(t["status"] == "ok" for t in trials)
    if len(frontier) < 3:
        raise TinyFormulaError(
            f"only {len(frontier)} Pareto-optimal trials ({ok} of {len(trials)} finished ok); "
            f"a formula needs 3: run more trials (--trials) or a longer schedule "
            f"(--train-size, --epochs) on the same --out to continue this search")
    formula = TinyFormula(config.base, resolution_base=settings["resolution_base"],
                          num_classes=settings["num_classes"],
                          source=f"search on {config.data} ({len(trials)} trials, "
                                 f"{config.preset} preset, seed {config.seed})").fit(frontier)
    formula.save(out / "formula.json")
    return load_run(out)


def load_run(path) -> Run:
    """Read a run folder, finished or partial (the formula is None until the search ends)."""
    import pandas as pd

    path = Path(path)
    if not path.is_dir():
        raise TinyFormulaError(f"no run folder at {path}")
    if not (path / "trials.sqlite").exists():
        raise TinyFormulaError(f"{path} holds no search (no trials.sqlite); run "
                               f"'tinyformula fit --out {path}' first")
    store = TrialStore.open(path / "trials.sqlite", create=False)
    try:
        trials, meta = store.trials(), store.meta()
    finally:
        store.close()
    settings = meta.get("settings", {})
    frontier = pareto_frontier(trials, seed=settings.get("seed"))
    formula = TinyFormula.load(path / "formula.json") if (path / "formula.json").exists() else None
    return Run(path=path, config=settings, trials=pd.DataFrame(trials, columns=TRIAL_COLUMNS),
               frontier=pd.DataFrame(frontier, columns=TRIAL_COLUMNS), formula=formula,
               seed_spread=_seed_spread(trials))


def run_summary(run: Run) -> dict:
    """The run as plain data: counts, frontier, noise, and both formulas at a few budgets."""
    base = get_base(run.formula.base)
    budgets = []
    for c in SUMMARY_BUDGETS:
        entry = {"c": c}
        try:
            entry["tiny"] = run.formula.recommend(c).to_dict()
        except TinyFormulaError as error:
            entry["tiny"] = {"error": str(error)}
        try:
            giant = solve_giant(Budget(base, c, run.formula.num_classes,
                                       run.formula.resolution_base))
            entry["giant"] = {**vars(giant.solution), "phi": giant.phi}
        except BudgetUnreachable as error:
            entry["giant"] = {"error": str(error)}
        budgets.append(entry)
    trials = run.trials
    return {"out": str(run.path), "trials": len(trials),
            "ok": int((trials["status"] == "ok").sum()),
            "failed": int((~trials["status"].isin(["ok", "pending"])).sum()),
            "frontier": run.frontier[["c", "r", "d", "w", "resolution", "top1"]].to_dict("records"),
            "seed_spread": run.seed_spread, "formula": str(run.path / "formula.json"),
            "budgets": budgets}
