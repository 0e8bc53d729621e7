"""Reading a search: :class:`SearchResult`, ``load_run``, the summary, the CSV files.

A run folder holds ``trials.sqlite`` (the durable store) and, once the search has finished,
``trials.csv``, ``frontier.csv`` and ``formula.json``. Reading one never changes it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import TinyFormulaError
from ..core.files import FileKind, write_atomically
from ..cost.budgets import SUMMARY_BUDGETS
from ..cost.yardstick import Yardstick
from ..execution.jobs import TrialState
from ..formula.estimator import MIN_POINTS, MONOTONE, TinyFormula
from ..formula.loading import load_formula
from ..formula.quality import assess, check_above_chance, noise_sigma
from ..formula.solve import BudgetUnreachable
from .config import SearchConfig
from .fidelity import fidelity_report, seed_noise
from .pareto import pareto_frontier
from .store import TrialStore
from .trials import COLUMNS, Trial, trials_dataframe


@dataclass
class SearchResult:
    """A search's results, as ``search()`` returns them and ``load_run()`` reads them.

    Attributes
    ----------
    path : Path
        The run folder.
    config : SearchConfig
        The search's settings as stored.
    yardstick : Yardstick
        How the trials' c was measured.
    trials, frontier : pandas.DataFrame
        One row per trial (the columns of ``trials.csv``, every rung); the Pareto-optimal
        trials of the search's seed at the top rung, by c.
    formula : TinyFormula or None
        The fitted formula (None until the search has finished and fitted one).
    seed_spread : dict
        Top-1 differences between the two seeds of the replicated candidates (top rung).
    fidelity : dict
        Per rung and between rungs: see :func:`.fidelity.fidelity_report`.
    """

    path: Path
    config: SearchConfig
    yardstick: Yardstick
    trials: Any       # pandas.DataFrame (pandas is imported only when a run is read)
    frontier: Any
    formula: TinyFormula | None
    seed_spread: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return bool(len(self.trials)) and not (self.trials["status"] == "pending").any()

    @classmethod
    def from_trials(cls, path: Path, config: SearchConfig, yardstick: Yardstick,
                    trials: list[Trial], formula: TinyFormula | None) -> "SearchResult":
        return cls(path=Path(path), config=config, yardstick=yardstick,
                   trials=trials_dataframe(trials),
                   frontier=trials_dataframe(search_frontier(config, trials)),
                   formula=formula, seed_spread=seed_noise(trials, rung=config.top_rung),
                   fidelity=fidelity_report(trials, config.rungs()))


def search_frontier(config: SearchConfig, trials: list[Trial]) -> list[Trial]:
    """The frontier the formula is fitted on: the search seed's trials at the top rung."""
    return pareto_frontier([t for t in trials if t.rung == config.top_rung], seed=config.seed)


CSV_KIND = FileKind("tinyformula trials CSV file", lambda path: path.open(
    encoding="utf-8").readline().rstrip("\r\n") == ",".join(COLUMNS))


