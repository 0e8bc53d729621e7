"""One way to load a formula for use: the built-in one, a formula file or a fitted object,
checked against what the caller will use it for (its base, its cost, this machine)."""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from ..nets.bases import base_name
from .estimator import TinyFormula

DEFAULT_BASE = "efficientnet_b0"


def load_formula(formula=None, *, base: str | None = None,
                 cost: str | None = None) -> TinyFormula:
    """The formula to answer budgets with.

    Parameters
    ----------
    formula : None, str, path or TinyFormula
        None: the built-in formula of ``base``; a path: a formula file (every value
        checked); a fitted :class:`TinyFormula` as it is.
    base : str, optional
        The base the caller builds; a formula fitted on another base is refused.
    cost : str, optional
        The cost the caller's budgets are in; a formula fitted for another cost is refused.

    A formula fitted on a cost that belongs to a machine (latency) is refused on another one.
    """
    if base is not None:
        base = base_name(base)   # a spec file's path names the base it registers
    if formula is None:
        loaded = TinyFormula.builtin(base or DEFAULT_BASE)
        origin = "the built-in formula"
    elif isinstance(formula, TinyFormula):
        formula._check_fitted()
        loaded, origin = formula, "the formula"
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
