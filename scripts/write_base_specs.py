"""Write every built-in base's spec as a TOML file in examples/bases/ (the shipped examples).

    PYTHONPATH=. python3 scripts/write_base_specs.py

tests/test_spec_files.py checks that each file reads back as exactly the built-in base.
Only the fields a spec sets differently from the defaults are written, in a fixed order.
"""

import json
from pathlib import Path

from tinyformula.nets.bases import BUILTIN
from tinyformula.nets.bases.netspec import HeadSpec, ScalingSpec, SqueezeSpec, StemSpec

OUT = Path(__file__).resolve().parent.parent / "examples" / "bases"
DEFAULTS = {"stem": StemSpec(channels=0), "head": HeadSpec(), "se": SqueezeSpec(),
            "scaling": ScalingSpec()}


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(v)


def table(name: str, data: dict) -> list[str]:
    default = vars(DEFAULTS[name])
    lines = [f"{k} = {value(v)}" for k, v in data.items()
             if v is not None and (k == "channels" or v != default.get(k))]
    return [f"\n[{name}]"] + lines if lines else []


def toml(spec: dict, doc: str) -> str:
    lines = [f"# {line}".rstrip() for line in doc.strip().splitlines()]
    lines += ["", f"name = {value(spec['name'])}", f"summary = {value(spec['summary'])}",
              f"resolution = {spec['resolution']}", f"act = {value(spec['act'])}"]
    if "layer_scale" in spec:
        lines.append(f"layer_scale = {value(spec['layer_scale'])}")
    lines.append("stages = [")
    for stage in spec["stages"]:
        entry = value(stage[0]) if len(stage) == 1 else \
            "[" + ", ".join(value(s) for s in stage) + "]"
        if len(entry) > 90:   # one block string a line
            entry = "[\n" + "".join(f"        {value(s)},\n" for s in stage) + "    ]"
        lines.append(f"    {entry},")
    lines.append("]")
    for name in ("stem", "head", "se", "scaling"):
        lines += table(name, spec[name])
    return "\n".join(lines) + "\n"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, base in BUILTIN.items():
        doc = (f"{base.summary}.\n\nThe built-in base {name} as a spec file:\n"
               f"  tinyformula fit --base examples/bases/{name}.toml\n"
               f"builds the same networks, under the same name. To make your own, copy it, "
               f"give it\nanother name and edit. Every field: docs/bases.md.")
        (OUT / f"{name}.toml").write_text(toml(base.spec.to_dict(), doc))
        print(OUT / f"{name}.toml")


if __name__ == "__main__":
    main()
