"""``tinyformula train``: train one model, on the search's short schedule (``--recipe search``)
or with the final recipe (``--recipe final``: checkpointed, resumable, with a model card)."""

from __future__ import annotations

import shlex
import sys

from ..core.constraints import SEED, Real
from ..core.errors import TinyFormulaError
from ..core.signals import on_stop
from ..sweep.presets import PRESETS
from ..training.config import BASE_TEACHER, RecipeConfig, TrainConfig
from .arguments import add_model_choice, add_scale_arguments, checked
from .models import choose_model, config_rows
from .output import millions, print_json, print_rows, warn

TRAIN = TrainConfig.constraints


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train one scaled base on a dataset and score it",
        description="Train a base scaled by (r, d, w), or the model a formula gives for "
                    "--budget (c, 100M FLOPs, 3ms), or a --model file, and report its top-1 "
                    "on the dataset's held-out split. --recipe search (default): the search's "
                    "short schedule, with loss, images/s, FLOPs and params. --recipe final: "
                    "warm-up then cosine, label smoothing, a weight EMA, optional "
                    "re-parameterisation (--reparam) and distillation from --teacher (a model, "
                    "or 'base': the base network trained longer first), a checkpoint every "
                    "epoch in --out (kill it and run the same command to resume), a model card "
                    "and a training curve. Datasets: fashion-mnist, digits, cifar10, cifar100 "
                    "(32 px base resolution: the model sees int(32 r) px) and imagefolder:PATH "
                    "(224 px).",
        epilog="examples: tinyformula train --r 1 --d 1 --w 1 --data fashion-mnist "
               "--train-size 8192; tinyformula train --recipe final --model model.pt --data "
               "fashion-mnist --epochs 30 --out final/; tinyformula train --recipe final "
               "--budget 100M --resolution-base 224 --data fashion-mnist --reparam 2 "
               "--teacher base --out final/")
    add_scale_arguments(p, default=None)
    add_model_choice(p, "the data's: 32 for small images, 224 for folders")
    p.add_argument("--recipe", choices=("search", "final"), default="search",
                   help="search: the short schedule the search scores candidates with, "
                        "scored on the held-out split, nothing written (default); final: "
                        "the long recipe, checkpointed every epoch into --out")
    p.add_argument("--model", metavar="MODEL.pt",
                   help="the model file to train ('tinyformula build'): --recipe final starts "
                        "from its weights; --recipe search trains its architecture from a "
                        "fresh start, as the search does")
    p.add_argument("--out", metavar="DIR",
                   help="--recipe final: folder for checkpoint.pt, model.pt, card.json and "
                        "curve.png; the same command on the same DIR resumes")
    p.add_argument("--teacher", metavar="MODEL",
                   help="--recipe final: distil from this trained model (a model.pt or a "
                        "train --out folder) with the data's classes, checked on training "
                        "images first; or 'base': train the base network (r = d = w = 1) on "
                        "a longer schedule first, kept in a teacher-BASE-HASH folder beside "
                        "--out and reused by later runs with the same settings")
    checked(p, "--teacher-epochs", TRAIN["epochs"], default=None, metavar="E",
            help="--teacher base: the teacher's epochs (default: twice the student's)")
    checked(p, "--kd-temperature", RecipeConfig.constraints["kd_temperature"], default=None,
            metavar="T",
            help="distillation temperature (default 1, as GhostNetV3)")
    checked(p, "--kd-weight", RecipeConfig.constraints["kd_weight"], default=None, metavar="A",
            help="weight of the distillation loss, in [0, 1] (default 0.5: equal to the "
                 "cross-entropy's, as GhostNetV3)")
    checked(p, "--reparam", RecipeConfig.constraints["reparam"].inner, default=None,
            metavar="N",
            help="--recipe final: train every depthwise and 1x1 convolution as N parallel "
                 "k x k branches with their own BatchNorms (plus a 1x1 branch beside k x k "
                 "depthwise ones and a BatchNorm identity where shapes allow), folded "
                 "exactly into the plain network in every model file written (GhostNetV3's "
                 "re-parameterisation; each branch costs about one more convolution per "
                 "step)")
    checked(p, "--ema", Real(0, 1, closed="left", why="0 turns the EMA off"), default=None,
            metavar="DECAY",
            help="--recipe final: decay of the weight EMA, scored beside the raw weights "
                 "and saved (default 0.999; 0 turns it off)")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder holding the dataset's files (fashion-mnist: the four IDX "
                        "files; cifar: the python batches)")
    checked(p, "--train-size", TRAIN["train_size"].inner, default=None, metavar="N",
            help="train on N images, a subset fixed by the seed (default: all)")
    checked(p, "--epochs", TRAIN["epochs"], default=None, metavar="E",
            help="passes over the training images (default 1; 20 with --recipe final)")
    checked(p, "--batch-size", TRAIN["batch_size"], default=128, metavar="B",
            help="training batch size (default 128)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (Nesterov momentum 0.9, default: it learned fastest) or adamw")
    checked(p, "--lr", TRAIN["lr"].inner, default=None,
            help="peak learning rate (default: 0.05 sgd, 3e-3 adamw)")
    p.add_argument("--score-on", choices=("test", "holdout"), default="test",
                   help="test: the dataset's own held-out split, for most its official test "
                        "set (default); holdout: images held out from the training split, as "
                        "'tinyformula fit' ranks candidates (use it to choose between models)")
    checked(p, "--val-size", TRAIN["val_size"].inner, default=None, metavar="N",
            help="test: score on the first N test images (default: all); holdout: "
                 f"hold out N training images (default: {PRESETS['default'].val_size:,}, "
                 f"at most a fifth)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (CUDA if available), cpu or cuda")
    checked(p, "--seed", SEED, default=0,
            help="fixes the images used, their order, augmentation and initial weights")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false",
                   help="on CUDA, run the training step eagerly instead of replaying it as a "
                        "captured CUDA graph (default: graphed; no effect on CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: top1, loss, images_per_s, seconds, flops, "
                        "params, resolution, status (--recipe final: out, status, top1, "
                        "top1_raw, top1_ema, flops, params, seconds, train_seconds, "
                        "resolution, epochs, reparam, teacher, teacher_top1)")
    p.set_defaults(run=run)


