"""Benchmark: how efficiently the search spends its time.

    python experiments/bench_search.py [--preset default] [--out runs/bench-search] [--workers N]

Runs the search with the preset on Fashion-MNIST in a fresh folder, then reports trials per
hour, the share of wall time spent inside trials (training, scoring; the rest is planning,
start-up, the store and the GP fit), the frontier's size, and the time a resume takes: the
search is run again on the finished folder (nothing left to train) and on a copy with its
last three trials reset to pending. The default preset takes up to 30 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import time
from pathlib import Path

from tinyformula import search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--out", default="runs/bench-search")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run = search("efficientnet_b0", "fashion-mnist", out=out, preset=args.preset,
                 workers=args.workers)
    wall = time.perf_counter() - start
    trials = run.trials
    in_trials = trials["seconds"].fillna(0).sum()
    workers = args.workers or os.cpu_count() or 1  # the local executor's default

    start = time.perf_counter()
    search("efficientnet_b0", "fashion-mnist", out=out, preset=args.preset, progress=False)
    resume_finished = time.perf_counter() - start

    partial = out.with_name(out.name + "-partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(out, partial)
    (partial / "formula.json").unlink()
    with sqlite3.connect(partial / "trials.sqlite") as db:
        db.execute("UPDATE trials SET status='pending', top1=NULL, seconds=NULL "
                   "WHERE id IN (SELECT id FROM trials ORDER BY id DESC LIMIT 3)")
    last3 = trials.sort_values("id").tail(3)["seconds"].sum()
    start = time.perf_counter()
    resumed = search("efficientnet_b0", "fashion-mnist", out=partial, preset=args.preset,
                     progress=False)
    resume_partial = time.perf_counter() - start

    print(f"preset {args.preset}: {len(trials)} trials in {wall / 60:.1f} min wall "
          f"({workers} worker(s)), {(trials['status'] == 'ok').sum()} ok")
    print(f"trials per hour            {len(trials) / wall * 3600:8.1f}")
    print(f"wall time inside trials    {in_trials / workers / wall:8.1%} (sum of trial times / "
          f"(workers x wall))")
    print(f"frontier points            {len(run.frontier):8d}")
    print(f"resume, nothing left       {resume_finished:8.2f} s")
    print(f"resume, 3 trials left      {resume_partial:8.1f} s (those 3 trials took "
          f"{last3:.1f} s in the first run)")
    same = resumed.formula.recommend(0.25) == run.formula.recommend(0.25)
    print(f"resumed formula equals the uninterrupted one: {same}")


if __name__ == "__main__":
    main()
