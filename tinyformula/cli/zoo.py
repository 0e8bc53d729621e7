"""``tinyformula zoo``: the formulas shipped with their evidence, and one entry in full."""

from __future__ import annotations

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "zoo", help="formulas fitted and validated here, shipped with their evidence",
        description="List the formula zoo: formulas fitted by 'tinyformula fit' on a base and "
                    "a dataset and checked by 'tinyformula validate' against the fixed "
                    "formulas on a longer schedule, shipped with that evidence. Use one with "
                    "'--formula zoo:BASE/DATASET' (predict, compare, build, train); where no "
                    "entry fits, the built-in formula (the published TinyNets, ImageNet) stays "
                    "the default.",
        epilog="examples: tinyformula zoo; tinyformula zoo efficientnet_b0/fashion-mnist")
    p.add_argument("name", nargs="?", metavar="BASE/DATASET",
                   help="show this entry's evidence in full")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..formula.zoo import PREFIX, evidence, listing

    if args.name:
        name = args.name[len(PREFIX):] if args.name.startswith(PREFIX) else args.name
        data = evidence(name)
        if args.json:
            print_json(data)
            return 0
        _print_entry(data)
        return 0
    rows = listing()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("The zoo is empty.")
        return 0
    for row in rows:
        print(f"{row['formula']}  ({row['fit']} fit, {row['schedule']} schedule; validated "
              f"{row['date']} on {row['machine']})")
        if row["summary"]:
            print(f"    {row['summary']}")
        for line in _verdict_lines(row["validation"]):
            print(f"    {line}")
    print("\nUse one with --formula zoo:BASE/DATASET; 'tinyformula zoo BASE/DATASET' shows "
          "its evidence.")
    return 0


def _verdict_lines(validation: dict) -> list[str]:
    rows = validation.get("budgets", [])
    if not rows:
        return []
    cells = [f"c={row['c']:g} {row['verdict']}" for row in rows]
    return [f"validated ({validation.get('schedule', '')}): " + ", ".join(cells)]


def _print_entry(data: dict) -> None:
    print(f"zoo:{data['name']}: {data['base']} on {data['dataset']}, {data['fit']} fit")
    print(f"validated {data['date']} on {data['machine']}")
    search = data["search"]
    print("search: " + ", ".join(f"{key} {value}" for key, value in search.items()))
    validation = data["validation"]
    print(f"\nvalidation ({validation.get('schedule', '')}):")
    for row in validation.get("budgets", []):
        others = ", ".join(f"{name} {diff:+.1%}" for name, diff in row.get("vs", {}).items())
        print(f"  c = {row['c']:g}: top-1 {row['top1']:.1%} ({row['verdict']}; {others})")
    for line in data.get("notes", []):
        print(f"note: {line}")
    print("\ncommands:")
    for command in data["commands"]:
        print(f"  {command}")
