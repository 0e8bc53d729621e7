"""One way to load a formula for use: the built-in one, a formula file or a fitted object,
checked against what the caller will use it for (its base, its cost, this machine)."""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from .estimator import TinyFormula

DEFAULT_BASE = "efficientnet_b0"


def load_formula(formula=None, *, base: str | None = None,
                 cost: str | None = None) -> TinyFormula:
    """The formula to answer budgets with.

    Parameters
    ----------
    formula : None, str, path or TinyFormula
        None: the built-in formula of ``base``; ``"zoo:BASE/DATASET"``: a formula of the zoo
        (:mod:`.zoo`); a path: a formula file (every value checked); a fitted
        :class:`TinyFormula` as it is.
    base : str, optional
        The base the caller builds; a formula fitted on another base is refused.
    cost : str, optional
        The cost the caller's budgets are in; a formula fitted for another cost is refused.

    A formula fitted on a cost that belongs to a machine (latency) is refused on another one.
    """
    if formula is None:
        loaded = TinyFormula.builtin(base or DEFAULT_BASE)
        origin = "the built-in formula"
    elif isinstance(formula, TinyFormula):
        formula._check_fitted()
        loaded, origin = formula, "the formula"
    elif is_zoo_name(formula):
        loaded, origin = from_zoo(formula), str(formula)
    else:
        loaded, origin = TinyFormula.load(formula), str(formula)
    if base is not None and base != loaded.base:
        raise TinyFormulaError(f"{origin} was fitted on {loaded.base}, not {base}; drop --base "
                               f"or pass a formula for {base}")
    if cost is not None and cost != loaded.cost:
        raise TinyFormulaError(
            f"{origin} was fitted with c in {loaded.yardstick.describe_cost()}, not {cost}: a "
            f"formula answers budgets in its own cost only; fit one with "
            f"'tinyformula fit --cost {cost}'")
    if loaded.yardstick.meter.machine_bound and loaded.machine_:
        from ..cost.latency.measure import machine_description

        here = machine_description(loaded.device)
        if loaded.machine_ != here:
            raise TinyFormulaError(f"{origin} was fitted for {loaded.cost} on {loaded.machine_}; "
                                   f"this is {here}: fit a {loaded.cost} formula on this machine")
    return loaded


# -- the zoo: kept apart so that merges stay easy ----------------------------------------------

def is_zoo_name(formula) -> bool:
    """Whether ``formula`` names a zoo entry (``zoo:BASE/DATASET``)."""
    from .zoo import PREFIX

    return isinstance(formula, str) and formula.startswith(PREFIX)


def from_zoo(formula: str) -> TinyFormula:
    """The zoo's formula named ``zoo:BASE/DATASET`` (its evidence checked)."""
    from .zoo import PREFIX, zoo_formula

    return zoo_formula(formula[len(PREFIX):])
