"""The ``tinyformula`` command: thin glue over the pipeline stages.

Every command has ``--help``; where its output is data it has ``--json``. Bad input ends with
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import TinyFormulaError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to read more), exit status 2."""

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


def _millions(n: int) -> str:
    return f"{n:,} ({n / 1e6:.2f} M)" if n < 1e9 else f"{n:,} ({n / 1e9:.3f} G)"


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


# -- tinyformula bases ---------------------------------------------------------------------------

def cmd_bases(args) -> int:
    from .bases import get_base, list_bases

    records = []
    for name in list_bases():
        base = get_base(name)
        cost = base.cost()
        records.append({"name": name, "resolution": cost.resolution, "flops": cost.flops,
                        "params": cost.params, "summary": base.summary})
    if args.json:
        _print_json(records)
        return 0
    header = ("base", "resolution", "FLOPs", "params", "")
    table = [header] + [(r["name"], str(r["resolution"]), f"{r['flops'] / 1e6:,.1f} M",
                         f"{r['params'] / 1e6:,.2f} M", r["summary"]) for r in records]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        print("  ".join(cells + [row[4]]).rstrip())
    print("\nFLOPs: fvcore's count (one multiply-add = one FLOP), batch 1, 1000 classes.")
    return 0


# -- tinyformula flops ---------------------------------------------------------------------------

def cmd_flops(args) -> int:
    from .bases import get_base
    from .scale import Scale

    base = get_base(args.base)
    scale = Scale(args.r, args.d, args.w)
    cost = base.cost(scale, args.num_classes, args.resolution_base)
    reference = base.cost(None, args.num_classes, args.resolution_base)
    record = {"base": base.name, "r": scale.r, "d": scale.d, "w": scale.w,
              "resolution": cost.resolution, "flops": cost.flops, "params": cost.params,
              "c": cost.flops / reference.flops}
    verified = True
    if args.verify:
        from .build import fvcore_flops, param_count

        model = base.build(scale, args.num_classes, args.resolution_base)
        record["fvcore_flops"] = fvcore_flops(model, model.input_resolution)
        record["built_params"] = param_count(model)
        verified = record["fvcore_flops"] == cost.flops and record["built_params"] == cost.params
        record["verified"] = verified
    if args.json:
        _print_json(record)
    else:
        rows = [("base", f"{base.name}  ({base.summary})"),
                ("scale", str(scale)),
                ("resolution", f"{cost.resolution} px  (int({args.resolution_base or base.default_resolution}"
                               f" x r))"),
                ("FLOPs", _millions(cost.flops)),
                ("params", _millions(cost.params)),
                ("c", f"{record['c']:.4f}  (FLOPs / {reference.flops:,} of the base at r = d = w = 1)")]
        if args.verify:
            def mark(ok):
                return "matches" if ok else "DIFFERS from the analytic count"
            rows += [("fvcore FLOPs", f"{record['fvcore_flops']:,}  "
                                      f"{mark(record['fvcore_flops'] == cost.flops)}"),
                     ("built params", f"{record['built_params']:,}  "
                                      f"{mark(record['built_params'] == cost.params)}")]
        _print_rows(rows)
    return 0 if verified else 1


# -- tinyformula train ---------------------------------------------------------------------------

def cmd_train(args) -> int:
    from .bases import get_base
    from .scale import Scale

    base = get_base(args.base)  # fail on a bad base or scale before loading any data
    scale = Scale(args.r, args.d, args.w)
    from .data import load_dataset
    from .train import TrainConfig, train

    config = TrainConfig(train_size=args.train_size, epochs=args.epochs,
                         batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                         seed=args.seed, device=args.device, val_size=args.val_size)
    data = load_dataset(args.data, args.data_dir)
    result = train(data, base, scale, config, progress=not args.quiet)
    if args.json:
        _print_json({key: getattr(result, key) for key in
                     ("top1", "loss", "images_per_s", "seconds", "flops", "params",
                      "resolution", "status")})
        return 0
    ok = result.status == "ok"
    held_out = len(data.val_images) if args.val_size is None else min(args.val_size,
                                                                      len(data.val_images))
    rows = [("base", f"{base.name}  {scale}"),
            ("data", f"{data.name}: {result.images:,} training images seen, scored on "
                     f"{held_out:,} held-out ({data.val_source})"),
            ("status", result.status + (f"  ({result.message})" if result.message else "")),
            ("top-1", f"{100 * result.top1:.2f} %" if ok else "-"),
            ("loss", f"{result.loss:.4f}  (held-out cross-entropy)" if ok else "-"),
            ("images/s", f"{result.images_per_s:,.0f}  (training, {result.device})"),
            ("seconds", f"{result.seconds:.1f}"),
            ("resolution", f"{result.resolution} px"),
            ("FLOPs", _millions(result.flops)),
            ("params", _millions(result.params))]
    _print_rows(rows)
    return 0


# -- parser and entry point ----------------------------------------------------------------------

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
    p.add_argument("--base", default="efficientnet_b0", help="base network (default: %(default)s)")
    p.add_argument("--r", type=_number, default=1.0, help="resolution multiplier (default 1)")
    p.add_argument("--d", type=_number, default=1.0, help="depth multiplier (default 1)")
    p.add_argument("--w", type=_number, default=1.0, help="width multiplier (default 1)")
    p.add_argument("--num-classes", type=_positive_int, default=1000,
                   help="classifier outputs (default 1000)")
    p.add_argument("--resolution-base", type=_positive_int, default=None,
                   help="input size at r = 1 (default: the base's, 224); 32 for small images")
    p.add_argument("--verify", action="store_true",
                   help="also build the module and count it with fvcore (needs torch, slower)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: base, r, d, w, resolution, flops, params, c")
    p.set_defaults(handler=cmd_flops)

    p = sub.add_parser(
        "train", help="train one scaled base on a dataset (short schedule) and score it",
        description="Train a base scaled by (r, d, w) on a short schedule and report its top-1 "
                    "and loss on the dataset's held-out split, with images/s, FLOPs and "
                    "params. Datasets: fashion-mnist, digits, cifar10, cifar100 (32 px base "
                    "resolution: the model sees int(32 r) px) and imagefolder:PATH (224 px).",
        epilog="example: tinyformula train --base efficientnet_b0 --r 1 --d 1 --w 1 "
               "--data fashion-mnist --train-size 8192")
    p.add_argument("--base", default="efficientnet_b0", help="base network (default: %(default)s)")
    p.add_argument("--r", type=_number, default=1.0, help="resolution multiplier (default 1)")
    p.add_argument("--d", type=_number, default=1.0, help="depth multiplier (default 1)")
    p.add_argument("--w", type=_number, default=1.0, help="width multiplier (default 1)")
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
    p.add_argument("--val-size", type=_positive_int, default=None, metavar="N",
                   help="score on the first N held-out images (default: all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0,
                   help="fixes the images used, their order, augmentation and initial weights")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: top1, loss, images_per_s, seconds, flops, "
                        "params, resolution, status")
    p.set_defaults(handler=cmd_train)
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
