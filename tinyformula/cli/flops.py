"""``tinyformula flops``: FLOPs, parameters and activations of a scaled base, from the
analytic cost model (and, with ``--verify``, from the built module)."""

from __future__ import annotations

from ..core.constraints import Integer
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE
from .arguments import add_scale_arguments, checked
from .output import millions, print_json, print_rows


def register(sub) -> None:
    p = sub.add_parser(
        "flops", help="FLOPs and parameters of a scaled base",
        description="Resolution, FLOPs (fvcore's count: one multiply-add = one FLOP, so FLOPs "
                    "here = MACs; sources counting 2 FLOPs per multiply-add give twice the "
                    "number), parameters, activations (output "
                    "elements of every conv and linear layer) and c (FLOPs relative to the base "
                    "at r = d = w = 1) of a base scaled by (r, d, w), from the analytic cost "
                    "model: no module is built unless --verify.",
        epilog="example: tinyformula flops --base efficientnet_b0 --r 0.475 --d 0.6 --w 0.51")
    add_scale_arguments(p)
    p.add_argument("--model", metavar="MODEL.pt",
                   help="count a model file from build or train --recipe final (or its --out "
                        "folder): its base, r, d, w, classes and input size")
    checked(p, "--num-classes", NUM_CLASSES, default=1000,
            help="classifier outputs (default 1000)")
    checked(p, "--resolution-base", RESOLUTION_BASE, default=None,
            help="input size at r = 1 (default: the base's, 224); 32 for small images")
    checked(p, "--by-module", Integer(1, 16), nargs="?", const=1, default=None,
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
    p.set_defaults(run=run)


def run(args) -> int:
    from ..nets.bases import get_base
    from ..nets.scale import Scale

    if args.model is not None:
        _from_model_file(args)
    base = get_base(args.base)
    scale = Scale(args.r, args.d, args.w)
    cost = base.cost(scale, args.num_classes, args.resolution_base)
    reference = base.cost(None, args.num_classes, args.resolution_base)
    modules = base.cost_breakdown(scale, args.num_classes, args.resolution_base,
                                  depth=args.by_module or 1)
    record = {"base": base.name, "r": scale.r, "d": scale.d, "w": scale.w,
              "resolution": cost.resolution, "flops": cost.flops, "params": cost.params,
              "activations": cost.activations, "c": cost.flops / reference.flops,
              "by_module": [{"module": m.module, "flops": m.flops, "params": m.params,
                             "activations": m.activations} for m in modules]}
    verified = True
    if args.verify:
        from ..nets.build import activation_counts, fvcore_flops, param_count

        model = base.build(scale, args.num_classes, args.resolution_base)
        record["fvcore_flops"] = fvcore_flops(model, model.input_resolution)
        record["built_params"] = param_count(model)
        record["built_activations"] = sum(
            activation_counts(model, model.input_resolution).values())
        verified = (record["fvcore_flops"] == cost.flops and record["built_params"] == cost.params
                    and record["built_activations"] == cost.activations)
        record["verified"] = verified
    if args.json:
        print_json(record)
        return 0 if verified else 1
    rows = [("base", f"{base.name}  ({base.summary})"),
            ("scale", str(scale)),
            ("resolution", f"{cost.resolution} px  "
                           f"(int({args.resolution_base or base.default_resolution}"
                           f" x r))"),
            ("FLOPs", f"{millions(cost.flops)}  (fvcore's count: 1 multiply-add = 1 FLOP)"),
            ("params", millions(cost.params)),
            ("activations", millions(cost.activations)),
            ("c", f"{record['c']:.4f}  (FLOPs / {reference.flops:,} of the base at r = d = w = 1, "
                  f"{args.resolution_base or base.default_resolution} px, "
                  f"{args.num_classes} classes)")]
    if args.verify:
        def mark(ok):
            return "matches" if ok else "DIFFERS from the analytic count"
        rows += [("fvcore FLOPs", f"{record['fvcore_flops']:,}  "
                                  f"{mark(record['fvcore_flops'] == cost.flops)}"),
                 ("built params", f"{record['built_params']:,}  "
                                  f"{mark(record['built_params'] == cost.params)}"),
                 ("built activations", f"{record['built_activations']:,}  "
                                       f"{mark(record['built_activations'] == cost.activations)}  "
                                       f"(counted in a forward pass)")]
    print_rows(rows)
    if args.by_module:
        print()
        _print_module_table(modules, cost)
    return 0 if verified else 1



def _from_model_file(args) -> None:
    """Fill --base, --r, --d, --w, --num-classes and --resolution-base from ``--model``'s
    configuration (refusing any of them given as well)."""
    import sys

    from ..core.errors import TinyFormulaError
    from ..models.files import read_model_file

    given = [flag for flag in ("--base", "--r", "--d", "--w", "--num-classes",
                               "--resolution-base")
             if any(a == flag or a.startswith(flag + "=") for a in
                    getattr(args, "argv", sys.argv[1:]))]
    if given:
        raise TinyFormulaError(f"--model gives the network; drop {', '.join(given)}")
    config = read_model_file(args.model)["config"]
    args.base, args.r, args.d, args.w = (config[k] for k in ("base", "r", "d", "w"))
    args.num_classes, args.resolution_base = config["num_classes"], config["resolution_base"]


def _print_module_table(modules, total) -> None:
    """One line per module: FLOPs (with their share of the total), params, activations."""
    header = ("module", "FLOPs", "%", "params", "activations")
    table = [header] + [(m.module, f"{m.flops:,}", f"{100 * m.flops / total.flops:.1f}",
                         f"{m.params:,}", f"{m.activations:,}") for m in modules]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join([row[0].ljust(widths[0])]
                        + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]))

