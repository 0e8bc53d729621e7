"""``tinyformula bases``: the base networks, with their FLOPs and parameters."""

from __future__ import annotations

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser("bases", help="list the base networks",
                       description="List the scalable base networks with their FLOPs and "
                                   "parameters at r = d = w = 1 (224 px, 1000 classes).")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..nets.bases import get_base, list_bases

    records: list[dict] = []
    for name in list_bases():
        base = get_base(name)
        cost = base.cost()
        records.append({"name": name, "resolution": cost.resolution, "flops": cost.flops,
                        "params": cost.params, "summary": base.summary})
    if args.json:
        print_json(records)
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

