"""Follow one ``tinyformula fit`` through the code: which files it enters, and how often a call
climbs back up the layers.

    python scripts/trace_fit.py [--out DIR]

Runs a tiny search in this process (scikit-learn's digits, 8 candidates, 1,000 images x 5
epochs, one worker) under ``sys.setprofile`` and records every call from one file of the
package into another. It prints the files entered, the distinct file-to-file calls ("steps"),
and the climbs: calls from a module of a lower layer into one of a higher layer. Where imports
only go down the layers (tests/test_layers.py), a climb can only be a callback: a function a
higher layer handed down (a progress line, a predicate to bisect on). The layers are those of
docs/architecture.md; for a checkout of tinyformula 0.1 (flat modules) each module is placed in
the layer it moved to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

LAYERS = ("core", "nets", "cost", "formula", "data", "models", "training", "execution",
          "sweep", "viz", "cli")
# tinyformula 0.1's flat modules, by the layer each moved to in 0.2.
FLAT = {"errors": "core", "validate": "core", "files": "core", "signals": "core",
        "runlock": "core", "scale": "nets", "layers": "nets", "cost": "nets", "build": "nets",
        "bases": "nets", "yardstick": "cost", "measure": "cost", "latency": "cost",
        "solve": "formula", "published": "formula", "gp": "formula", "formula": "formula",
        "quality": "formula", "data": "data", "models": "models", "export": "models",
        "batches": "training", "steps": "training", "train": "training", "recipe": "training",
        "gpu": "execution", "executors": "execution", "trial": "sweep", "store": "sweep",
        "pareto": "sweep", "presets": "sweep", "search_config": "sweep", "space": "sweep",
        "schedule": "sweep", "driver": "sweep", "results": "sweep", "plots": "viz",
        "cli": "cli", "commands": "cli", "formula_commands": "cli", "model_commands": "cli",
        "latency_command": "cli"}


def layer_of(relative: Path) -> int:
    parts = relative.with_suffix("").parts
    if len(parts) == 1 or parts[0] not in LAYERS:  # a flat module of 0.1 (or its bases/, data/)
        return LAYERS.index(FLAT.get(parts[0], "cli"))
    return LAYERS.index(parts[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    args = parser.parse_args()
    import tinyformula

    root = Path(tinyformula.__file__).resolve().parent
    edges: dict[tuple[str, str], int] = {}

    def profile(frame, event, arg):
        if event != "call" or frame.f_back is None:
            return
        callee, caller = Path(frame.f_code.co_filename), Path(frame.f_back.f_code.co_filename)
        if callee == caller or root not in callee.parents or root not in caller.parents:
            return
        key = (str(caller.relative_to(root)), str(callee.relative_to(root)))
        edges[key] = edges.get(key, 0) + 1

    from tinyformula.cli import main as cli

    out = args.out or tempfile.mkdtemp(prefix="trace-fit-")
    argv = ["fit", "--data", "digits", "--preset", "smoke", "--trials", "8", "--train-size",
            "1000", "--epochs", "5", "--val-size", "200", "--workers", "1",
            "--out", str(Path(out) / "run"), "--json"]
    sys.setprofile(profile)
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli(argv)
    finally:
        sys.setprofile(None)
    files = sorted({f for edge in edges for f in edge})
    climbs = sorted(e for e in edges if layer_of(Path(e[1])) > layer_of(Path(e[0])))
    print(f"exit status {code}; files entered: {len(files)}; distinct file-to-file calls "
          f"(steps): {len(edges)}; climbs back up the layers: {len(climbs)}")
    for caller, callee in climbs:
        print(f"  climb: {caller} -> {callee}")


if __name__ == "__main__":
    main()
