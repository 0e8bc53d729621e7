"""``tinyformula latency``: measure one candidate's inference latency and predict it from the
latency table (see ``tinyformula.latency`` and ``tinyformula.measure``)."""

from __future__ import annotations

import json
import sys

from .measure import Protocol

PROTOCOL = Protocol()  # the measurement protocol of the command (tests swap in a quicker one)


def cmd_latency(args) -> int:
    from .bases import get_base
    from .errors import TinyFormulaError
    from .measure import Setting, measure_network
    from .scale import Scale

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
        from .latency import LatencyModel

        model = LatencyModel.load_or_build(base, args.device, args.threads, args.runtime,
                                           args.batch, args.num_classes, args.resolution_base,
                                           protocol=PROTOCOL)
        record["predicted_ms"] = model.predict_ms(scale, args.num_classes, args.resolution_base)
        record["table"] = str(model.path)
        record["blocks_timed"] = model.profiled
    if not args.no_measure:  # last, so nothing else in this process competes with it
        timing = measure_network(network, setting, PROTOCOL)
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