def _csv(trials: list[Trial]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(t.to_row() for t in trials)
    return buffer.getvalue()


def _fit_inputs(config: SearchConfig, yardstick: Yardstick, trials: list[Trial],
                params: dict) -> dict:
    """What a search's formula is fitted from: the frontier's columns, the seed noise, the
    finished scores, the source line and the :class:`TinyFormula` parameters."""
    frontier = search_frontier(config, trials)
    noise = seed_noise(trials, rung=config.top_rung).get("mean_abs_diff")
    scores = [t.top1 for t in trials if t.state is TrialState.OK and t.rung == config.top_rung]
    check_above_chance(scores, yardstick.num_classes, config.val_size, noise)
    if len(frontier) < MIN_POINTS:
        ok = sum(t.state is TrialState.OK for t in trials)
        raise TinyFormulaError(
            f"only {len(frontier)} Pareto-optimal trials ({ok} of {len(trials)} finished ok); "
            f"a formula needs {MIN_POINTS}: run more trials (--trials) on the same --out to "
            f"continue this search")
    schedule = f", halving eta {config.eta:g}" if config.schedule == "halving" else ""
    source = (f"search on {config.data} ({len(trials)} trials, {config.preset} preset"
              f"{schedule}, {config.train_size:,} images x {config.epochs} epoch(s), "
              f"seed {config.seed})")
    params = dict(params)
    if config.monotone is not None:
        params.setdefault("monotone", config.monotone)
    if noise is not None:
        params.setdefault("top1_noise", noise_sigma(noise))
    columns = {key: [getattr(t.config, key) for t in frontier] for key in ("c", "r", "d", "w")}
    columns["top1"] = [t.top1 for t in frontier]
    return {"columns": columns, "noise": noise, "scores": scores, "source": source,
            "params": params}


def fit_formula(config: SearchConfig, yardstick: Yardstick, trials: list[Trial],
                **params) -> TinyFormula:
    """The formula of a search's trials: fitted on the frontier of the top rung (r, d and
    top-1 against c), with its quality report. ``params`` are :class:`TinyFormula` parameters
    (default: the config's ``monotone``). Raises TinyFormulaError when every trial scored at
    chance or the frontier has too few points."""
    inputs = _fit_inputs(config, yardstick, trials, params)
    formula = TinyFormula.for_yardstick(yardstick, source=inputs["source"],
                                        **inputs["params"]).fit(inputs["columns"])
    formula.quality_ = assess(formula, yardstick.num_classes, config.val_size, inputs["noise"],
                              len(inputs["scores"]))
    return formula


def stored_formula(path: Path, config: SearchConfig, yardstick: Yardstick,
                   trials: list[Trial]) -> TinyFormula | None:
    """The formula already in ``path`` when it was fitted from exactly what a fit would use
    now (the same frontier, source, settings, seed noise and quality rules), else None: a
    finished search run again answers at once instead of refitting its GPs and the
    leave-one-out check."""
    from ..formula.quality import RULES, chance_margin

    if not path.is_file():
        return None
    try:
        stored = load_formula(path)
        inputs = _fit_inputs(config, yardstick, trials, {})
    except TinyFormulaError:
        return None
    ordered = sorted(range(len(inputs["columns"]["c"])),
                     key=lambda i: inputs["columns"]["c"][i])
    columns = {key: [float(values[i]) for i in ordered]
               for key, values in inputs["columns"].items()}
    quality = stored.quality_ or {}
    margin = chance_margin(yardstick.num_classes, config.val_size, inputs["noise"],
                           len(inputs["scores"]))
    same = (stored.frontier_ == columns and stored.source == inputs["source"]
            and stored.yardstick.to_dict() == yardstick.to_dict()
            and stored.monotone == inputs["params"].get("monotone", MONOTONE)
            and quality.get("seed_noise") == inputs["noise"]
            and quality.get("chance_margin") == margin
            and quality.get("rules") == list(RULES))
    return stored if same else None


def finish_search(out: Path, config: SearchConfig, yardstick: Yardstick,
                  trials: list[Trial], log=None) -> SearchResult:
    """Write the CSVs, fit the formula on the frontier (or reuse the stored one when nothing
    it is fitted from changed), save it, and return the result."""
    out = Path(out)
    write_atomically(out / "trials.csv", _csv(trials), CSV_KIND)
    write_atomically(out / "frontier.csv", _csv(search_frontier(config, trials)), CSV_KIND)
    formula = stored_formula(out / "formula.json", config, yardstick, trials)
    if formula is None:
        if log is not None:
            points = len(search_frontier(config, trials))
            log(f"Fitting the formula on {points} frontier points (GPs of r, d and top-1, "
                f"and the leave-one-out check: {points} refits of each)...")
        formula = fit_formula(config, yardstick, trials)
        formula.save(out / "formula.json")
    elif log is not None:
        log(f"Nothing changed since {out / 'formula.json'} was fitted: reusing it.")
    return SearchResult.from_trials(out, config, yardstick, trials, formula)


def load_run(path) -> SearchResult:
    """Read a run folder, finished or partial (the formula is None until the search ends)."""
    path = Path(path)
    if not path.is_dir():
        raise TinyFormulaError(f"no run folder at {path}")
    if not (path / "trials.sqlite").exists():
        raise TinyFormulaError(f"{path} holds no search (no trials.sqlite); run "
                               f"'tinyformula fit --out {path}' first")
    store = TrialStore.open(path / "trials.sqlite", create=False)
    try:
        trials, config, yardstick = store.trials(), store.config(), store.yardstick()
    finally:
        store.close()
    if config is None:
        raise TinyFormulaError(f"{path} holds an empty search (no plan was written); run "
                               f"'tinyformula fit --out {path}' to start it")
    formula = TinyFormula.load(path / "formula.json") if (path / "formula.json").exists() else None
    return SearchResult.from_trials(path, config, yardstick, trials, formula)


def run_summary(result: SearchResult) -> dict:
    """The run as plain data: counts, frontier, noise, and both formulas at a few budgets
    (each answered on its own: one a side cannot reach holds its ``error``), with what c = 1
    is in the search's cost (``reference``, in ``unit``)."""
    budgets = []
    for c in SUMMARY_BUDGETS:
        entry: dict = {"c": c}
        for side, answer in (("tiny", result.formula.recommend), ("giant", result.formula.giant)):
            try:
                entry[side] = answer(c).to_dict()
            except (TinyFormulaError, BudgetUnreachable) as error:
                entry[side] = {"error": str(error)}
        budgets.append(entry)
    trials = result.trials
    network = result.yardstick.network
    return {"out": str(result.path), "cost": result.yardstick.cost,
            "base": {"name": network.name, **network.counting()}, "trials": len(trials),
            "ok": int((trials["status"] == "ok").sum()),
            "failed": int((~trials["status"].isin(["ok", "pending"])).sum()),
            "frontier": result.frontier[["c", "r", "d", "w", "resolution", "top1"]]
            .to_dict("records"),
            "seed_spread": result.seed_spread, "fidelity": result.fidelity,
            "formula": str(result.path / "formula.json"), "quality": result.formula.quality_,
            "yardstick": result.yardstick.to_dict(), "unit": result.yardstick.unit,
            "reference": result.yardstick.reference, "budgets": budgets}


Run = SearchResult  # the name of versions up to 0.1
