"""From a budget to a ``torch.nn.Module``: ``create_model``.

``create_model`` builds the network a formula recommends for a relative budget c (the built-in
Tiny Formula, a fitted ``formula.json``, or EfficientNet's inverted giant formula), or the one
given by explicit r, d, w. Its configuration rides along as the plain dict ``model.tinyformula``
(like timm's ``pretrained_cfg``): ``base, r, d, w, resolution, resolution_base, num_classes,
flops, params, c`` (FLOPs relative to the base at r = d = w = 1, same classes and resolution
base), ``budget`` (the c asked for, or None) and ``formula`` (where r, d and w came from).
Model files are :mod:`.files`' concern.
"""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from ..cost.yardstick import Yardstick
from ..formula import giant_recommendation, load_formula
from ..nets.bases import base_record, get_base, restore_base
from ..nets.scale import Scale

GIANT = "giant"                  # ``formula="giant"``: EfficientNet's compound formula inverted


def _recommend(formula, base: str, c: float, num_classes: int | None,
               resolution_base: int | None) -> tuple[Scale, Yardstick, str]:
    """(scale, yardstick, source): what the formula gives for budget ``c``, and the yardstick
    c is measured with (the formula's cost, at these classes and base resolution).

    The one place that calls the formula and solver APIs (``TinyFormula.recommend``,
    ``solve_giant``). ``formula``: None (the built-in formula of ``base``), a path to a fitted
    ``formula.json``, a :class:`TinyFormula`, or ``"giant"``.
    """
    if isinstance(formula, str) and formula == GIANT:
        yardstick = Yardstick(base, num_classes or 1000, resolution_base)
        if isinstance(c, bool) or not (isinstance(c, (int, float)) and 0 < c <= 1):
            raise TinyFormulaError(f"c={c!r}: the giant formula is inverted here to shrink "
                                   f"networks; give a budget in (0, 1]")
        rec = giant_recommendation(yardstick, c)
        return rec.config.scale, yardstick, "EfficientNet's compound (giant) formula, inverted"
    formula = load_formula(formula, base=base)
    c = formula.check_budget(c)
    rec = formula.recommend(c, num_classes=num_classes, resolution_base=resolution_base)
    yardstick = formula.yardstick_for(num_classes, resolution_base)
    return rec.config.scale, yardstick, formula.source or f"fitted formula for {formula.base}"


def model_config(yardstick: Yardstick, scale: Scale, budget: float | None = None,
                 formula: str = "explicit r, d, w") -> dict:
    """The ``model.tinyformula`` dict of ``yardstick``'s base at ``scale``: its FLOPs and
    params, and ``c`` (with ``budget``) in the yardstick's cost (a formula's own cost)."""
    config = yardstick.measure(scale)
    record = base_record(yardstick.base)
    return {"base": yardstick.base, "r": scale.r, "d": scale.d, "w": scale.w,
            "resolution": config.resolution, "resolution_base": yardstick.resolution_base,
            "num_classes": yardstick.num_classes, "flops": config.flops,
            "params": config.params, "c": config.c, "budget": budget, "formula": formula,
            # A base not built in travels with the model (its spec, or its factory's name).
            **({"base_spec": record} if record is not None else {})}


def create_model(base: str = "efficientnet_b0", flops: float | None = None, formula=None,
                 num_classes: int | None = None, *, r: float | None = None,
                 d: float | None = None, w: float | None = None,
                 resolution_base: int | None = None, seed: int | None = None):
    """A freshly initialised ``torch.nn.Module`` for a budget, with ``model.tinyformula``.

    ``flops``: the relative budget c (FLOPs / the base's at r = d = w = 1); r and d come from
    ``formula`` (None: the built-in formula of ``base``; a path to a fitted ``formula.json``;
    a ``TinyFormula``; or ``"giant"``) and w is solved to land within 2% below c. Or give
    ``r``, ``d``, ``w`` explicitly (a missing one is 1); with neither, the base itself.
    ``num_classes`` / ``resolution_base`` default to the formula's (1000 and the base's own
    224 without a formula). ``seed`` fixes the initial weights (None: torch's global RNG).
    Feed the model ``model.tinyformula["resolution"]``-pixel RGB images.
    """
    explicit = any(v is not None for v in (r, d, w))
    if flops is not None and explicit:
        raise TinyFormulaError("give a budget (flops=) or explicit r, d, w, not both")
    if formula is not None and flops is None:
        raise TinyFormulaError("a formula needs a budget: pass flops=C")
    base = get_base(base).name   # a spec file's path: the base it registers
    if flops is not None:
        scale, yardstick, source = _recommend(formula, base, flops, num_classes,
                                              resolution_base)
        config = model_config(yardstick, scale, budget=float(flops), formula=source)
    else:
        scale = Scale(1.0 if r is None else r, 1.0 if d is None else d, 1.0 if w is None else w)
        config = model_config(Yardstick(base, num_classes or 1000, resolution_base), scale,
                              formula="explicit r, d, w" if explicit else "the base itself")
    return build_configured(config, seed)


def build_configured(config: dict, seed: int | None = None):
    """A fresh module built from a ``model.tinyformula`` configuration dict (``seed`` fixes
    its initial weights; None: torch's global RNG), with the dict attached."""
    import torch

    if "base_spec" in config:
        restore_base(config["base_spec"], "the model's configuration")
    network = get_base(config["base"])
    scale = Scale(config["r"], config["d"], config["w"])
    if seed is None:
        model = network.build(scale, config["num_classes"], config["resolution_base"])
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = network.build(scale, config["num_classes"], config["resolution_base"])
    model.tinyformula = dict(config)
    return model