def run(args) -> int:
    from dataclasses import replace

    from ..data import load_dataset
    from ..nets.bases import get_base
    from ..nets.scale import Scale
    from ..training.trainer import train

    check_recipe_options(args)
    if args.recipe == "final":
        return run_final(args)
    base = get_base(args.base or "efficientnet_b0")  # fail on a bad base or scale before
    scale = Scale(*(1.0 if v is None else v for v in (args.r, args.d, args.w)))  # loading data
    config = TrainConfig(train_size=args.train_size, epochs=args.epochs or 1,
                         batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                         seed=args.seed, device=args.device, val_size=args.val_size,
                         cuda_graph=args.cuda_graph)
    data = load_dataset(args.data, args.data_dir)
    resolution_base = args.resolution_base or data.resolution_base
    if args.budget is not None or args.model is not None:
        # The formula's model for this budget at the data's classes, or a model file's
        # architecture: trained from a fresh start, as the search trains its candidates.
        chosen = choose_model(args, data.num_classes, resolution_base, None).tinyformula
        base, scale = get_base(chosen["base"]), Scale(chosen["r"], chosen["d"], chosen["w"])
        resolution_base = chosen["resolution_base"]
    if args.score_on == "holdout":
        from ..data.holdout import carve_validation, holdout_size

        held_out = PRESETS["default"].val_size
        data = carve_validation(data, args.val_size or holdout_size(len(data.train_images),
                                                                    held_out))
        config = replace(config, val_size=None)
    result = train(data, base, scale, config, resolution_base=resolution_base,
                   progress=not args.quiet)
    if args.json:
        print_json({key: getattr(result, key) for key in
                     ("top1", "loss", "images_per_s", "seconds", "flops", "params",
                      "resolution", "status")})
        return 0
    ok = result.status == "ok"
    held_out = len(data.val_images) if config.val_size is None else min(config.val_size,
                                                                        len(data.val_images))
    rows = [("base", f"{base.name}  {scale}"),
            ("data", f"{data.name}: {result.images:,} training images seen, scored on "
                     f"{held_out:,} held-out ({data.val_source})"),
            ("status", result.status + (f"  ({result.message})" if result.message else "")),
            ("top-1", f"{100 * result.top1:.2f} %" if ok else "-"),
            ("loss", f"{result.loss:.4f}  (held-out cross-entropy)" if ok else "-"),
            ("images/s", f"{result.images_per_s:,.0f}  (training, {result.device}"
                         f"{', CUDA graph' if result.graphed else ''})"),
            ("seconds", f"{result.seconds:.1f}"),
            ("resolution", f"{result.resolution} px"),
            ("FLOPs", millions(result.flops)),
            ("params", millions(result.params))]
    print_rows(rows)
    if args.score_on == "test":
        print("\nScored on the dataset's own held-out split (for most datasets its official test "
              "set); 'tinyformula fit' ranks candidates on images held out from the training "
              "split instead. To choose between models use --score-on holdout, and keep the "
              "test set for the one you chose.")
    return 0


FINAL_ONLY = ("out", "teacher", "kd_temperature", "kd_weight", "ema", "reparam",
              "teacher_epochs")


