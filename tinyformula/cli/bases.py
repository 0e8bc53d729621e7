"""``tinyformula bases``: the base networks (built in, registered, and spec files given), with
their FLOPs and parameters, how each is counted, and a base's spec to start one's own from."""

from __future__ import annotations

import json
import time

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "bases", help="list the base networks",
        description="List the scalable base networks with their FLOPs and parameters at "
                    "r = d = w = 1 (at each base's own resolution, 1000 classes) and how their "
                    "costs are counted: analytic (a spec: no torch, well under a millisecond) "
                    "or traced (a PyTorch model built by a factory and counted by fvcore, "
                    "cached). Spec files given as arguments are read, checked and listed too.",
        epilog="example: tinyformula bases examples/bases/mobilenetv4_conv_small.toml --json")
    p.add_argument("files", nargs="*", metavar="SPEC",
                   help="spec files (.toml or .json) to check and list with the others")
    p.add_argument("--spec", metavar="NAME",
                   help="print the spec of base NAME (a spec base) as JSON, to save as "
                        "mynet.json and edit")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def base_entry(name: str, origin: str) -> dict:
    """One base as ``bases`` shows it: FLOPs and params at r = d = w = 1, how it is counted
    and, for a traced base, how long one count took here."""
    from ..nets.bases import get_base

    base = get_base(name)
    start = time.perf_counter()
    cost = base.cost()
    seconds = time.perf_counter() - start
    entry = {"name": base.name, "counted": base.counted, "resolution": cost.resolution,
             "flops": cost.flops, "params": cost.params, "summary": base.summary,
             "source": origin}
    if base.counted == "traced":
        entry["seconds_per_count"] = getattr(base, "seconds_per_count", None) or seconds
        entry["factory"] = getattr(base, "source", None)
    else:
        record = base.record()
        entry["checksum"] = record["checksum"] if record else None
    return entry


def run(args) -> int:
    from ..core.errors import TinyFormulaError
    from ..nets.bases import get_base, is_builtin, list_bases

    if args.spec is not None:
        base = get_base(args.spec)
        if base.counted != "analytic" or not hasattr(base, "spec"):
            raise TinyFormulaError(f"{base.name} is counted by tracing; it has no spec to print")
        print(json.dumps(base.spec.to_dict(), indent=1))
        return 0
    origins = {get_base(path).name: str(path) for path in args.files}
    records = [base_entry(name, origins.get(name) or
                          ("built-in" if is_builtin(name) else "registered"))
               for name in list_bases()]
    if args.json:
        print_json(records)
        return 0
    header = ("base", "px", "FLOPs", "params", "counted", "")
    table = [header] + [(r["name"], str(r["resolution"]), f"{r['flops'] / 1e6:,.1f} M",
                         f"{r['params'] / 1e6:,.2f} M", _counted(r),
                         r["summary"] if r["source"] in ("built-in", "registered")
                         else f"{r['summary']} ({r['source']})")
                        for r in records]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        print("  ".join(cells + [row[4].ljust(widths[4]), row[5]]).rstrip())
    print("\nFLOPs: fvcore's count (one multiply-add = one FLOP), batch 1, 1000 classes, at each "
          "base's own resolution.")
    if any(r["counted"] == "traced" for r in records):
        print("traced: a PyTorch model, built and counted by fvcore (each distinct network "
              "once per input size, cached); the time is one count on this machine.")
    return 0


def _counted(record: dict) -> str:
    if record["counted"] != "traced":
        return "analytic"
    return f"traced, {record['seconds_per_count'] * 1e3:,.0f} ms"
