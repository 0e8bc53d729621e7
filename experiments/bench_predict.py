"""Benchmark: `tinyformula predict --flops 0.25`, wall time with Python start-up, against solving
the same width by building modules and counting them with fvcore.

    python experiments/bench_predict.py [--flops 0.25] [--runs 10]

Prints the median wall time of the command over --runs runs (each a fresh process, as a
user would run it), the median time of the same bisection with build + fvcore as the counter
(one run: it is slow), and their ratio. Takes a minute or two on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

from tinyformula import TinyFormula, Yardstick, fvcore_flops, solve_budget


def time_command(argv: list[str], runs: int) -> tuple[float, dict]:
    times, output = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        output = json.loads(result.stdout)
    return statistics.median(times), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flops", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    command = shutil.which("tinyformula")
    argv = [command] if command else [sys.executable, "-m", "tinyformula.cli"]
    argv += ["predict", "--flops", str(args.flops), "--json"]
    cli_seconds, answer = time_command(argv, args.runs)
    bare_seconds, _ = time_command([sys.executable, "-c", "print('{}')"], args.runs)

    # The same width, solved with build + fvcore as the FLOP counter.
    yardstick = Yardstick("efficientnet_b0")
    base = yardstick.network
    formula = TinyFormula.builtin()
    (r,), (d,) = formula.predict(args.flops)
    counts = 0

    def fvcore_count(scale):
        nonlocal counts
        counts += 1
        model = base.build(scale)
        return fvcore_flops(model, model.input_resolution)

    start = time.perf_counter()
    solution = solve_budget(yardstick, args.flops, float(r), float(d), amount_of=fvcore_count)
    fvcore_seconds = time.perf_counter() - start

    print(f"tinyformula predict --flops {args.flops}: median {cli_seconds * 1e3:.0f} ms wall over "
          f"{args.runs} runs (bare Python start-up: {bare_seconds * 1e3:.0f} ms)")
    print(f"  answer: r={answer['r']:.4f} d={answer['d']:.4f} w={answer['w']} "
          f"resolution={answer['resolution']} c={answer['c']:.4f}")
    print(f"same solve (width bisection and resolution search) with build + fvcore: "
          f"{fvcore_seconds:.1f} s for {counts} counts, w={solution.w}, "
          f"resolution={solution.resolution}, c={solution.c:.4f}")
    print(f"ratio: {fvcore_seconds / cli_seconds:.0f}x (whole command, start-up included)")


if __name__ == "__main__":
    main()
