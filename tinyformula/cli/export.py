"""``tinyformula export``: a model file to ONNX or TorchScript, checked against torch and the
cost model."""

from __future__ import annotations

from ..models.export import EXPORT_IMAGES
from .arguments import checked
from .models import check_output_file
from .output import print_json, print_rows


def register(sub) -> None:
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
    checked(p, "--images", EXPORT_IMAGES, default=None, metavar="N",
            help="held-out images to check on (default 256, or all the data has if fewer)")
    p.add_argument("--json", action="store_true", help="print the check as one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..data import load_dataset
    from ..models.export import EXPORT_KINDS, export_model
    from ..models.files import load_model

    out = check_output_file(args.out, EXPORT_KINDS[args.format])
    model = load_model(args.model)
    name = args.data or (model.tinyformula.get("data") or {}).get("name") or "fashion-mnist"
    data = load_dataset(name, args.data_dir)
    report = export_model(model, args.format, out, data, args.images)
    if args.json:
        print_json(report.to_dict())
    else:
        print_rows([
            ("written", f"{report.path} ({report.format})"),
            ("checked on", f"{report.images} held-out {report.data} images"),
            ("max |diff|", f"{report.max_abs_diff:.3g}  (logits against torch eager)"),
            ("top-1", f"{100 * report.top1_exported:.2f} % exported, "
                      f"{100 * report.top1_torch:.2f} % torch  (same arg-max on "
                      f"{100 * report.same_predictions:.1f} % of the images)"),
            ("multiply-adds", f"{report.macs_exported:,} in the exported graph, "
                              f"{report.macs_cost_model:,} by the cost model"),
            ("check", "passed" if report.ok else f"FAILED: {report.message}"),
            ("feed it", _feeding(model))])
    return 0 if report.ok else 1


def _feeding(model) -> str:
    """How to feed the exported model, in one line (all of it is in its metadata)."""
    from ..models.export import exported_config

    prep = exported_config(model)["preprocessing"]
    if prep["mean"] is None:
        return (f"{prep['resolution']} px images; an untrained model: its mean and std come "
                f"with training (see docs/deploying.md)")
    def numbers(values):
        return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"

    return (f"resize to {prep['resolution']} x {prep['resolution']} px (bilinear, antialiased "
            f"when shrinking), keep 0..255, (x - {numbers(prep['mean'])}) / "
            f"{numbers(prep['std'])}" + (", then repeat to 3 channels"
                                         if prep["channels_in"] == 1 else "")
            + "; in the file's metadata 'preprocessing' (docs/deploying.md)")

