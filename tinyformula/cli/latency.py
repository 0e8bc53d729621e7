"""``tinyformula latency``: measure one candidate's inference latency and predict it from the
latency table (:mod:`tinyformula.cost.latency`)."""

from __future__ import annotations

import json
import sys

from ..cost.latency.measure import QUICK, Protocol, Setting
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE
from .arguments import add_scale_arguments, checked


def register(sub) -> None:
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
    add_scale_arguments(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to run (default: cpu)")
    checked(p, "--threads", Setting.constraints["threads"], default=1,
            help="intra-op threads, pinned for the measurement (default 1)")
    checked(p, "--batch", Setting.constraints["batch"], default=1,
            help="images per call (default 1)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="torch eager, or onnxruntime on the exported graph "
                        "(needs the latency extra) (default: torch)")
    checked(p, "--num-classes", NUM_CLASSES, default=1000,
            help="classifier outputs (default 1000)")
    checked(p, "--resolution-base", RESOLUTION_BASE, default=None,
            help="input size at r = 1 (default: the base's, 224); 32 for small images")
    p.add_argument("--quick", action="store_true",
                   help="a rough protocol for a first look: a handful of calls a block and "
                        "network, two calibration networks; about ten times faster, noisier. "
                        "Its timings go to a table of their own, never into the careful one")
    p.add_argument("--no-measure", action="store_true", help="predict only")
    p.add_argument("--no-predict", action="store_true",
                   help="measure only (no latency table is read or built)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: base, r, d, w, resolution, device, threads, "
                        "batch, runtime, measured_ms (with its spread), predicted_ms, table")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..core.errors import TinyFormulaError
    from ..cost.latency.measure import Setting, measure_network
    from ..nets.bases import get_base
    from ..nets.scale import Scale

    protocol = QUICK if args.quick else Protocol()
    if args.no_measure and args.no_predict:
        raise TinyFormulaError("--no-measure and --no-predict together leave nothing to do")
    base = get_base(args.base)
    scale = Scale(args.r, args.d, args.w)
    setting = Setting(args.device, args.threads, args.batch, args.runtime).check()
    network = base.network(scale, args.num_classes, args.resolution_base)
    record = {"base": base.name, "r": scale.r, "d": scale.d, "w": scale.w,
              "resolution": network.resolution, "num_classes": args.num_classes,
              "resolution_base": args.resolution_base or base.default_resolution,
              **setting.to_dict(), "measured_ms": None, "predicted_ms": None}
    if not args.no_predict:
        from ..cost.latency.model import LatencyModel

        model = LatencyModel.load_or_build(base, args.device, args.threads, args.runtime,
                                           args.batch, args.num_classes, args.resolution_base,
                                           protocol=protocol)
        record["predicted_ms"] = model.predict_ms(scale, args.num_classes, args.resolution_base)
        record["table"] = str(model.path)
        record["blocks_timed"] = model.profiled
    if not args.no_measure:  # last, so nothing else in this process competes with it
        timing = measure_network(network, setting, protocol)
        record["measured_ms"] = timing.median_ms
        record.update({k: v for k, v in timing.to_dict().items() if k != "median_ms"})
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    rows = [("base", f"{base.name}  {scale}"),
            ("resolution", f"{network.resolution} px, batch {setting.batch}"),
            ("runs on", f"{setting.device}, {setting.runtime}, {setting.threads} thread(s)")]
    if record["measured_ms"] is not None:
        rows += [("measured", f"{record['measured_ms']:.3f} ms  (median of {record['reps']}; "
                              f"p10-p90 {record['p10_ms']:.3f}-{record['p90_ms']:.3f} ms"
                              f"{'' if record['stable'] else '; not stable: noisy machine?'}"
                              f"; load {record['load']:.2f})")]
    if record["predicted_ms"] is not None:
        note = (f"; {record['blocks_timed']} new block(s) timed" if record["blocks_timed"]
                else "")
        rows += [("predicted", f"{record['predicted_ms']:.3f} ms  (latency table{note})")]
        if record["measured_ms"] is not None:
            rows += [("error", f"{record['predicted_ms'] / record['measured_ms'] - 1:+.1%}")]
        rows += [("table", record["table"])]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    sys.stdout.flush()
    return 0

