"""The ``tinyformula`` command: thin glue over the pipeline stages.

Every command has ``--help``; where its output is data it has ``--json``. Bad input ends with
one line on stderr and exit status 2, never a traceback: so does every OSError, OverflowError,
UnicodeError and ValueError (a full disk, a corrupt file); anything else is a bug and keeps its
traceback. SIGTERM is handled like Ctrl-C (exit status 143, 130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from . import __version__
from .commands import cmd_bases, cmd_fit, cmd_flops, cmd_plot, cmd_train
from .errors import TinyFormulaError
from .formula_commands import cmd_compare, cmd_predict
from .latency_command import cmd_latency
from .model_commands import cmd_build, cmd_export
from .signals import EXIT_TERMINATED, Terminated, sigterm_as_interrupt

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
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None


def _positive_int(text: str) -> int:
    from .validate import COUNT_LIMIT

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 1 <= value <= COUNT_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {COUNT_LIMIT:,}, got {text[:40]}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None


# -- parser and entry point ----------------------------------------------------------------------

def _add_scale_arguments(p, default: float | None = 1.0) -> None:
    """--base, --r, --d, --w; with ``default=None`` an option left out stays None, so a
    command can tell explicit multipliers from a budget (a missing one then means 1)."""
    p.add_argument("--base", default="efficientnet_b0" if default else None,
                   help="base network (default: efficientnet_b0, or the formula's)")
    for name, what in (("r", "resolution"), ("d", "depth"), ("w", "width")):
        p.add_argument(f"--{name}", type=_number, default=default,
                       help=f"{what} multiplier (default 1)")


def _add_model_choice(p, resolution_default: str) -> None:
    """The model as explicit --r/--d/--w (above), or a budget and a formula."""
    p.add_argument("--flops", type=_number, metavar="C",
                   help="relative budget c (FLOPs / the base's at r = d = w = 1): build what "
                        "the formula recommends")
    p.add_argument("--formula", metavar="PATH",
                   help="with --flops: a fitted formula.json, or 'giant' for EfficientNet's "
                        "inverted compound formula (default: the base's built-in formula)")
    p.add_argument("--resolution-base", type=_positive_int, default=None, metavar="N",
                   help=f"input size at r = 1 (default: {resolution_default})")


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value:g}")
    return value


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
        description="Resolution, FLOPs (fvcore's convention), parameters, activations (output "
                    "elements of every conv and linear layer) and c (FLOPs relative to the base "
                    "at r = d = w = 1) of a base scaled by (r, d, w), from the analytic cost "
                    "model: no module is built unless --verify.",
        epilog="example: tinyformula flops --base efficientnet_b0 --r 0.475 --d 0.6 --w 0.51")
    _add_scale_arguments(p)
    p.add_argument("--num-classes", type=_positive_int, default=1000,
                   help="classifier outputs (default 1000)")
    p.add_argument("--resolution-base", type=_positive_int, default=None,
                   help="input size at r = 1 (default: the base's, 224); 32 for small images")
    p.add_argument("--by-module", type=_positive_int, nargs="?", const=1, default=None,
                   metavar="DEPTH",
                   help="also print FLOPs, params and activations per named module of the built "
                        "network: DEPTH 1 (default) its children (stem, blocks, ...), 2 opens "
                        "them (blocks.0, blocks.1, ...)")
    p.add_argument("--verify", action="store_true",
                   help="also build the module, count it with fvcore and count its activations "
                        "in a forward pass (needs torch, slower)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: base, r, d, w, resolution, flops, params, "
                        "activations, c, by_module")
    p.set_defaults(handler=cmd_flops)

    from .presets import PRESETS
    from .search_config import SearchConfig as Defaults
    from .yardstick import COST_NAMES

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
    # Every default and limit is SearchConfig's: unset flags stay None and the config fills
    # them in; it checks each value against its limit, with the reason.
    p.add_argument("--base", help=f"base network (default: {Defaults.base})")
    p.add_argument("--data", help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH "
                                  f"(default: {Defaults.data})")
    p.add_argument("--data-dir", help="where the dataset's files are")
    p.add_argument("--preset", choices=list(PRESETS),
                   help=f"search size (default: {Defaults.preset})")
    p.add_argument("--trials", type=_whole_number, help="candidates to train (default: preset's)")
    p.add_argument("--train-size", type=_whole_number,
                   help="training images per trial (default: preset's)")
    p.add_argument("--epochs", type=_whole_number, help="passes over them (default: preset's)")
    p.add_argument("--c-range", type=_number, nargs=2, metavar=("LO", "HI"),
                   help="relative FLOPs studied (default: {:g} {:g})".format(*Defaults.c_range))
    p.add_argument("--sampler", choices=["random", "budgeted"],
                   help="random: the paper's log-uniform r, d, w kept inside the c range; "
                        f"budgeted: draw c, r, d and solve w (default: {Defaults.sampler})")
    p.add_argument("--seed", type=_whole_number, help=f"fixes the whole plan (default {Defaults.seed})")
    p.add_argument("--batch-size", type=_whole_number,
                   help=f"training batch size (default {Defaults.batch_size})")
    p.add_argument("--cost", choices=list(COST_NAMES),
                   help="what c is relative to: flops (fvcore's count), params, activations "
                        "(exact, analytic) or latency (predicted from a table of this "
                        f"machine's measured block latencies) (default: {Defaults.cost})")
    p.add_argument("--latency-device", choices=["cpu", "cuda"],
                   help=f"with --cost latency: where latency is measured (default: "
                        f"{Defaults.latency_device})")
    p.add_argument("--latency-threads", type=_positive_int,
                   help=f"with --cost latency: torch threads it is measured with (default: "
                        f"{Defaults.latency_threads})")
    p.add_argument("--out", help=f"run folder (default: {Defaults.out})")
    p.add_argument("--executor", choices=["local", "dask"],
                   help=f"local processes or Dask distributed (default: {Defaults.executor})")
    p.add_argument("--workers", type=_whole_number,
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
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", default=None,
                   help="on GPUs, train eagerly instead of replaying a captured CUDA graph")
    p.add_argument("--trials-per-gpu", type=_positive_int,
                   help="trials sharing one GPU at once (default: as many as the measured "
                        "memory of the largest candidate allows)")
    p.add_argument("--schedule", choices=["full", "halving"],
                   help="full: every candidate trains on the whole budget; halving: Pareto-aware "
                        "successive halving, each rung re-trains the candidates closest to the "
                        "frontier on eta x the images (default: the preset's)")
    p.add_argument("--eta", type=_number,
                   help=f"halving: each rung keeps 1/eta of the candidates (default {Defaults.eta:g})")
    p.add_argument("--min-images", type=_whole_number,
                   help="halving: training images (x epochs) of the smallest rung "
                        "(default: the full budget / eta^2, three rungs)")
    p.add_argument("--min-rung", type=_positive_int,
                   help=f"halving: no rung is cut below this many candidates (default "
                        f"{Defaults.min_rung})")
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
        p.add_argument("--cost", choices=list(COST_NAMES), default=None,
                       help="the cost c is in; must be the one the formula was fitted for "
                            "(default: the formula's; flops for the built-in one)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)
    p = sub.add_parser(
        "train", help="train one scaled base on a dataset and score it",
        description="Train a base scaled by (r, d, w), or the model a formula gives for "
                    "--flops, or a --model file, and report its top-1 on the dataset's "
                    "held-out split. --recipe search (default): the search's short schedule, "
                    "with loss, images/s, FLOPs and params. --recipe final: warm-up then "
                    "cosine, label smoothing, a weight EMA, optional distillation from "
                    "--teacher, a checkpoint every epoch in --out (kill it and run the same "
                    "command to resume), a model card and a training curve. Datasets: "
                    "fashion-mnist, digits, cifar10, cifar100 (32 px base resolution: the "
                    "model sees int(32 r) px) and imagefolder:PATH (224 px).",
        epilog="examples: tinyformula train --r 1 --d 1 --w 1 --data fashion-mnist "
               "--train-size 8192; tinyformula train --recipe final --flops 0.25 --data "
               "fashion-mnist --epochs 30 --teacher b0/ --out final/")
    _add_scale_arguments(p, default=None)
    _add_model_choice(p, "the data's: 32 for small images, 224 for folders")
    p.add_argument("--recipe", choices=("search", "final"), default="search",
                   help="search: the short schedule the search scores candidates with, "
                        "scored on the held-out split, nothing written (default); final: "
                        "the long recipe, checkpointed every epoch into --out")
    p.add_argument("--model", metavar="MODEL.pt",
                   help="--recipe final: start from this model file ('tinyformula build')")
    p.add_argument("--out", metavar="DIR",
                   help="--recipe final: folder for checkpoint.pt, model.pt, card.json and "
                        "curve.png; the same command on the same DIR resumes")
    p.add_argument("--teacher", metavar="MODEL",
                   help="--recipe final: distil from this trained model (a model.pt or a "
                        "train --out folder) with the data's classes")
    p.add_argument("--kd-temperature", type=_number, default=None, metavar="T",
                   help="distillation temperature (default 4)")
    p.add_argument("--kd-weight", type=_number, default=None, metavar="A",
                   help="weight of the distillation loss, in [0, 1] (default 0.5)")
    p.add_argument("--ema", type=_fraction, default=None, metavar="DECAY",
                   help="--recipe final: decay of the weight EMA, scored beside the raw weights "
                        "and saved (default 0.999; 0 turns it off)")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder holding the dataset's files (fashion-mnist: the four IDX "
                        "files; cifar: the python batches)")
    p.add_argument("--train-size", type=_positive_int, default=None, metavar="N",
                   help="train on N images, a subset fixed by the seed (default: all)")
    p.add_argument("--epochs", type=_positive_int, default=None, metavar="E",
                   help="passes over the training images (default 1; 20 with --recipe final)")
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
    p.add_argument("--seed", type=_whole_number, default=0,
                   help="fixes the images used, their order, augmentation and initial weights")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false",
                   help="on CUDA, run the training step eagerly instead of replaying it as a "
                        "captured CUDA graph (default: graphed; no effect on CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: top1, loss, images_per_s, seconds, flops, "
                        "params, resolution, status (--recipe final: out, status, top1, "
                        "top1_raw, top1_ema, flops, params, seconds, resolution, epochs)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "build", help="write the untrained model for a budget (weights and configuration)",
        description="Build the model a formula recommends for budget --flops (or explicit "
                    "--r/--d/--w) and write its freshly initialised weights and configuration "
                    "(base, r, d, w, resolution, FLOPs, params, c, formula) to one file, for "
                    "'tinyformula train --recipe final --model', 'tinyformula export' or "
                    "tinyformula.load_model.",
        epilog="example: tinyformula build --flops 0.25 --num-classes 10 --resolution-base 32 "
               "--out model.pt")
    _add_scale_arguments(p, default=None)
    _add_model_choice(p, "the formula's; the base's, 224, without one")
    p.add_argument("--num-classes", type=_positive_int, default=None, metavar="K",
                   help="classifier outputs (default: the formula's; 1000 without one)")
    p.add_argument("--seed", type=int, default=0, help="fixes the initial weights (default 0)")
    p.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON")
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser(
        "export", help="export a model to ONNX or TorchScript and check the file",
        description="Write MODEL (a model file from build or train --recipe final, or a train "
                    "--out folder) as ONNX or TorchScript, then check the file on a batch of "
                    "real held-out images: the largest logit difference against torch eager, "
                    "the same top-1, and the exported graph's multiply-adds equal to the cost "
                    "model's count. Exit status 1 when a check fails.",
        epilog="example: tinyformula export final/model.pt --format onnx --out model.onnx")
    p.add_argument("model", metavar="MODEL", help="model file or train --out folder")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")
    p.add_argument("--data", default=None, metavar="DATASET",
                   help="images to check on (default: the model's training data, else "
                        "fashion-mnist)")
    p.add_argument("--data-dir", metavar="PATH", help="folder holding the dataset's files")
    p.add_argument("--images", type=_positive_int, default=256, metavar="N",
                   help="held-out images to check on (default 256)")
    p.add_argument("--json", action="store_true", help="print the check as one JSON object")
    p.set_defaults(handler=cmd_export)

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
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for the PNGs (default: RUN_DIR/plots; the run itself is only "
                        "read, so it may be on read-only storage)")
    p.add_argument("--json", action="store_true", help="print the PNGs' paths as a JSON list")
    p.set_defaults(handler=cmd_plot)

    p = sub.add_parser(
        "latency", help="measure and predict a scaled base's inference latency",
        description="Measure the inference latency of a base scaled by (r, d, w) on this "
                    "machine (eval mode, input at the candidate's resolution, warm-up, then "
                    "repeats until the median is known to about 1%%; median and spread "
                    "reported) and predict it from the latency table: each distinct block "
                    "timed once and cached on disk per machine, device, runtime, threads and "
                    "batch, plus a correction fitted on a few whole networks. The first "
                    "prediction for a base builds the table's calibration (about 30 s on a "
                    "CPU); a new block is timed the first time a candidate needs it.",
        epilog="example: tinyformula latency --base efficientnet_b0 --r 0.475 --d 0.6 --w 0.51")
    _add_scale_arguments(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to run (default: cpu)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="intra-op threads, pinned for the measurement (default 1)")
    p.add_argument("--batch", type=_positive_int, default=1, help="images per call (default 1)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="torch eager, or onnxruntime on the exported graph "
                        "(needs the latency extra) (default: torch)")
    p.add_argument("--num-classes", type=_positive_int, default=1000,
                   help="classifier outputs (default 1000)")
    p.add_argument("--resolution-base", type=_positive_int, default=None,
                   help="input size at r = 1 (default: the base's, 224); 32 for small images")
    p.add_argument("--no-measure", action="store_true", help="predict only")
    p.add_argument("--no-predict", action="store_true",
                   help="measure only (no latency table is read or built)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: base, r, d, w, resolution, device, threads, "
                        "batch, runtime, measured_ms (with its spread), predicted_ms, table")
    p.set_defaults(handler=cmd_latency)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in model cards
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    command = f"tinyformula {args.command}"
    if sys.stdout is None or sys.stdout.closed:  # started with stdout closed (`>&-`)
        print(f"{command}: error: standard output is closed; nothing would be seen",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with sigterm_as_interrupt():
            return args.handler(args)
    except TinyFormulaError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, OverflowError, UnicodeError, ValueError) as error:
        # What user input (a path, a file, a number) can provoke beyond the checks: one line.
        # BrokenPipeError (a reader that left, as `| head` does) is an OSError too.
        if isinstance(error, BrokenPipeError):
            _silence_stdout()
        else:
            print(f"{command}: error: {_describe(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"{command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else 130


def _describe(error: BaseException) -> str:
    """An exception as one short line: the OS's words and the file for an OSError."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        text = f"{error.strerror}{where}"
        if error.errno == errno.ENOSPC:
            text += " (free some space and run the same command again)"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _silence_stdout() -> None:
    """After a broken pipe, send what is left to /dev/null: no second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
