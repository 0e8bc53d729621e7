"""Same FLOPs, one pixel apart: does the input size alone move a validated network's top-1?

    python experiments/pixel_twins.py VALIDATION.json NAME [NAME ...] [--workers N]
        [--out RESULT]

The bases here start with a stride-2 convolution, so inputs of 2k - 1 and 2k pixels give the
same feature maps after the stem: the same FLOPs and parameters. For every network that the
formulas ``NAME ...`` got in ``VALIDATION.json`` (a ``tinyformula validate`` report, 32-px base
resolution), its *twin* is the other size of its pair, at the same d and w. Twins the report
did not train are trained here with the report's seeds, images and split (``tinyformula train
--score-on test``). Each twin's FLOPs are checked to equal its network's first. Then the script
checks that this machine reproduces the report: it retrains one of the report's networks at one
seed and requires the same score (a CPU training is deterministic per processor only). It then
reports, per pair, the paired difference even minus odd with its standard error.

Writes ``experiments/results/RESULT.md`` and ``.json`` (default ``pixel_twins``). Minutes:
one training per twin and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import network_scores, read_validation, refusing, write_results  # noqa: E402

RESOLUTION_BASE = 32


def tool(*args: str) -> dict:
    """``tinyformula ARGS --json`` in a single-threaded process: its JSON answer."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "tinyformula.cli", *args, "--json"],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        from tinyformula import TinyFormulaError

        raise TinyFormulaError(f"tinyformula {' '.join(args)}: "
                               f"{done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def shape(report: dict, px: int, d: float, w: float) -> list[str]:
    return ["--base", report["base"], "--r", f"{(px + 0.5) / RESOLUTION_BASE:.6f}",
            "--d", f"{d:g}", "--w", f"{w:g}"]


def cost(report: dict, px: int, d: float, w: float) -> tuple[int, int]:
    """FLOPs and parameters of the network (px, d, w)."""
    answer = tool("flops", *shape(report, px, d, w), "--resolution-base",
                  str(RESOLUTION_BASE), "--num-classes", "10")
    return answer["flops"], answer["params"]


def train(report: dict, px: int, d: float, w: float, seed: int) -> float:
    answer = tool("train", *shape(report, px, d, w), "--data", report["data"],
                  "--train-size", str(report["schedules"][-1]["images"]),
                  "--seed", str(seed), "--score-on", "test", "--quiet")
    return answer["top1"]


def known_scores(report: dict, names: list[str]):
    """The report's networks: (px, d, w) -> {seed: top-1}, and one (px, d, w) per distinct
    network of ``names`` (two d that round to the same layers are one network)."""
    def key(entry):
        return entry["resolution"], entry["d"], entry["w"]

    every = network_scores(report)
    scores = {key(e): every[e["network"]]["scores"] for e in report["entries"]
              if e.get("network") in every}
    return scores, sorted(key(n["entry"]) for n in network_scores(report, names).values())


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("validation", type=Path)
    parser.add_argument("names", nargs="+", help="the formulas whose networks are twinned")
    parser.add_argument("--workers", type=positive, default=2, help="trainings at once")
    parser.add_argument("--out", default="pixel_twins")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    with refusing(parser):
        report = read_validation(args.validation)
        if report["cost"] != "flops":
            raise_error(f"{args.validation} counts {report['cost']}, not FLOPs")
        scores, mine = known_scores(report, args.names)
        if not mine:
            raise_error(f"none of {', '.join(args.names)} was trained in {args.validation}")
        seeds = sorted(report["seeds"])
        pairs, seen = [], set()
        for px, d, w in mine:
            twin = (px + 1 if px % 2 else px - 1, d, w)
            odd, even = sorted([(px, d, w), twin])
            costs = cost(report, *odd), cost(report, *even)
            if costs[0] != costs[1]:
                raise_error(f"{odd[0]} and {even[0]} px (d {d:g}, w {w:g}) differ in FLOPs "
                            f"or parameters on {report['base']}: not twins")
            if (odd[0], costs[0]) not in seen:      # one pair per distinct network
                seen.add((odd[0], costs[0]))
                pairs.append((odd, even))
        probe = next(iter(mine))
        seed = min(scores[probe])
        again = train(report, *probe, seed)
        if abs(again - scores[probe][seed]) > 1e-9:
            raise_error(f"this machine does not reproduce the report: {probe[0]} px at seed "
                        f"{seed} scored {100 * again:.2f}%, the report says "
                        f"{100 * scores[probe][seed]:.2f}%; run where the report was made")
        jobs = [(net, s) for pair in pairs for net in pair for s in seeds
                if s not in scores.get(net, {})]
        print(f"{len(pairs)} pairs, {len(jobs)} trainings to run", file=sys.stderr)
        with ThreadPoolExecutor(args.workers) as pool:
            for (net, s), top1 in zip(jobs, pool.map(lambda job: train(report, *job[0],
                                                                       job[1]), jobs)):
                scores.setdefault(net, {})[s] = top1
    rows = []
    for odd, even in pairs:
        diff = np.array([scores[even][s] - scores[odd][s] for s in seeds])
        rows.append({"odd": odd, "even": even, "odd_top1": float(np.mean(
            [scores[odd][s] for s in seeds])), "even_top1": float(np.mean(
            [scores[even][s] for s in seeds])), "difference": float(diff.mean()),
            "se": float(diff.std(ddof=1) / np.sqrt(len(diff))), "seeds": len(diff)})
    diffs = np.array([row["difference"] for row in rows])
    lines = [f"{report['base']} on {report['data']}, {report['schedules'][-1]['images']:,} "
             f"images, seeds {' '.join(map(str, seeds))}; networks of "
             f"{', '.join(args.names)} in `{report['out']}` and their same-FLOPs twins.", "",
             "| odd px | even px | d | w | odd top-1 | even top-1 | even - odd (± se) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['odd'][0]} | {row['even'][0]} | {row['odd'][1]:g} | "
                     f"{row['odd'][2]:g} | {100 * row['odd_top1']:.2f} | "
                     f"{100 * row['even_top1']:.2f} | {100 * row['difference']:+.2f} ± "
                     f"{100 * row['se']:.2f} |")
    spread = f", sd over pairs {100 * diffs.std(ddof=1):.2f}" if len(diffs) > 1 else ""
    lines += ["", f"Over {len(rows)} pairs: even - odd {100 * diffs.mean():+.2f} points on "
              f"average{spread}; mean |difference| {100 * np.abs(diffs).mean():.2f}."]
    write_results(args.out, "\n".join(lines) + "\n",
                  {"validation": str(args.validation), "names": args.names, "rows": rows},
                  start, load, title="Same FLOPs, one pixel apart")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def raise_error(message: str):
    from tinyformula import TinyFormulaError

    raise TinyFormulaError(message)


if __name__ == "__main__":
    main()