def check_recipe_options(args) -> None:
    """Options that only the final recipe reads are refused with the search recipe."""
    if args.recipe == "final":
        if not args.out:
            raise TinyFormulaError("--recipe final needs --out DIR (checkpoint, weights, card)")
        if args.teacher is None:
            for name in ("kd_temperature", "kd_weight"):
                if getattr(args, name) is not None:
                    raise TinyFormulaError(f"--{name.replace('_', '-')} needs --teacher")
        if args.teacher_epochs is not None and args.teacher != BASE_TEACHER:
            raise TinyFormulaError("--teacher-epochs needs --teacher base (a teacher file is "
                                   "already trained)")
        return
    for name in FINAL_ONLY:
        if getattr(args, name) is not None:
            raise TinyFormulaError(f"--{name.replace('_', '-')} needs --recipe final (the "
                                   f"search recipe trains a fresh model and writes nothing)")


def run_final(args) -> int:
    from pathlib import Path

    from ..data import load_dataset
    from ..models.files import load_model
    from ..training.recipe import (
        base_teacher,
        check_output_folder,
        train_final,
        writable_folder,
    )
    from ..training.teacher import weaker_teacher

    check_output_folder(args.out)  # a folder holding a search or foreign files: refused first
    settings = dict(train_size=args.train_size, batch_size=args.batch_size,
                    optimizer=args.optimizer, lr=args.lr, seed=args.seed, device=args.device,
                    val_size=args.val_size, cuda_graph=args.cuda_graph)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.ema is not None:
        settings["ema"] = args.ema or None
    if args.kd_temperature is not None:
        settings["kd_temperature"] = args.kd_temperature
    if args.kd_weight is not None:
        settings["kd_weight"] = args.kd_weight
    if args.reparam is not None:
        settings["reparam"] = args.reparam
    recipe = RecipeConfig.of(**settings)
    from_file = args.teacher is not None and args.teacher != BASE_TEACHER
    teacher = load_model(args.teacher, "teacher") if from_file else None
    data = load_dataset(args.data, args.data_dir)
    resolution_base = args.resolution_base or data.resolution_base
    model = choose_model(args, data.num_classes, resolution_base, args.seed)
    command = shlex.join(["tinyformula"] + list(getattr(args, "argv", sys.argv[1:])))
    progress = not (args.quiet or args.json)
    teacher_path = args.teacher
    with on_stop(f"every finished epoch is saved in {args.out}. Run the same command again "
                 f"to continue."):
        if args.teacher == BASE_TEACHER:
            parent = writable_folder(Path(args.out).resolve().parent)
            if progress:
                print(f"training the teacher ({model.tinyformula['base']} at r = d = w = 1) "
                      f"in {parent}/, or reusing it", file=sys.stderr)
            teacher, teacher_path = base_teacher(data, model.tinyformula["base"],
                                                 resolution_base, recipe, parent,
                                                 args.teacher_epochs, progress=progress)
        card = train_final(data, model, args.out, recipe, teacher=teacher,
                           teacher_path=teacher_path, command=command, progress=progress)
    weaker = weaker_teacher(card) if teacher is not None else None
    if weaker:
        warn(weaker)
    if args.json:
        teacher_card = card["recipe"]["teacher"] or {}
        print_json({"out": str(args.out), **{k: card[k] for k in (
            "status", "top1", "top1_raw", "top1_ema", "flops", "params", "seconds",
            "train_seconds")},
            "resolution": card["model"]["resolution"], "epochs": len(card["epochs"]),
            "reparam": recipe.reparam, "teacher": teacher_card.get("path"),
            "teacher_top1": teacher_card.get("top1")})
        return 0 if card["status"] == "done" else 1
    config = card["model"]
    last = card["epochs"][-1] if card["epochs"] else {}

    def pct(value):
        return "-" if value is None else f"{100 * value:.2f} %"

    print_rows(config_rows(config) + [
        ("data", f"{card['data']['name']}: {card['data']['train_images']:,} training images, "
                 f"top-1 on {card['data']['scored_on']}. {card['data']['note']}"),
        ("status", card["status"] + (f" ({card.get('message')})" if card.get("message") else "")),
        ("epochs", f"{last.get('epoch', 0)} of {recipe.train.epochs}"),
        ("top-1", f"{pct(card['top1'])}  (saved weights; raw {pct(card['top1_raw'])}, "
                  f"EMA {pct(card['top1_ema'])})"),
        ("seconds", f"{card['seconds']:.1f}  (training and scoring; "
                    f"{card['train_seconds']:.1f} training steps)")]
        + ([("re-param", f"{recipe.reparam} k x k branch(es) per depthwise and 1x1 "
                         f"convolution while training; model.pt holds the folded, plain "
                         f"network")] if recipe.reparam else [])
        + ([("teacher", f"{teacher_path}: top-1 {pct(card['recipe']['teacher']['top1'])} on "
                        f"its held-out split (KD T = {recipe.kd_temperature:g}, weight "
                        f"{recipe.kd_weight:g})")] if teacher is not None else [])
        + [("written", f"{args.out}/: model.pt, card.json, curve.png, checkpoint.pt")])
    return 0 if card["status"] == "done" else 1

