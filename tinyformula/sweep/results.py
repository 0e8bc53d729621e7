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
from ..formula.estimator import TinyFormula
from ..formula.loading import load_formula
from ..formula.solve import BudgetUnreachable
from .config import SearchConfig
from .fidelity import fidelity_report
from .fitting import check_fittable, effective_fit, fit_formula, inputs_key, search_frontier
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


CSV_KIND = FileKind("tinyformula trials CSV file", lambda path: path.open(
    encoding="utf-8").readline().rstrip("\r\n") == ",".join(COLUMNS))


def _csv(trials: list[Trial]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(t.to_row() for t in trials)
    return buffer.getvalue()


def stored_formula(path: Path, key: str) -> TinyFormula | None:
    """The formula already in ``path`` when it was fitted from exactly what a fit would read
    now (its saved inputs key equals ``key``, :func:`~.fitting.inputs_key`), else None."""
    if not path.is_file():
        return None
    try:
        stored = load_formula(path)
    except TinyFormulaError:
        return None
    return stored if getattr(stored, "inputs_key_", None) == key else None


def finish_search(out: Path, config: SearchConfig, yardstick: Yardstick,
                  trials: list[Trial], log=None) -> SearchResult:
    """Write the CSVs, fit the formula on the frontier (or reuse the stored one when nothing
    it is fitted from changed), save it, and return the result."""
    out = Path(out)
    write_atomically(out / "trials.csv", _csv(trials), CSV_KIND)
    write_atomically(out / "frontier.csv", _csv(search_frontier(config, trials)), CSV_KIND)
    key = inputs_key(config, yardstick, trials)
    formula = stored_formula(out / "formula.json", key)
    if formula is None:
        check_fittable(config, yardstick, trials)   # a refusal is the only line printed
        if log is not None:
            method, why = effective_fit(config, trials)
            if why:
                log(f"Note: {why}.")
            steps = ("a surrogate of every trial, GPs of r, d and top-1 along its best path"
                     if method == "surrogate" else
                     "GPs of r, d and top-1, the leave-one-out check")
            log(f"Fitting the formula ({method} fit: {steps}, and the bootstrap band)...")
        formula = fit_formula(config, yardstick, trials)
        formula.inputs_key_ = key
        formula.save(out / "formula.json")
    elif log is not None:
        log(f"Nothing changed since {out / 'formula.json'} was fitted: reusing it.")
    return SearchResult.from_trials(out, config, yardstick, trials, formula)


def load_run(path) -> SearchResult:
    """Read a run folder, finished or partial (the formula is None until the search ends)."""
    path = Path(path)
    config, yardstick, trials = read_search(path)
    formula = TinyFormula.load(path / "formula.json") if (path / "formula.json").exists() else None
    return SearchResult.from_trials(path, config, yardstick, trials, formula)


def unfinished(path: Path, pending: int, total: int) -> TinyFormulaError:
    """The refusal of a search that has not finished, for commands that need a finished one."""
    return TinyFormulaError(f"{path} holds an unfinished search ({pending} of {total} trials "
                            f"pending); finish it with 'tinyformula fit --out {path}' and the "
                            f"same options first")


def read_search(path: Path) -> tuple[SearchConfig, Yardstick, list[Trial]]:
    """A run folder's stored search: its settings, yardstick and trials (read only); raises
    TinyFormulaError when the folder holds no search or an empty one."""
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
    if config is None or yardstick is None:
        raise TinyFormulaError(f"{path} holds an empty search (no plan was written); run "
                               f"'tinyformula fit --out {path}' to start it")
    return config, yardstick, trials


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
            "formula": str(result.path / "formula.json"), "fit": result.formula.method,
            "quality": result.formula.quality_,
            "yardstick": result.yardstick.to_dict(), "unit": result.yardstick.unit,
            "reference": result.yardstick.reference, "budgets": budgets}


Run = SearchResult  # the name of versions up to 0.1
