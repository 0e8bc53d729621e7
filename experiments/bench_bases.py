"""Benchmark issue 22's targets: a spec base's analytic count, and a smoke search on a traced base
against the same network declared as a spec.

Part ``count``: the median time of one uncached analytic count (layer tree built and walked)
of every built-in base and of ``examples/tiny_cnn_spec.toml``, on 50 random (r, d, w) in
[0.25, 4] at 224 px (32 px for the tiny CNN), 1000 classes. Target: under 1 ms.

Part ``plan``: what the traced base adds, alone: in a fresh process each, import, register the
base and plan the smoke search's 24 candidates (the driver's counting work), for
``examples/tiny_cnn.toml`` and ``examples/tiny_cnn_spec.toml``, alternated. The training
that follows is the same for both (same candidates, same seeds).

Part ``smoke``: ``tinyformula fit --preset smoke`` on ``examples/tiny_cnn.toml`` (a PyTorch
model counted by tracing) and on ``examples/tiny_cnn_spec.toml`` (the same network as a spec),
alternated, each in a fresh run folder, timed by wall clock from the command's start to its end
(import, registration, planning, training, fit). Same seed, same candidates, same training:
the difference is the counting. Target: the traced search at most 20% longer.

    python experiments/bench_bases.py [--part count|plan|smoke|all] [--repeats 2]
        [--out /tmp/bench_bases]

Writes experiments/results/bases.md and bases.json (with command, machine, load, date).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, provenance

from tinyformula import Scale, get_base, list_bases, network_cost

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path(
        "/proc/loadavg").exists() else "n/a"


def _busy(loads: str | None) -> bool:
    """Whether a '1 5 15'-minute load average says other work shared the 2 cores (more than
    the two processes a measurement runs itself)."""
    try:
        return float((loads or "").split()[0]) > 2.5
    except (IndexError, ValueError):
        return True


def count_times(n: int = 50, seed: int = 0) -> list[dict]:
    rows = []
    names = list_bases() + [str(EXAMPLES / "tiny_cnn_spec.toml")]
    for name in names:
        base = get_base(name)
        rng = random.Random(seed)
        scales = [Scale(*(2 ** rng.uniform(-2, 2) for _ in range(3))) for _ in range(n)]
        times = []
        for scale in scales:
            best = []
            for _ in range(5):
                start = time.perf_counter()
                network_cost(base.network(scale, 1000))
                best.append(time.perf_counter() - start)
            times.append(min(best))
        rows.append({"base": base.name, "median_ms": 1e3 * statistics.median(times),
                     "max_ms": 1e3 * max(times)})
        print(f"{base.name:24s} median {rows[-1]['median_ms']:.3f} ms, "
              f"max {rows[-1]['max_ms']:.3f} ms", file=sys.stderr)
    return rows


PLAN_CODE = """
import json, sys, time
start = time.perf_counter()
from tinyformula import PRESETS, Yardstick, get_base, plan_candidates
base = get_base(sys.argv[1])
registered = time.perf_counter()
yardstick = Yardstick(base.name, 10, 32)
plan = plan_candidates(yardstick, PRESETS["smoke"].trials, c_range=(0.03, 1.0), seed=0)
end = time.perf_counter()
print(json.dumps({"import_register_s": registered - start, "plan_s": end - registered,
                  "total_s": end - start, "candidates": [c.to_dict() for c in plan],
                  "counting": base.counting()}))
