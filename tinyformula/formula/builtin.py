"""The built-in formula: fitted on the published TinyNet A-E (ImageNet, 224 px), stored in
``tinyformula/formulas/efficientnet_b0.json`` (``scripts/make_builtin_formula.py`` rewrites
it with :func:`fit_builtin`)."""

from __future__ import annotations

from ..cost.yardstick import Yardstick
from ..nets.scale import Scale
from .estimator import TinyFormula
from .published import TINYNETS


def published_frontier() -> dict[str, list[float]]:
    """TinyNet A-E as a frontier, their c measured with our own cost model (224 px)."""

    yardstick = Yardstick("efficientnet_b0")
    return {"c": [yardstick.c(Scale(t.r, t.d, t.w)) for t in TINYNETS],
            "r": [t.r for t in TINYNETS], "d": [t.d for t in TINYNETS],
            "w": [t.w for t in TINYNETS]}


def fit_builtin() -> TinyFormula:
    """Refit the built-in efficientnet_b0 formula (what ``formulas/efficientnet_b0.json`` holds)."""
    return TinyFormula("efficientnet_b0", resolution_base=224, num_classes=1000,
                       source="built-in: the published TinyNet A-E (ImageNet, 224 px)",
                       noise_bounds=(1e-8, 1e-3), monotone=False).fit(published_frontier())
