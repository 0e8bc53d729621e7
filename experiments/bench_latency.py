"""Benchmark: the latency model's predictions against measured latency, on random candidates.

Draws candidates as the search does (``plan_candidates``, budgeted sampler, c in 0.03-1.0),
builds the latency table from empty for them (calibration networks, then every distinct block
of every candidate: the time this takes is the table build time), predicts each candidate's
latency from the table (pure Python; the median time per prediction is reported), then measures
each candidate end to end with the same protocol (twice: the second pass, against the
first, is the noise floor), and reports the share of predictions within
+-10% of the measurement and the median absolute error. The 1-minute load average is recorded
before and after: other processes on a shared machine distort both sides.

    python experiments/bench_latency.py [--base efficientnet_b0] [--n 50] [--resolution-base 224]
        [--threads 1] [--seed 0] [--out experiments/results/latency.md]

About 6 minutes for 50 candidates at 224 px on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tinyformula import (
    LatencyModel,
    LatencyProtocol,
    Yardstick,
    get_base,
    machine_description,
    plan_candidates,
)
from tinyformula import LatencySetting as Setting
from tinyformula import measure_latency as measure_network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, provenance  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="efficientnet_b0")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--resolution-base", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.md")
    args = parser.parse_args()

    started = time.perf_counter()
    load_before = os.getloadavg()
    base = get_base(args.base)
    setting = Setting(threads=args.threads)
    candidates = plan_candidates(Yardstick(base.name, resolution_base=args.resolution_base),
                                 args.n, seed=args.seed)
    scales = [c.scale for c in candidates]
    options = {"num_classes": 1000, "resolution_base": args.resolution_base}

    with tempfile.TemporaryDirectory() as cache:  # an empty table: time the whole build
        t0 = time.perf_counter()
        model = LatencyModel.load_or_build(base, threads=args.threads, cache_dir=Path(cache),
                                           **options)
        calibration_s = time.perf_counter() - t0
        units_built = model.prebuild(scales, **options)
        build_s = time.perf_counter() - t0
        calibration = model.calibration(**options)
        print(f"table: {len(model._units)} units ({units_built} for the candidates) in "
              f"{build_s:.0f} s (calibration {calibration_s:.0f} s); "
              f"correction {calibration.offset_ms:+.3f} ms + {calibration.factor:.3f} x sum",
              file=sys.stderr)

        profiled = model.profiled
        predicted, predict_s = [], []
        for scale in scales:
            t = time.perf_counter()
            predicted.append(model.predict_ms(scale, **options))
            predict_s.append(time.perf_counter() - t)
        assert model.profiled == profiled, "a prediction timed a block: the table was incomplete"

    rows = []
    for index, (candidate, scale, p) in enumerate(zip(candidates, scales, predicted)):
        timing = measure_network(base.network(scale, **options), setting)
        error = p / timing.p10_ms - 1
        rows.append([index, candidate, p, timing, error, p / timing.median_ms - 1])
        print(f"{index:3d} c={candidate.c:.3f} {candidate.resolution:4d}px "
              f"predicted {p:8.2f} measured p10 {timing.p10_ms:8.2f} median "
              f"{timing.median_ms:8.2f} ms  {error:+.1%}  load {timing.load:.1f}", file=sys.stderr)
    # The noise floor: every candidate measured again, after all the others.
    for row, scale in zip(rows, scales):
        again = measure_network(base.network(scale, **options), setting)
        row.append(again.p10_ms / row[3].p10_ms - 1)
    load_after = os.getloadavg()

    def judge(column: int) -> str:
        errors = [abs(row[column]) for row in rows]
        return (f"{sum(e <= 0.10 for e in errors) / len(errors):.0%} within +-10%, median "
                f"absolute error {statistics.median(errors):.1%}")

    predict_ms = 1e3 * statistics.median(predict_s)
    summary = (f"{len(rows)} candidates: against the measured p10, {judge(4)}; against the "
               f"measured median, {judge(5)}; a second measurement against the first (the "
               f"noise floor): {judge(6)}; table built in {build_s:.0f} s; a prediction "
               f"takes {predict_ms:.2f} ms")
    print(summary)

    command = ["experiments/bench_latency.py", *sys.argv[1:]]
    lines = [
        "# Latency model: predicted against measured\n",
        provenance(command, time.perf_counter() - started),
        f"Machine: {machine_description()}; torch eager, {args.threads} thread(s), batch 1, "
        f"CPU. Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after: "
        "the machine is shared, and load distorts both the table and the measurements.\n",
        f"Base {args.base}, {len(rows)} candidates from `plan_candidates` (budgeted, c "
        f"0.03-1.0, seed {args.seed}) at resolution base {args.resolution_base}, 1000 classes.\n",
        f"**{summary}.**\n",
        f"Table: {len(model._units)} distinct blocks ({units_built} needed by the candidates "
        f"beyond the {LatencyProtocol().calibration_networks} calibration networks), built "
        f"from empty in {build_s:.0f} s "
        f"(calibration {calibration_s:.0f} s). Correction: measured = "
        f"{calibration.offset_ms:+.3f} ms + {calibration.factor:.3f} x sum of block latencies.\n",
        "The model predicts the latency of an otherwise idle machine (the table keeps each "
        "block's 10th percentile, see `tinyformula/cost/latency/model.py`), so the like-for-like "
        "comparison on a shared machine is with the measured p10; on an idle machine the "
        "median and p10 agree.\n",
        "| # | c | px | r | d | w | predicted ms | measured p10 | median | p90 | error vs p10 "
        "| vs median | 2nd p10 vs 1st | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, candidate, p, timing, error, error_median, repeat in rows:
        lines.append(f"| {index} | {candidate.c:.3f} | {candidate.resolution} | "
                     f"{candidate.r:.3f} | {candidate.d:.3f} | {candidate.w:.3f} | {p:.2f} | "
                     f"{timing.p10_ms:.2f} | {timing.median_ms:.2f} | {timing.p90_ms:.2f} | "
                     f"{error:+.1%} | {error_median:+.1%} | {repeat:+.1%} | "
                     f"{timing.load:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
