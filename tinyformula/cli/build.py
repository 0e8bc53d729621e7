"""``tinyformula build``: write the untrained model for a budget (weights and configuration)."""

from __future__ import annotations

from ..core.constraints import SEED
from ..nets.bases.spec import NUM_CLASSES
from .arguments import add_model_choice, add_scale_arguments, checked
from .models import check_output_file, choose_model, config_rows
from .output import print_json, print_rows


def register(sub) -> None:
    p = sub.add_parser(
        "build", help="write the untrained model for a budget (weights and configuration)",
        description="Build the model a formula recommends for --budget (c, 100M FLOPs, "
                    "3ms; or explicit --r/--d/--w) and write its freshly initialised weights "
                    "and configuration (base, r, d, w, resolution, FLOPs, params, c and what "
                    "c = 1 is, formula) to one file, for "
                    "'tinyformula train --recipe final --model', 'tinyformula export' or "
                    "tinyformula.load_model.",
        epilog="examples: tinyformula build --budget 0.25 --out model.pt; tinyformula "
               "build --formula runs/smoke/formula.json --budget 100M --resolution-base 224 "
               "--out model.pt")
    add_scale_arguments(p, default=None)
    add_model_choice(p, "the formula's; the base's, 224, without one")
    checked(p, "--num-classes", NUM_CLASSES, default=None, metavar="K",
            help="classifier outputs (default: the formula's; 1000 without one)")
    checked(p, "--seed", SEED, default=0, help="fixes the initial weights (default 0)")
    p.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..models.files import MODEL_KIND, save_model

    out = check_output_file(args.out, MODEL_KIND)
    model = choose_model(args, args.num_classes, args.resolution_base, args.seed)
    save_model(model, out)
    if args.json:
        print_json({**model.tinyformula, "out": str(out)})
        return 0
    print_rows(config_rows(model.tinyformula) + [("written", f"{out} (untrained weights "
                                                               f"and configuration)")])
    return 0

