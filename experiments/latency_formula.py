"""A formula fitted on latency beside one fitted on FLOPs, at equal measured latency.

    python experiments/latency_formula.py --latency-run runs/lat --flops-run runs/flops
        [--budgets 0.13 0.25 0.5] [--seeds 2] [--train-size 4096] [--workers 2]

Both run folders come from ``tinyformula fit`` on Fashion-MNIST with the same preset and seed,
one with ``--cost latency`` (1 CPU thread) and one with the default ``--cost flops``. At each
relative latency budget c it takes

* **latency**: the latency formula's configuration, ``recommend(c)``;
* **flops**: the FLOPs formula's configuration at the FLOPs budget whose network has the same
  *predicted* latency (bisection on the FLOPs budget), so both cost the same on this CPU;

measures both networks' latency (the protocol of ``tinyformula latency``: 1 thread, batch 1,
median), and trains each with the search's recipe for every seed (one epoch over
``--train-size`` images, scored on 2,000 images held out from the training split). It prints
how r, d and w differ and the top-1 of both, and writes ``experiments/results/latency_formula.md``.
Run it on a quiet machine: latency measured under load is noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, VAL_SIZE, provenance, run_jobs  # noqa: E402


def flops_at_equal_latency(flops_formula, latency_yardstick, target_ms: float):
    """The FLOPs formula's recommendation whose predicted latency is closest to
    ``target_ms`` from below (bisection on the FLOPs budget, in log space)."""
    import math

    lo, hi = math.log(1e-3), math.log(1.0)
    best = None
    for _ in range(30):
        mid = (lo + hi) / 2
        try:
            rec = flops_formula.recommend(math.exp(mid))
        except Exception:  # below the smallest network: go up
            lo = mid
            continue
        ms = latency_yardstick.amount(rec.config.scale)
        if ms <= target_ms:
            best, lo = rec, mid
        else:
            hi = mid
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-run", type=Path, required=True)
    parser.add_argument("--flops-run", type=Path, required=True)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.13, 0.25, 0.5])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from tinyformula import LatencyProtocol as Protocol
    from tinyformula import LatencySetting as Setting
    from tinyformula import load_run, machine_description
    from tinyformula import measure_latency as measure_network

    start = time.perf_counter()
    latency_run, flops_run = load_run(args.latency_run), load_run(args.flops_run)
    lat_formula, flops_formula = latency_run.formula, flops_run.formula
    yardstick = lat_formula.yardstick
    setting = Setting(yardstick.device, yardstick.threads, 1, yardstick.runtime)
    rows = []
    for c in args.budgets:
        lat = lat_formula.recommend(c)
        target = c * yardstick.reference
        flops = flops_at_equal_latency(flops_formula, yardstick, target)
        for name, rec in (("latency", lat), ("flops", flops)):
            network = yardstick.network.network(rec.config.scale, yardstick.num_classes,
                                                yardstick.resolution_base)
            timing = measure_network(network, setting, Protocol())
            rows.append({"c": c, "formula": name, "r": rec.config.r, "d": rec.config.d,
                         "w": rec.config.w, "resolution": rec.config.resolution,
                         "mflops": rec.config.flops / 1e6,
                         "predicted_ms": yardstick.amount(rec.config.scale),
                         "measured_ms": timing.median_ms})
    jobs = [{**row, "seed": seed, "train_size": args.train_size, "val_size": VAL_SIZE}
            for row in rows for seed in range(args.seeds)]
    results = list(run_jobs(jobs, args.workers))
    for row in rows:
        scores = [100 * r["top1"] for r in results
                  if r["c"] == row["c"] and r["formula"] == row["formula"] and r["top1"]]
        row["top1"] = statistics.fmean(scores) if scores else float("nan")
        row["spread"] = max(scores) - min(scores) if len(scores) > 1 else 0.0
    seconds = time.perf_counter() - start
    lines = [
        "# A latency formula beside a FLOPs formula, at equal predicted latency\n",
        provenance(sys.argv, seconds),
        f"Machine: {machine_description()}. Latency runs: `{args.latency_run}` "
        f"({yardstick.describe_cost()}); FLOPs run: `{args.flops_run}`. Each configuration "
        f"trained with {args.seeds} seeds, {args.train_size:,} images, one epoch; top-1 on "
        f"{VAL_SIZE:,} held-out training images.\n",
        "| c (latency) | formula | r | d | w | px | MFLOPs | predicted ms | measured ms | "
        "top-1 % (spread) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['c']:g} | {row['formula']} | {row['r']:.3f} | {row['d']:.3f} | "
                     f"{row['w']:.3f} | {row['resolution']} | {row['mflops']:.2f} | "
                     f"{row['predicted_ms']:.2f} | {row['measured_ms']:.2f} | "
                     f"{row['top1']:.1f} ({row['spread']:.1f}) |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency_formula.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
