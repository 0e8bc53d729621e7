"""The model a command's flags name (``--model``, ``--flops [--formula]`` or ``--r/--d/--w``),
its configuration as rows, and a model file to write."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import TinyFormulaError
from .output import millions


def check_output_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise TinyFormulaError(f"--out {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise TinyFormulaError(f"cannot write {path}: folder {path.parent} does not exist")
    return path


def choose_model(args, num_classes: int | None, resolution_base: int | None,
                 seed: int | None):
    """The model named by exactly one of ``--model``, ``--flops [--formula]`` or
    ``--r/--d/--w`` (none: the base itself), built with these classes and resolution base."""
    from ..models.create import create_model
    from ..models.files import load_model

    explicit = [getattr(args, k) for k in ("r", "d", "w")]
    given = [name for name, on in (("--model", getattr(args, "model", None)),
                                   ("--flops", args.flops is not None),
                                   ("--r/--d/--w", any(v is not None for v in explicit))) if on]
    if len(given) > 1:
        raise TinyFormulaError(f"give one of --model, --flops or --r/--d/--w, not "
                               f"{' and '.join(given)}")
    if args.formula and args.flops is None:
        raise TinyFormulaError("--formula needs a budget: add --flops C")
    if getattr(args, "model", None):
        model = load_model(args.model)
        if num_classes is not None and model.tinyformula.get("num_classes") != num_classes:
            raise TinyFormulaError(f"{args.model} has {model.tinyformula.get('num_classes')} "
                                   f"classes, the data has {num_classes}")
        return model
    if args.flops is not None:
        formula = args.formula
        base = args.base
        if formula and formula != "giant" and base is None:
            from ..formula.loading import load_formula

            formula = load_formula(formula)   # a file or zoo:BASE/DATASET
            base = formula.base
        return create_model(base or "efficientnet_b0", args.flops, formula, num_classes,
                            resolution_base=resolution_base, seed=seed)
    r, d, w = explicit
    return create_model(args.base or "efficientnet_b0", num_classes=num_classes, r=r, d=d, w=w,
                        resolution_base=resolution_base, seed=seed)


def config_rows(config: dict) -> list[tuple[str, str]]:
    rows = [("base", config["base"]),
            ("scale", f"r={config['r']:.4g} d={config['d']:.4g} w={config['w']:.4g}"),
            ("resolution", f"{config['resolution']} px  (int({config['resolution_base']} x r))"),
            ("classes", str(config["num_classes"])),
            ("FLOPs", millions(config["flops"])),
            ("params", millions(config["params"])),
            ("c", f"{config['c']:.4f}" + (f"  (budget {config['budget']:g})"
                                          if config.get("budget") is not None else "")),
            ("formula", config["formula"])]
    return rows
