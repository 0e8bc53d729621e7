"""From a budget to a ``torch.nn.Module``: ``create_model``.

``create_model`` builds the network a formula recommends for a relative budget c (the built-in
Tiny Formula, a fitted ``formula.json``, or EfficientNet's inverted giant formula), or the one
given by explicit r, d, w. Its configuration rides along as the plain dict ``model.tinyformula``
(like timm's ``pretrained_cfg``): ``base, r, d, w, resolution, resolution_base, num_classes,
flops, params, c`` (relative to the base at r = d = w = 1, same classes and resolution base,
in the cost ``cost``: FLOPs unless a formula of another cost chose the model), ``budget``
(the c asked for, or None) and ``formula`` (where r, d and w came from).
Model files are :mod:`.files`' concern.
"""

from __future__ import annotations

from ..core.constraints import SEED, OrNone, declared
from ..core.errors import TinyFormulaError
from ..core.schema import Text
from ..cost.budgets import relative_budget
from ..cost.yardstick import Configuration, Yardstick
from ..formula import giant_recommendation, load_formula
from ..nets.bases import base_record, get_base, restore_base
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE
from ..nets.scale import MULTIPLIERS, Scale

GIANT = "giant"                  # ``formula="giant"``: EfficientNet's compound formula inverted


def _recommend(formula, base: str, budget, num_classes: int | None,
               resolution_base: int | None) -> tuple[Configuration, float, Yardstick, str]:
    """(configuration, c, yardstick, source): what the formula gives for ``budget`` (typed:
    c, or an amount with its unit), the budget as c, and the yardstick c is measured with
    (the formula's cost, at these classes and base resolution).

    The one place that calls the formula and solver APIs (``TinyFormula.recommend``,
    ``solve_giant``). ``formula``: None (the built-in formula of ``base``), a path to a fitted
    ``formula.json``, a :class:`TinyFormula`, or ``"giant"``.
    """
    if isinstance(formula, str) and formula == GIANT:
        yardstick = Yardstick(base or "efficientnet_b0",
                              1000 if num_classes is None else num_classes, resolution_base)
        c = relative_budget(budget, yardstick, flag="budget")
        if c > 1:
            raise TinyFormulaError(f"c={c:g}: the giant formula is inverted here to shrink "
                                   f"networks; give a budget in (0, 1]")
        rec = giant_recommendation(yardstick, c)
        return (rec.config, c, yardstick,
                "EfficientNet's compound (giant) formula, inverted")
    formula = load_formula(formula, base=base)  # every check, as predict makes them
    c = formula.budget_c(budget, num_classes, resolution_base)
    rec = formula.recommend(c, num_classes=num_classes, resolution_base=resolution_base)
    yardstick = formula.yardstick_for(num_classes, resolution_base)
    return (rec.config, c, yardstick,
            formula.source or f"fitted formula for {formula.base}")


def model_config(yardstick: Yardstick, scale: Scale, budget: float | None = None,
                 formula: str = "explicit r, d, w", budget_as_typed: str | None = None,
                 config: Configuration | None = None) -> dict:
    """The ``model.tinyformula`` dict of ``yardstick``'s base at ``scale``: its FLOPs and
    params, and ``c`` (with ``budget``, as c and as typed) in the yardstick's cost (a
    formula's own cost), with what c = 1 is in that cost (``reference``, in ``unit``), so c
    converts to an absolute amount and back. ``config``: the measured configuration, when
    the caller has it (a latency yardstick measures again otherwise)."""
    config = config or yardstick.measure(scale)
    record = base_record(yardstick.base)
    return {"base": yardstick.base, "r": scale.r, "d": scale.d, "w": scale.w,
            "resolution": config.resolution, "resolution_base": yardstick.resolution_base,
            "num_classes": yardstick.num_classes, "flops": config.flops,
            "params": config.params, "c": config.c, "budget": budget,
            "budget_as_typed": budget_as_typed, "cost": yardstick.cost,
            "unit": yardstick.unit, "reference": yardstick.reference, "formula": formula,
            # A base not built in travels with the model (its spec, or its factory's name).
            **({"base_spec": record} if record is not None else {})}


# ``flops`` is not declared here: a budget may be typed with its unit ("100M"), and
# ``parse_budget`` checks it in one line wherever it is turned into c.
@declared({"base": OrNone(Text(max_length=200, empty=False), "the formula's"),
           "num_classes": OrNone(NUM_CLASSES, "the formula's, 1000 without one"),
           **{name: OrNone(MULTIPLIERS[name], "1") for name in ("r", "d", "w")},
           "resolution_base": OrNone(RESOLUTION_BASE, "the formula's, the base's without one"),
           "seed": OrNone(SEED, "torch's global generator")})
def create_model(base: str | None = None, flops: float | str | None = None, formula=None,
                 num_classes: int | None = None, *, r: float | None = None,
                 d: float | None = None, w: float | None = None,
                 resolution_base: int | None = None, seed: int | None = None):
    """A freshly initialised ``torch.nn.Module`` for a budget, with ``model.tinyformula``.

    ``flops``: the budget, in any unit the formula's cost knows: a relative c (0.25: the
    model's cost / the base's at r = d = w = 1), or an absolute amount as a string with its
    unit (``"100M"`` or ``"100MFLOPs"``: fvcore's FLOPs, one multiply-add each, so FLOPs =
    MACs; ``"1.5Mparams"`` for a params formula, ``"3ms"`` for a latency one), counted at
    ``num_classes`` and ``resolution_base`` (``resolution_base=224``: a budget for a model
    fed 224 px images). r and d come from ``formula`` (None: the built-in formula of
    ``base``; a path to a fitted ``formula.json``; a ``TinyFormula``; or ``"giant"``) and w
    is solved to land within 2% below the budget. Or give ``r``, ``d``, ``w`` explicitly
    (a missing one is 1); with neither, the base itself. ``num_classes`` /
    ``resolution_base`` default to the formula's (1000 and the base's own 224 without a
    formula). ``base``: the base network (default: the formula's; efficientnet_b0 without
    one). ``seed`` fixes the initial weights (None: torch's global RNG). Feed the model
    ``model.tinyformula["resolution"]``-pixel RGB images.
    """
    explicit = any(v is not None for v in (r, d, w))
    if flops is not None and explicit:
        raise TinyFormulaError("give a budget (flops=) or explicit r, d, w, not both")
    if formula is not None and flops is None:
        raise TinyFormulaError("a formula needs a budget: pass flops=C (or flops='100M')")
    if base is not None:
        base = get_base(base).name   # a spec file's path: the base it registers
    if flops is not None:
        measured, c, yardstick, source = _recommend(formula, base, flops, num_classes,
                                                    resolution_base)
        config = model_config(yardstick, measured.scale, budget=c, formula=source,
                              budget_as_typed=str(flops), config=measured)
    else:
        scale = Scale(1.0 if r is None else r, 1.0 if d is None else d, 1.0 if w is None else w)
        yardstick = Yardstick(base or "efficientnet_b0",
                              1000 if num_classes is None else num_classes, resolution_base)
        config = model_config(yardstick, scale,
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
