"""A formula's answer for a budget (:class:`Recommendation`), and the inverted giant formula's
answer, which needs no fitted formula (:func:`giant_recommendation`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..cost.budgets import check_budget
from ..cost.yardstick import Configuration, Yardstick
from .solve import solve_giant


@dataclass(frozen=True)
class Recommendation:
    """A formula's answer for a budget: the configuration to build and how it was chosen.

    ``budget`` is the relative cost asked for; ``config.c`` the cost the network achieves
    (within 2% below the budget where a resolution allows it). ``formula`` is ``"tiny"`` (r
    and d from the GPs, with their standard deviations) or ``"giant"`` (EfficientNet's
    compound scaling inverted, with its ``phi``). ``top1`` and ``top1_std``: the top-1 one
    training of this network is expected to reach and that training's standard deviation (the
    GP's uncertainty and the search's seed noise), under the search's schedule (only for
    formulas fitted by a search). ``band``: the formula's band at
    this budget (``r_lo, r_hi, d_lo, d_hi, top1_cost``; see :mod:`tinyformula.formula.band`),
    None where it has none.
    """

    budget: float
    config: Configuration
    formula: str = "tiny"
    r_std: float | None = None
    d_std: float | None = None
    extrapolated: bool = False
    phi: float | None = None
    top1: float | None = None
    top1_std: float | None = None
    cost: str = "flops"
    band: dict | None = None

    def __getattr__(self, name):
        # r, d, w, resolution, flops, params and c read through to the configuration.
        if name in Configuration.__dataclass_fields__:
            return getattr(self.config, name)
        raise AttributeError(name)

    def to_dict(self) -> dict:
        """Flat, for JSON: formula, the cost c is in, budget, the configuration's fields (c
        achieved), the GP
        standard deviations, whether c was extrapolated, phi for the giant formula, and the
        expected top-1 with its standard deviation, and the band (None where there is none)."""
        return {"formula": self.formula, "cost": self.cost, "budget": self.budget,
                **self.config.to_dict(),
                "r_std": self.r_std, "d_std": self.d_std, "extrapolated": self.extrapolated,
                "phi": self.phi, "top1": self.top1, "top1_std": self.top1_std,
                "band": self.band}


def giant_recommendation(yardstick: Yardstick, c: float) -> Recommendation:
    """EfficientNet's inverted giant formula at budget c under ``yardstick`` (no Tiny Formula
    needed): see :meth:`TinyFormula.giant`."""
    c = check_budget(c)
    phi, config = solve_giant(yardstick, c)
    return Recommendation(budget=c, config=config, formula="giant", phi=phi,
                          cost=yardstick.cost)
