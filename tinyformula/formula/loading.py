"""One way to load a formula for use: the built-in one, a formula file or a fitted object,
checked against what the caller will use it for (its base, its cost, this machine).

Every command and API path that answers a budget from a formula (``predict``, ``compare``,
``build``, ``train --flops``, ``create_model``) loads it here, so a formula gets the same
checks wherever it is used: every value of its file against the file's schema
(:mod:`.file_format`), its base, its cost, and for a cost that belongs to a machine (latency)
the machine.
"""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from ..nets.bases import base_name
from .estimator import TinyFormula

DEFAULT_BASE = "efficientnet_b0"


def resolve(source) -> tuple[TinyFormula, str]:
    """A formula named by the user, and how to name it in messages: a path to a formula
    file (every value checked). The one place a new kind of name (a formula zoo's
    ``zoo:NAME``) would be told apart from a path."""
    return TinyFormula.load(source), str(source)


def load_formula(formula=None, *, base: str | None = None,
                 cost: str | None = None) -> TinyFormula:
    """The formula to answer budgets with.

    Parameters
    ----------
    formula : None, str, path or TinyFormula
        None: the built-in formula of ``base``; ``"zoo:BASE/DATASET"``: a formula of the zoo
        (:mod:`.zoo`); a path: a formula file (every value checked); a fitted
        :class:`TinyFormula` (its parameters checked).
    base : str, optional
        The base the caller builds; a formula fitted on another base is refused.
    cost : str, optional
        The cost the caller's budgets are in; a formula fitted for another cost is refused.
        None: the formula's own cost (the caller then names it in what it prints).

    A formula fitted on a cost that belongs to a machine (latency) is refused on another one.
    """
    if base is not None:
        base = base_name(base)   # a spec file's path names the base it registers
    if formula is None:
        loaded = TinyFormula.builtin(base or DEFAULT_BASE)
        origin = "the built-in formula"
    elif isinstance(formula, TinyFormula):
        formula._check_fitted()
        formula.yardstick  # its base, classes, resolution and cost, checked
        loaded, origin = formula, "the formula"
    elif is_zoo_name(formula):
        loaded, origin = from_zoo(formula), str(formula)
    elif isinstance(formula, str) or hasattr(formula, "__fspath__"):
        loaded, origin = resolve(formula)
    else:
        raise TinyFormulaError(f"formula must be a path to a formula file or a fitted "
                               f"TinyFormula, got {type(formula).__name__}")
    if base is not None and base != loaded.base:
        raise TinyFormulaError(f"{origin} was fitted on {loaded.base}, not {base}; drop --base "
                               f"or pass a formula for {base}")
    if cost is not None and cost != loaded.cost:
        raise TinyFormulaError(
            f"{origin} was fitted with c in {loaded.yardstick.describe_cost()}, not {cost}: a "
            f"formula answers budgets in its own cost only; fit one with "
            f"'tinyformula fit --cost {cost}'")
    if loaded.yardstick.meter.machine_bound:
        from ..cost.latency.measure import machine_description

        if not getattr(loaded, "machine_", None):
            raise TinyFormulaError(f"{origin} is a {loaded.cost} formula that names no machine; "
                                   f"fit a {loaded.cost} formula on this machine")
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