"""


def plan_once(spec: str) -> dict:
    before = load()
    proc = subprocess.run([sys.executable, "-c", PLAN_CODE, spec], capture_output=True,
                          text=True, check=True)
    row = json.loads(proc.stdout)
    row.update(base=spec, load_before=before, load_after=load())
    print(json.dumps({k: v for k, v in row.items() if k != "candidates"}), file=sys.stderr)
    return row


def smoke_once(spec: str, out: Path) -> dict:
    before = load()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinyformula", "fit", "--base", spec,
                           "--preset", "smoke", "--out", str(out), "--json"],
                          capture_output=True, text=True, env={**os.environ})
    seconds = time.perf_counter() - start
    row = {"base": spec, "seconds": seconds, "exit": proc.returncode, "load_before": before,
           "load_after": load()}
    if proc.returncode == 0:
        summary = json.loads(proc.stdout)
        row.update(trials=summary["trials"], ok=summary["ok"], base_counting=summary["base"])
    else:
        row["error"] = proc.stderr.strip().splitlines()[-1:]
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("count", "plan", "smoke", "all", "render"),
                        default="all", help="what to measure (render: none, rewrite the .md "
                                            "from bases.json); measured parts replace those "
                                            "of earlier runs in bases.json, others are kept")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="/tmp/bench_bases")
    args = parser.parse_args()
    start = time.perf_counter()
    saved = RESULTS / "bases.json"
    report: dict = json.loads(saved.read_text()) if saved.exists() else {}
    if args.part != "render":
        report["load_start"] = load()
    if args.part in ("count", "all"):
        report["count"] = count_times()
    if args.part in ("plan", "all"):
        plans = [plan_once(str(EXAMPLES / spec)) for _ in range(args.repeats + 1)
                 for spec in ("tiny_cnn_spec.toml", "tiny_cnn.toml")]
        same = all(p["candidates"] == plans[0]["candidates"] for p in plans)
        for p in plans:
            del p["candidates"]
        report["plan"] = {"runs": plans, "same_candidates": same}
    if args.part in ("smoke", "all"):
        runs = []
        for i in range(args.repeats):
            for spec in ("tiny_cnn_spec.toml", "tiny_cnn.toml"):
                out = Path(args.out) / f"{Path(spec).stem}-{i}"
                if out.exists():
                    raise SystemExit(f"{out} exists; give another --out")
                runs.append(smoke_once(str(EXAMPLES / spec), out))
        report["smoke"] = runs
        traced = [r["seconds"] for r in runs if r["base"].endswith("tiny_cnn.toml")]
        spec_ = [r["seconds"] for r in runs if r["base"].endswith("tiny_cnn_spec.toml")]
        report["smoke_ratio"] = statistics.median(traced) / statistics.median(spec_)
    if args.part != "render":
        report["load_end"] = load()
        report.setdefault("commands", []).append(" ".join(["experiments/bench_bases.py"]
                                                          + sys.argv[1:]))
    command = ["experiments/bench_bases.py"] + sys.argv[1:]
    if args.part == "render" and report.get("commands"):
        command = report["commands"][-1].split() + ["(rendered again)"]
    (RESULTS / "bases.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Bases: spec counts and a traced base's search", "",
             provenance(command, time.perf_counter() - start),
             "Measured by: " + "; ".join(f"`python {c}`" for c in report.get("commands", [])),
             "",
             f"Load average (1, 5, 15 min) at the start of the last: "
             f"{report.get('load_start')}; at its end: {report.get('load_end')} "
             + ("(2 cores shared with other work: figures are under that load)."
                if _busy(report.get("load_start")) else
                "(the machine was otherwise idle: the load is the measurement's own work)."),
             ""]
    if "count" in report:
        lines += ["## One analytic count of a spec base (target: under 1 ms)", "",
                  "Median (and largest) of the best of 5 timings of one uncached count, over 50 "
                  "random (r, d, w) in [0.25, 4], 1000 classes:", "",
                  "| base | median ms | max ms |", "|---|---|---|"]
        lines += [f"| {r['base']} | {r['median_ms']:.3f} | {r['max_ms']:.3f} |"
                  for r in report["count"]]
        lines.append("")
    if "plan" in report:
        same = "the same" if report["plan"]["same_candidates"] else "NOT the same"
        lines += ["## What a traced base adds: import, registration and planning, alone", "",
                  "A fresh process each: import tinyformula, register the base, plan the smoke "
                  "search's 24 candidates (the counting a search does before training; the "
                  f"candidates are {same} for both bases).", "",
                  "| base | import + register s | plan s | total s | load before | counted |",
                  "|---|---|---|---|---|---|"]
        for r in report["plan"]["runs"]:
            counting = r["counting"]
            how = counting["counted"]
            if how == "traced":
                how += (f", {counting['counts']} networks, "
                        f"{counting['seconds_per_count'] * 1e3:.0f} ms each")
            lines.append(f"| {Path(r['base']).name} | {r['import_register_s']:.1f} | "
                         f"{r['plan_s']:.1f} | {r['total_s']:.1f} | {r['load_before']} | "
                         f"{how} |")
        runs = report["plan"]["runs"]
        extra = [t["total_s"] - s["total_s"] for s, t in zip(runs[::2], runs[1::2])]
        lines += ["", f"Seconds the traced base adds, pair by pair: "
                  f"{', '.join(f'{x:.1f}' for x in extra)} (median "
                  f"{statistics.median(extra):.1f}). Most of it is the factory building a module "
                  f"for every (d, w) the width solver tries (it cannot know two widths give the "
                  f"same network without building both), then torch's import and fvcore's check; "
                  f"the counts themselves are the smaller part. The smoke search's training "
                  f"that follows is the same for both bases.", ""]
    if "smoke" in report:
        lines += ["## Smoke search: traced base against the same network as a spec "
                  "(target: at most +20%)", "",
                  "| run | base | wall s | load before | load after | counted |",
                  "|---|---|---|---|---|---|"]
        for i, r in enumerate(report["smoke"]):
            counting = r.get("base_counting") or {}
            how = counting.get("counted", "?")
            if how == "traced" and counting.get("seconds_per_count"):
                how += (f", {counting['counts']} networks, "
                        f"{counting['seconds_per_count'] * 1e3:.0f} ms each")
            lines.append(f"| {i} | {Path(r['base']).name} | {r['seconds']:.1f} | "
                         f"{r['load_before']} | {r['load_after']} | {how} |")
        lines += ["", f"Median traced / median spec wall time: **{report['smoke_ratio']:.3f}** "
                  f"({(report['smoke_ratio'] - 1) * 100:+.1f}%). Each run is the whole command "
                  f"in a fresh process (import, registration and fvcore's check, planning, 26 "
                  f"trainings on 2 workers, the fit); the planning table above times the "
                  f"counting alone, in its own runs and under its own load.", ""]
    (RESULTS / "bases.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
