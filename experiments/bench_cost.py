"""Benchmark: the analytic cost model against building the module and counting it with fvcore.

Both count the same 50 candidates, drawn as the search draws them (r, d, w log-uniform in
[0.25, 4], kept when c is inside the default search range 0.03-1.0), at 224 px and 1000
classes. Prints the median time of each per candidate and their ratio, and checks on every
candidate that the two counts agree.

    python experiments/bench_cost.py [--base efficientnet_b0] [--n 50] [--seed 0]

Takes about a minute on a 2-core CPU (fvcore dominates).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from tinyformula import Scale, fvcore_flops, get_base, network_cost, param_count


def draw_candidates(base, n: int, seed: int, c_range=(0.03, 1.0)) -> list[Scale]:
    rng = random.Random(seed)
    reference = base.cost().flops
    lo, hi = math.log(0.25), math.log(4.0)
    found = []
    while len(found) < n:
        scale = Scale(*(math.exp(rng.uniform(lo, hi)) for _ in range(3)))
        if c_range[0] <= base.cost(scale).flops / reference <= c_range[1]:
            found.append(scale)
    return found


def time_analytic(base, scale: Scale, repeats: int = 50) -> float:
    """Median seconds of one uncached analytic count (layer tree built and walked each time)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        network_cost(base.network(scale))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_fvcore(base, scale: Scale) -> tuple[float, int, int]:
    start = time.perf_counter()
    model = base.build(scale)
    flops = fvcore_flops(model, model.input_resolution)
    return time.perf_counter() - start, flops, param_count(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="efficientnet_b0")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = get_base(args.base)
    candidates = draw_candidates(base, args.n, args.seed)
    fvcore_flops(base.build(), 224)  # warm up torch and the tracer once, outside the timings

    analytic, counted, mismatches = [], [], 0
    for scale in candidates:
        analytic.append(time_analytic(base, scale))
        seconds, flops, params = time_fvcore(base, scale)
        counted.append(seconds)
        cost = base.cost(scale)
        mismatches += (flops, params) != (cost.flops, cost.params)

    a, f = statistics.median(analytic), statistics.median(counted)
    ratios = sorted(fc / an for fc, an in zip(counted, analytic))
    print(f"base {base.name}: {len(candidates)} candidates, c in [0.03, 1.0], 224 px, 1000 classes")
    print(f"analytic cost model      median {a * 1e3:8.3f} ms per candidate")
    print(f"build + fvcore count     median {f * 1e3:8.1f} ms per candidate")
    print(f"ratio of medians         {f / a:8.0f}x")
    median = statistics.median(ratios)
    print(f"per-candidate ratio      min {ratios[0]:.0f}x, median {median:.0f}x, "
          f"max {ratios[-1]:.0f}x")
    print(f"counts that disagree     {mismatches} of {len(candidates)}")


if __name__ == "__main__":
    main()
