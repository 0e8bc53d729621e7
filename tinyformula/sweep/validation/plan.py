"""What a validation trains: each formula's configuration at each budget (:class:`Entry`), the
frontier points retrained for the fidelity, and the trainings they need (:class:`Training`),
each network trained once per seed and schedule however many formulas recommend it.

The formulas at each budget, every width solved to the budget within 2% below it:

* the formulas under test (by default the run's own, named ``fitted``);
* the baselines: ``giant``, ``published`` (efficientnet_b0 only) and ``fast`` (see
  :mod:`tinyformula.formula.baselines`), and ``searched``: the best trial the search itself
  trained near the budget (its seed, top rung, c within x/÷ :data:`SEARCHED_WINDOW`), its r
  and d kept and its width solved to the budget like the others'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ...core.errors import TinyFormulaError
from ...cost.yardstick import Configuration, Yardstick
from ...formula.baselines import baseline_recommendation
from ...formula.estimator import TinyFormula
from ...formula.solve import TOLERANCE, solve_budget
from ...nets.scale import Scale
from ..space import network_key
from .config import SEARCHED, Schedule

SEARCHED_WINDOW = 1.25   # the searched baseline: trials with c in [c / 1.25, c * 1.25]


@dataclass(frozen=True)
class Entry:
    """One formula's configuration at one budget (``config`` None where it has none, and
    ``note`` says why); ``network`` names the network it builds (two entries of one network
    are one training)."""

    budget: float
    formula: str
    tested: bool
    config: Configuration | None
    network: str | None = None
    note: str = ""

    @property
    def short(self) -> bool:
        """Whether its network lands more than the solver's tolerance below the budget (no
        width near its r and d comes closer): it trains with less compute than the others."""
        return self.config is not None and self.config.c < self.budget * (1 - TOLERANCE) - 1e-12

    def to_dict(self) -> dict:
        return {"c_budget": self.budget, "formula": self.formula, "tested": self.tested,
                **(self.config.to_dict() if self.config else {}), "network": self.network,
                "note": self.note}


@dataclass(frozen=True)
class Training:
    """One network trained with one seed on one schedule."""

    network: str
    seed: int
    schedule: Schedule
    config: Configuration

    @property
    def key(self) -> tuple[str, int, int, int]:
        return (self.network, self.seed, self.schedule.train_size, self.schedule.epochs)


def network_digest(yardstick: Yardstick, config: Configuration) -> str:
    """A short name of the network ``config`` builds (its input size and layer tree)."""
    return hashlib.sha256(repr(network_key(yardstick, config)).encode()).hexdigest()[:16]


def plan_entries(yardstick: Yardstick, budgets: Sequence[float],
                 tested: Mapping[str, TinyFormula], baselines: Sequence[str],
                 trials) -> list[Entry]:
    """Every formula's entry at every budget: the tested formulas', then the baselines'.
    ``trials``: the search's finished trials at its top rung and seed (a DataFrame), for the
    ``searched`` baseline."""
    entries = []
    for c in budgets:
        for name, formula in tested.items():
            entries.append(_entry(yardstick, c, name, True, lambda c=c, f=formula: f.recommend(
                c, num_classes=yardstick.num_classes,
                resolution_base=yardstick.resolution_base).config))
        for name in baselines:
            if name == SEARCHED:
                entries.append(searched_entry(yardstick, c, trials))
            else:
                entries.append(_entry(yardstick, c, name, False, lambda c=c, n=name:
                                      baseline_recommendation(n, yardstick, c).config))
    return entries


def _entry(yardstick: Yardstick, c: float, name: str, tested: bool, solve,
           note: str = "") -> Entry:
    try:
        config = solve()
    except TinyFormulaError as error:  # BudgetUnreachable included
        return Entry(c, name, tested, None, note=f"unavailable: {error}")
    entry = Entry(c, name, tested, config, network_digest(yardstick, config), note)
    if not entry.short:
        return entry
    below = (f"lands at c = {config.c:.4g} ({config.c / c - 1:+.1%}): no width near its r and "
             f"d comes within {TOLERANCE:.0%} of the budget, so it trains with less compute "
             f"than the others")
    return replace(entry, note=f"{note}; {below}" if note else below)


def searched_entry(yardstick: Yardstick, c: float, trials) -> Entry:
    """The ``searched`` baseline at budget c: the search's best trial near c, its width solved
    to c."""
    near = trials[(trials["c"] >= c / SEARCHED_WINDOW) & (trials["c"] <= c * SEARCHED_WINDOW)]
    if not len(near):
        return Entry(c, SEARCHED, False, None,
                     note=f"unavailable: the search trained no network with c within x/÷"
                          f"{SEARCHED_WINDOW:g} of {c:g}")
    best = near.loc[near["top1"].idxmax()]
    note = (f"trial {int(best['id'])} of the search (c={best['c']:.3g}, r={best['r']:.3g}, "
            f"d={best['d']:.3g}, w={best['w']:.3g}, top-1 {best['top1']:.1%}), width solved "
            f"to c={c:g}")
    return _entry(yardstick, c, SEARCHED, False,
                  lambda: solve_budget(yardstick, c, float(best["r"]), float(best["d"])), note)


def fidelity_points(yardstick: Yardstick, frontier, count: int) -> list[dict]:
    """Up to ``count`` points of the search's frontier (a DataFrame sorted by c), spread
    evenly along it: each with its configuration as trained, its network and its score in
    the search (``short``)."""
    rows = frontier.sort_values("c").to_dict("records")
    if count <= 0 or not rows:
        return []
    if len(rows) > count:
        picks = sorted({round(i * (len(rows) - 1) / max(count - 1, 1)) for i in range(count)})
        rows = [rows[i] for i in picks]
    points = []
    for row in rows:
        config = yardstick.measure(Scale(row["r"], row["d"], row["w"]))
        points.append({"trial": int(row["id"]), "c": config.c, "r": config.r, "d": config.d,
                       "w": config.w, "resolution": config.resolution, "short": row["top1"],
                       "network": network_digest(yardstick, config), "config": config})
    return points


def plan_trainings(entries: Sequence[Entry], schedules: Sequence[Schedule],
                   seeds: Sequence[int], fidelity: Sequence[dict]) -> list[Training]:
    """The distinct trainings, in the order they run: on each schedule, seed by seed, every
    available entry; then the fidelity points with the first seed on the longest schedule."""
    planned: dict[tuple, Training] = {}
    for schedule in schedules:
        for seed in seeds:  # seed by seed: an interrupted validation has whole seeds done
            for entry in entries:
                if entry.config is None or entry.network is None:
                    continue
                training = Training(entry.network, seed, schedule, entry.config)
                planned.setdefault(training.key, training)
    for point in fidelity:
        training = Training(point["network"], seeds[0], schedules[-1], point["config"])
        planned.setdefault(training.key, training)
    return list(planned.values())
