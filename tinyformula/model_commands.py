"""Handlers of the model commands: ``build``, ``export`` and ``train --recipe final``.

Like ``commands.py``: one handler per command, each returning the exit status; bad input
raises :class:`TinyFormulaError` (one line, exit status 2) before any file is written.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .commands import _millions, _print_json, _print_rows
from .errors import TinyFormulaError

FINAL_ONLY = ("out", "teacher", "kd_temperature", "kd_weight", "ema")


def _check_output_file(path) -> Path:
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
    from .models import create_model, load_model

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
            from .formula import TinyFormula

            formula = TinyFormula.load(formula)
            base = formula.base
        return create_model(base or "efficientnet_b0", args.flops, formula, num_classes,
                            resolution_base=resolution_base, seed=seed)
    r, d, w = explicit
    return create_model(args.base or "efficientnet_b0", num_classes=num_classes, r=r, d=d, w=w,
                        resolution_base=resolution_base, seed=seed)


def _config_rows(config: dict) -> list[tuple[str, str]]:
    rows = [("base", config["base"]),
            ("scale", f"r={config['r']:.4g} d={config['d']:.4g} w={config['w']:.4g}"),
            ("resolution", f"{config['resolution']} px  (int({config['resolution_base']} x r))"),
            ("classes", str(config["num_classes"])),
            ("FLOPs", _millions(config["flops"])),
            ("params", _millions(config["params"])),
            ("c", f"{config['c']:.4f}" + (f"  (budget {config['budget']:g})"
                                          if config.get("budget") is not None else "")),
            ("formula", config["formula"])]
    return rows


# -- tinyformula build ---------------------------------------------------------------------------

def cmd_build(args) -> int:
    from .models import save_model

    out = _check_output_file(args.out)
    model = choose_model(args, args.num_classes, args.resolution_base, args.seed)
    save_model(model, out)
    if args.json:
        _print_json({**model.tinyformula, "out": str(out)})
        return 0
    _print_rows(_config_rows(model.tinyformula) + [("written", f"{out} (untrained weights "
                                                               f"and configuration)")])
    return 0


# -- tinyformula export --------------------------------------------------------------------------

def cmd_export(args) -> int:
    from .data import load_dataset
    from .export import export_model
    from .models import load_model

    out = _check_output_file(args.out)
    model = load_model(args.model)
    name = args.data or (model.tinyformula.get("data") or {}).get("name") or "fashion-mnist"
    data = load_dataset(name, args.data_dir)
    report = export_model(model, args.format, out, data, args.images)
    if args.json:
        _print_json(report.to_dict())
    else:
        _print_rows([
            ("written", f"{report.path} ({report.format})"),
            ("checked on", f"{report.images} held-out {report.data} images"),
            ("max |diff|", f"{report.max_abs_diff:.3g}  (logits against torch eager)"),
            ("top-1", f"{100 * report.top1_exported:.2f} % exported, "
                      f"{100 * report.top1_torch:.2f} % torch  (same arg-max on "
                      f"{100 * report.same_predictions:.1f} % of the images)"),
            ("multiply-adds", f"{report.macs_exported:,} in the exported graph, "
                              f"{report.macs_cost_model:,} by the cost model"),
            ("check", "passed" if report.ok else f"FAILED: {report.message}")])
    return 0 if report.ok else 1


# -- tinyformula train --recipe final ------------------------------------------------------------

def check_recipe_options(args) -> None:
    """Options that only the final recipe reads are refused with the search recipe."""
    if args.recipe == "final":
        if not args.out:
            raise TinyFormulaError("--recipe final needs --out DIR (checkpoint, weights, card)")
        if args.teacher is None:
            for name in ("kd_temperature", "kd_weight"):
                if getattr(args, name) is not None:
                    raise TinyFormulaError(f"--{name.replace('_', '-')} needs --teacher")
        return
    for name in FINAL_ONLY + ("model",):
        if getattr(args, name) is not None:
            raise TinyFormulaError(f"--{name.replace('_', '-')} needs --recipe final (the "
                                   f"search recipe trains a fresh model and writes nothing)")


def cmd_train_final(args) -> int:
    from .data import load_dataset
    from .models import load_model
    from .recipe import RecipeConfig, train_final

    settings = dict(train_size=args.train_size, batch_size=args.batch_size,
                    optimizer=args.optimizer, lr=args.lr, seed=args.seed, device=args.device,
                    val_size=args.val_size)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.ema is not None:
        settings["ema"] = args.ema or None
    if args.kd_temperature is not None:
        settings["kd_temperature"] = args.kd_temperature
    if args.kd_weight is not None:
        settings["kd_weight"] = args.kd_weight
    recipe = RecipeConfig(**settings)
    teacher = load_model(args.teacher, "teacher") if args.teacher else None
    data = load_dataset(args.data, args.data_dir)
    model = choose_model(args, data.num_classes, args.resolution_base or data.resolution_base,
                         args.seed)
    command = shlex.join(["tinyformula"] + list(getattr(args, "argv", sys.argv[1:])))
    try:
        card = train_final(data, model, args.out, recipe, teacher=teacher,
                           teacher_path=args.teacher, command=command,
                           progress=not (args.quiet or args.json))
    except KeyboardInterrupt:
        print(f"tinyformula train: interrupted; every finished epoch is saved in {args.out}. "
              f"Run the same command again to continue.", file=sys.stderr)
        return 130
    if args.json:
        _print_json({"out": str(args.out), **{k: card[k] for k in (
            "status", "top1", "top1_raw", "top1_ema", "flops", "params", "seconds")},
            "resolution": card["model"]["resolution"], "epochs": len(card["epochs"])})
        return 0 if card["status"] == "done" else 1
    config = card["model"]
    last = card["epochs"][-1] if card["epochs"] else {}

    def pct(value):
        return "-" if value is None else f"{100 * value:.2f} %"

    _print_rows(_config_rows(config) + [
        ("data", f"{card['data']['name']}: {card['data']['train_images']:,} training images, "
                 f"top-1 on {card['data']['scored_on']}. {card['data']['note']}"),
        ("status", card["status"] + (f" ({card.get('message')})" if card.get("message") else "")),
        ("epochs", f"{last.get('epoch', 0)} of {recipe.epochs}"),
        ("top-1", f"{pct(card['top1'])}  (saved weights; raw {pct(card['top1_raw'])}, "
                  f"EMA {pct(card['top1_ema'])})"),
        ("seconds", f"{card['seconds']:.1f}  (training and scoring)"),
        ("written", f"{args.out}/: model.pt, card.json, curve.png, checkpoint.pt")])
    return 0 if card["status"] == "done" else 1
