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
from ..core.files import write_atomically
from ..cost.budgets import SUMMARY_BUDGETS
from ..cost.yardstick import Yardstick
from ..formula.estimator import TinyFormula
from ..formula.solve import BudgetUnreachable
from .config import SearchConfig
from .fidelity import fidelity_report
from .fitting import fit_formula, search_frontier
from .noise import seed_noise
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


def _csv(trials: list[Trial]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(t.to_row() for t in trials)
    return buffer.getvalue()


def finish_search(out: Path, config: SearchConfig, yardstick: Yardstick,
                  trials: list[Trial]) -> SearchResult:
    """Write the CSVs, fit the formula on the frontier, save it, and return the result."""
    out = Path(out)
    write_atomically(out / "trials.csv", _csv(trials))
    write_atomically(out / "frontier.csv", _csv(search_frontier(config, trials)))
    formula = fit_formula(config, yardstick, trials)
    formula.save(out / "formula.json")
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
    """The run as plain data: counts, frontier, noise, and both formulas at a few budgets."""
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
    return {"out": str(result.path), "trials": len(trials),
            "ok": int((trials["status"] == "ok").sum()),
            "failed": int((~trials["status"].isin(["ok", "pending"])).sum()),
            "frontier": result.frontier[["c", "r", "d", "w", "resolution", "top1"]]
            .to_dict("records"),
            "seed_spread": result.seed_spread, "fidelity": result.fidelity,
            "formula": str(result.path / "formula.json"), "fit": result.formula.method,
            "quality": result.formula.quality_,
            "budgets": budgets}


Run = SearchResult  # the name of versions up to 0.1
