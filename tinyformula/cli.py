"""The ``tinyformula`` command: thin glue over the pipeline stages.

Every command has ``--help``; where its output is data it has ``--json``. Bad input ends with
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .commands import (
    cmd_bases,
    cmd_compare,
    cmd_fit,
    cmd_flops,
    cmd_plot,
    cmd_predict,
    cmd_train,
)
from .errors import TinyFormulaError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to read more), exit status 2, and
    no prefix matching: ``--sched`` must not silently become ``--scheduler``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- parser and entry point ----------------------------------------------------------------------

def _add_scale_arguments(p) -> None:
    p.add_argument("--base", default="efficientnet_b0", help="base network (default: %(default)s)")
    p.add_argument("--r", type=_number, default=1.0, help="resolution multiplier (default 1)")
    p.add_argument("--d", type=_number, default=1.0, help="depth multiplier (default 1)")
    p.add_argument("--w", type=_number, default=1.0, help="width multiplier (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tinyformula",
        description="Find the best way to shrink a network to a compute budget "
                    "(the Tiny Formula of TinyNet, NeurIPS 2020).")
    parser.add_argument("--version", action="version", version=f"tinyformula {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("bases", help="list the base networks",
                       description="List the scalable base networks with their FLOPs and "
                                   "parameters at r = d = w = 1 (224 px, 1000 classes).")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_bases)

    p = sub.add_parser(
        "flops", help="FLOPs and parameters of a scaled base",
        description="Resolution, FLOPs (fvcore's convention), parameters and c (FLOPs relative "
                    "to the base at r = d = w = 1) of a base scaled by (r, d, w), from the "
                    "analytic cost model: no module is built unless --verify.",
        epilog="example: tinyformula flops --base efficientnet_b0 --r 0.475 --d 0.6 --w 0.51")
    _add_scale_arguments(p)
    p.add_argument("--num-classes", type=_positive_int, default=1000,
                   help="classifier outputs (default 1000)")
    p.add_argument("--resolution-base", type=_positive_int, default=None,
                   help="input size at r = 1 (default: the base's, 224); 32 for small images")
    p.add_argument("--verify", action="store_true",
                   help="also build the module and count it with fvcore (needs torch, slower)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: base, r, d, w, resolution, flops, params, c")
    p.set_defaults(handler=cmd_flops)

    from .presets import PRESETS
    from .search_config import SearchConfig as Defaults

    p = sub.add_parser(
        "fit", help="run the search and fit a formula",
        description="Sample (r, d, w) mutations of a base, keep those whose FLOPs fall in the "
                    "c range, train each on a short schedule, keep the Pareto frontier and fit "
                    "the Tiny Formula on it. Every finished trial is saved as it finishes: run "
                    "the same command on the same --out to resume.",
        epilog="presets: " + "; ".join(
            f"{name}: {p.trials} candidates + {p.replicates} re-trained with another seed = "
            f"{p.trials + p.replicates} trials x {p.train_size:,} images, {p.note}"
            for name, p in PRESETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    # Every default is SearchConfig's: unset flags stay None and the config fills them in.
    p.add_argument("--base", help=f"base network (default: {Defaults.base})")
    p.add_argument("--data", help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH "
                                  f"(default: {Defaults.data})")
    p.add_argument("--data-dir", help="where the dataset's files are")
    p.add_argument("--preset", choices=list(PRESETS),
                   help=f"search size (default: {Defaults.preset})")
    p.add_argument("--trials", type=_positive_int, help="candidates to train (default: preset's)")
    p.add_argument("--train-size", type=_positive_int,
                   help="training images per trial (default: preset's)")
    p.add_argument("--epochs", type=_positive_int, help="passes over them (default: preset's)")
    p.add_argument("--c-range", type=_number, nargs=2, metavar=("LO", "HI"),
                   help="relative FLOPs studied (default: {:g} {:g})".format(*Defaults.c_range))
    p.add_argument("--sampler", choices=["random", "budgeted"],
                   help="random: the paper's log-uniform r, d, w kept inside the c range; "
                        f"budgeted: draw c, r, d and solve w (default: {Defaults.sampler})")
    p.add_argument("--seed", type=int, help=f"fixes the whole plan (default {Defaults.seed})")
    p.add_argument("--batch-size", type=_positive_int,
                   help=f"training batch size (default {Defaults.batch_size})")
    p.add_argument("--out", help=f"run folder (default: {Defaults.out})")
    p.add_argument("--executor", choices=["local", "dask"],
                   help=f"local processes or Dask distributed (default: {Defaults.executor})")
    p.add_argument("--workers", type=_positive_int,
                   help="trials run at once, each in its own single-thread process "
                        "(default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="join a running Dask cluster (tcp://host:port)")
    p.add_argument("--device", metavar="DEVICE",
                   help=f"auto (CUDA when available), cpu, cuda or cuda:N "
                        f"(default: {Defaults.device})")
    p.add_argument("--val-size", type=_positive_int, metavar="N",
                   help="training images held out to score candidates on (default: the "
                        "preset's, at most a fifth of the training images)")
    p.add_argument("--monotone", action=argparse.BooleanOptionalAction,
                   help="fit r(c), d(c) and top-1(c) non-decreasing in c (default: on); "
                        "--no-monotone fits the frontier as it is")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_fit)

    budget_help = ("one or more budgets, answered in order: a plain number is a relative c "
                   "(FLOPs / FLOPs of the base at r = d = w = 1, e.g. 0.25); a number with a "
                   "unit K, M or G is absolute FLOPs of the model at its own resolution and "
                   "classes (100M, 1.2G, 500K). With several budgets, --json prints a list, "
                   "one entry per budget")
    for name, handler, help_, description in [
        ("predict", cmd_predict, "the configuration the Tiny Formula gives for a budget",
         "r and d from the formula's Gaussian processes at budget c, the width w solved so "
         "the network lands within 2% below c (never above), with its resolution, FLOPs "
         "and parameters; for a formula fitted by 'tinyformula fit', also the expected top-1 "
         "(under that search's schedule) and the formula's quality report, with a warning on "
         "stderr when it is weak or noise. Without --formula, the built-in formula of --base, "
         "fitted on the published TinyNet A-E (ImageNet)."),
        ("compare", cmd_compare, "Tiny Formula against the inverted giant formula",
         "The Tiny Formula's configuration beside EfficientNet's inverted compound (giant) "
         "formula at equal FLOPs: both widths are solved to land within 2% below c, so the "
         "two differ only in the r and d they choose."),
    ]:
        p = sub.add_parser(name, help=help_, description=description,
                           epilog=f"examples: tinyformula {name} --flops 0.25; "
                                  f"tinyformula {name} --flops 0.06 0.13 100M")
        p.add_argument("--flops", nargs="+", required=True, metavar="BUDGET", help=budget_help)
        p.add_argument("--formula", metavar="PATH",
                       help="a fitted formula file (formula.json from 'tinyformula fit')")
        p.add_argument("--base", default=None,
                       help="base network, for its built-in formula (default: efficientnet_b0)")
        p.add_argument("--num-classes", type=_positive_int, default=None,
                       help="classes c is measured with (default: the formula's)")
        p.add_argument("--resolution-base", type=_positive_int, default=None,
                       help="input size at r = 1 (default: the formula's, 224 built in)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)
    p = sub.add_parser(
        "train", help="train one scaled base on a dataset (short schedule) and score it",
        description="Train a base scaled by (r, d, w) on a short schedule and report its top-1 "
                    "and loss on the dataset's held-out split, with images/s, FLOPs and "
                    "params. Datasets: fashion-mnist, digits, cifar10, cifar100 (32 px base "
                    "resolution: the model sees int(32 r) px) and imagefolder:PATH (224 px).",
        epilog="example: tinyformula train --base efficientnet_b0 --r 1 --d 1 --w 1 "
               "--data fashion-mnist --train-size 8192")
    _add_scale_arguments(p)
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder holding the dataset's files (fashion-mnist: the four IDX "
                        "files; cifar: the python batches)")
    p.add_argument("--train-size", type=_positive_int, default=None, metavar="N",
                   help="train on N images, a subset fixed by the seed (default: all)")
    p.add_argument("--epochs", type=_positive_int, default=1, metavar="E",
                   help="passes over the training images (default 1)")
    p.add_argument("--batch-size", type=_positive_int, default=128, metavar="B",
                   help="training batch size (default 128)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (Nesterov momentum 0.9, default: it learned fastest) or adamw")
    p.add_argument("--lr", type=_number, default=None,
                   help="peak learning rate (default: 0.05 sgd, 3e-3 adamw)")
    p.add_argument("--score-on", choices=("test", "holdout"), default="test",
                   help="test: the dataset's own held-out split, for most its official test "
                        "set (default); holdout: images held out from the training split, as "
                        "'tinyformula fit' ranks candidates (use it to choose between models)")
    p.add_argument("--val-size", type=_positive_int, default=None, metavar="N",
                   help="test: score on the first N test images (default: all); holdout: "
                        f"hold out N training images (default: {PRESETS['default'].val_size:,}, "
                        f"at most a fifth)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0,
                   help="fixes the images used, their order, augmentation and initial weights")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: top1, loss, images_per_s, seconds, flops, "
                        "params, resolution, status")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "plot", help="draw a finished search: accuracy against FLOPs, the formula, one budget",
        description="Write three PNGs into RUN_DIR/plots and list them (a run without a "
                    "formula, unfinished or refused, gets the first and the third, and a note "
                    "on stderr): top1_vs_flops.png "
                    "(every trial's top-1 against c, the Pareto frontier, where the inverted "
                    "giant formula's configurations fall), formula_vs_c.png (r, d, w of the "
                    "frontier against c with the GP mean +-2 sigma, the solved width and the "
                    "giant formula) and top1_at_cBUDGET.png (top-1 of the trials near one "
                    "budget against their r, d and w).",
        epilog="example: tinyformula plot runs/search --budget 0.25")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder from 'tinyformula fit'")
    p.add_argument("--budget", type=_number, default=0.5, metavar="C",
                   help="the budget of the third figure (default 0.5)")
    p.add_argument("--window", type=_number, default=1.25, metavar="F",
                   help="trials with c from C/F to C*F count as near the budget (default 1.25)")
    p.add_argument("--json", action="store_true", help="print the PNGs' paths as a JSON list")
    p.set_defaults(handler=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except TinyFormulaError as error:
        print(f"tinyformula {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"tinyformula {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
