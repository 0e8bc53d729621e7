"""The model a command's flags name (``--model``, ``--budget [--formula]`` or ``--r/--d/--w``),
its configuration as rows, and a model file to write."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import TinyFormulaError
from ..cost.meters import get_meter
from .output import millions, multiplier


def check_output_file(path, kind=None) -> Path:
    """``--out FILE`` checked before any work: a file name in an existing folder, and (with
    ``kind``, a :class:`~tinyformula.core.files.FileKind`) no foreign file there."""
    from ..core.files import check_replaceable
    from ..core.paths import check_output_path

    path = check_output_path("--out", path)
    if path.is_dir():
        raise TinyFormulaError(f"--out {path} is a directory; give a file name")
    return check_replaceable(path, kind)


def choose_model(args, num_classes: int | None, resolution_base: int | None,
                 seed: int | None):
    """The model named by exactly one of ``--model``, ``--budget [--formula]`` or
    ``--r/--d/--w`` (none: the base itself), built with these classes and resolution base."""
    from ..models.create import create_model
    from ..models.files import load_model

    explicit = [getattr(args, k) for k in ("r", "d", "w")]
    given = [name for name, on in (("--model", getattr(args, "model", None)),
                                   ("--budget", args.budget is not None),
                                   ("--r/--d/--w", any(v is not None for v in explicit))) if on]
    if len(given) > 1:
        raise TinyFormulaError(f"give one of --model, --budget or --r/--d/--w, not "
                               f"{' and '.join(given)}")
    if args.formula and args.budget is None:
        raise TinyFormulaError("--formula needs a budget: add --budget (0.25, 100M, 3ms)")
    if getattr(args, "model", None):
        for flag, value in (("--base", args.base), ("--resolution-base",
                                                    getattr(args, "resolution_base", None))):
            if value is not None:
                raise TinyFormulaError(f"{flag} does not apply with --model (the model file "
                                       f"holds its base and resolution); drop it")
        model = load_model(args.model)
        if num_classes is not None and model.tinyformula.get("num_classes") != num_classes:
            raise TinyFormulaError(f"{args.model} has {model.tinyformula.get('num_classes')} "
                                   f"classes, the data has {num_classes}")
        return model
    if args.budget is not None:
        formula = args.formula
        if formula and formula != "giant":  # loaded for use, with every check
            from ..formula.loading import load_formula

            formula = load_formula(formula, base=args.base, cost=getattr(args, "cost", None))
        return create_model(args.base, args.budget, formula, num_classes,
                            resolution_base=resolution_base, seed=seed)
    r, d, w = explicit
    return create_model(args.base or "efficientnet_b0", num_classes=num_classes, r=r, d=d, w=w,
                        resolution_base=resolution_base, seed=seed)


def config_rows(config: dict) -> list[tuple[str, str]]:
    """A model's configuration as rows: r, d and w as typed back, its cost in every unit,
    and its c with what c = 1 is (files written before 0.3 lack the reference)."""
    rows = [("base", config["base"]),
            ("scale", f"r={multiplier(config['r'])} d={multiplier(config['d'])} "
                      f"w={multiplier(config['w'])}"),
            ("resolution", f"{config['resolution']} px  (int({config['resolution_base']} x r))"),
            ("classes", str(config["num_classes"])),
            ("FLOPs", f"{millions(config['flops'])}  (= multiply-adds)"),
            ("params", millions(config["params"]))]
    c = f"{config['c']:.4f}"
    if config.get("reference") is not None:
        meter = get_meter(cost_name(config))
        c += f" = {meter.format(config['c'] * config['reference'])}"
    else:
        c += f" {cost_name(config)}"
    if config.get("budget") is not None:
        typed = config.get("budget_as_typed")
        c += f"  (budget c = {config['budget']:.4g}" + (
            f", typed {typed}" if typed and typed != f"{config['budget']:g}" else "") + ")"
    rows.append(("c", c))
    if config.get("reference") is not None:
        meter = get_meter(cost_name(config))
        rows.append(("reference", f"c = 1 is {meter.format(config['reference'])} "
                                  f"({config['base']} at r = d = w = 1, "
                                  f"{config['resolution_base']} px, "
                                  f"{config['num_classes']} classes)"))
    rows.append(("formula", config["formula"]))
    return rows


def cost_name(config: dict) -> str:
    """The cost a model configuration's c counts, as ``--cost`` names it (flops for
    configurations written before costs were recorded in them)."""
    return str(config.get("cost") or "flops")
