"""Benchmark: the trainer on a CUDA GPU, eager against graphed, one trial and many at once.

1. **Per trial**: steady-state training images/s, eager (``cuda_graph=False``) against
   graphed, for EfficientNet-B0 at 32 px, a tiny candidate (16 px) and a high-resolution one
   (64 px), at batch 128, 256 and 512, on real Fashion-MNIST. Each configuration is run once
   untimed (cuDNN's algorithm search, lazy kernel loading, the allocator's pools: whichever
   of eager and graphed came first would pay them), then once timed. The timed figure is the
   steady state only: the steps after the eager warm-up and the capture, timed with CUDA
   events (``TrainResult.steady_images_per_s``); warm-up, capture, graph instantiation,
   BatchNorm recalibration and scoring are not in it. The runs happen in a worker process of
   their own (a failed capture must not leave this process unreliable): a configuration whose
   capture failed is trained eagerly there and reported as "capture failed", never as
   graphed. Issue #12's target: B0 at 32 px, batch 256, graphed >= 20,000 images/s.
2. **A search's throughput**, for the default and paper presets: the first ``--sample`` trials
   of each preset's plan on the full schedule (the default preset's halving trains about as
   many images, equal compute, so its wall time is close), run by the search's own GPU path
   (the driver's plan: measured memory, the throughput ramp where it pays, host caps; one
   pinned worker process per slot), after one untimed round of ``workers`` trials (start-up,
   data loading). Reported: the workers (trials at once per GPU x GPUs), the median per-trial
   and the aggregate steady-state images/s (:func:`tinyformula.aggregate_rate` over the trials'
   windows), trials per hour of wall time (everything included), and the whole preset's wall
   time extrapolated from that rate. Trials are counted as graphed only when they finished ok
   with their step graphed.

Prints the tables and writes ``experiments/results/bench_gpu.md`` (``--out``) with the GPU's
name, the torch version and the date. Each part (``--parts``: per-trial, default, paper) is
its own section of that file, rewritten as soon as the part ends, so a run stopped at a time
limit keeps what it finished; a part that was started and did not finish says so in its
section, and sections of parts not run this time are left as they were
(``scripts/gpu_first_run.sh`` runs each part under a time limit of its own). Needs CUDA; on a
machine without one it says so and exits 1.

    PYTHONPATH=. python experiments/bench_gpu.py [--parts per-trial default paper]
        [--steps 60] [--batches 128 256 512] [--sample 16] [--per-gpu N] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CANDIDATES = {"B0 (32 px)": (1.0, 1.0, 1.0), "tiny (16 px)": (0.5, 0.25, 0.25),
              "high-res (64 px)": (2.0, 0.5, 0.5)}
BATCHES = (128, 256, 512)
PRESETS = ("default", "paper")
PARTS = ("per-trial",) + PRESETS
# Steps of the untimed round's short copies: the trainer's eager warm-up (3 steps), the
# capture, then replays.
WARM_UP_STEPS = 24


# -- arithmetic (tested on the CPU: tests/test_bench_gpu.py) --------------------------------

def trials_per_hour(trials: int, wall_seconds: float) -> float:
    """Trials finished per hour of wall time."""
    return trials / wall_seconds * 3600 if wall_seconds > 0 else 0.0


def search_minutes(total_trials: int, per_hour: float) -> float:
    """Minutes a search of ``total_trials`` takes at ``per_hour`` trials per hour."""
    return total_trials / per_hour * 60 if per_hour > 0 else float("inf")


def workers_label(per_gpu: dict[int, int]) -> str:
    """How many trials run at once, said honestly: per GPU and in all."""
    counts, total = list(per_gpu.values()), sum(per_gpu.values())
    gpus = f"{len(counts)} GPU{'s' if len(counts) != 1 else ''}"
    if len(set(counts)) == 1:
        return f"{counts[0]} per GPU x {gpus} = {total} at once"
    return f"{' + '.join(str(n) for n in counts)} on {gpus} = {total} at once"


def outcomes(results) -> dict[str, int]:
    """Trials by outcome: ok and graphed, ok but eager (a capture failed, or graphs off), and
    not ok (out of memory, diverged, failed)."""
    ok = [r for r in results if str(r.state) == "ok"]
    graphed = sum(bool(r.graphed) for r in ok)
    return {"graphed": graphed, "eager": len(ok) - graphed, "not ok": len(results) - len(ok)}


def per_trial_rate(results) -> float:
    """The median steady-state images/s of one trial, over the trials that finished ok."""
    rates = [r.steady_images / r.steady_seconds for r in results
             if str(r.state) == "ok" and r.steady_seconds > 0]
    return statistics.median(rates) if rates else 0.0


def speedup(eager: float, graphed: float) -> str:
    return f"{graphed / eager:.2f}x" if eager > 0 and graphed > 0 else "-"


def windows(results) -> list[tuple[float, float, int]]:
    """Each ok trial's steady-state window (start, seconds, images)."""
    return [(r.steady_start, r.steady_seconds, r.steady_images) for r in results
            if str(r.state) == "ok" and r.steady_seconds > 0]


def warm_up_job(job, steps: int = WARM_UP_STEPS):
    """A short copy of ``job`` for the untimed round before a preset's timed trials: the same
    candidate, batch and data (so each worker pays its start-up, data loading, cuDNN's
    algorithm search and the lazy kernel loading for these shapes, eager and captured), but
    only ``steps`` training steps and a token scoring, so the round costs seconds rather than
    a whole trial."""
    train = job.train
    size = min(train.batch_size * steps, train.train_size or train.batch_size * steps)
    return replace(job, train=train.replace(train_size=size, epochs=1, bn_recalibrate=0,
                                            val_size=train.batch_size))


def section(part: str, body: str) -> str:
    """One part's section of the results file, between markers that :func:`merge` finds."""
    return f"<!-- part: {part} -->\n{body.rstrip()}\n<!-- end: {part} -->\n"


def unfinished(part: str, command: list[str]) -> str:
    """What a part's section says while it runs: replaced when it ends; left if it was
    stopped (a time limit, a crash), so the file never passes an old figure off as new."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"## {part}\n\n**Not finished**: started on {now} by `python "
            f"{' '.join(command)}`, and stopped (a time limit or an error) before it ended; "
            f"nothing of this part was measured in that run.")


def merge(text: str, part: str, new_section: str, header: str) -> str:
    """The results file ``text`` with ``part``'s section replaced by ``new_section`` (the
    other parts' sections kept as they were, in :data:`PARTS` order), under ``header``."""
    found = {name: match.group(0) for name, match in
             ((m.group(1), m) for m in re.finditer(
                 r"<!-- part: ([\w-]+) -->\n.*?<!-- end: \1 -->\n", text, flags=re.S))}
    found[part] = new_section
    order = list(PARTS) + sorted(set(found) - set(PARTS))
    return header.rstrip() + "\n\n" + "\n".join(found[name] for name in order
                                                  if name in found)


# -- measurements (need CUDA) ------------------------------------------------------------------

def per_trial_job(scale, batch_size: int, steps: int, graphed: bool, images: int, index: int):
    from tinyformula import DataSource, Scale, TrainConfig, TrialJob

    return TrialJob(id=index, base="efficientnet_b0", scale=Scale(*scale), resolution_base=32,
                    data=DataSource("fashion-mnist"),
                    train=TrainConfig(train_size=min(images, batch_size * steps),
                                      batch_size=batch_size, device="cuda",
                                      cuda_graph=graphed, bn_recalibrate=0, val_size=1))


def measure_per_trial(steps: int, images: int, batches=BATCHES, on_row=None) -> list[str]:
    """Section 1's table rows, each configuration untimed once then timed once, in one
    worker process on GPU 0; ``on_row(rows, left)`` after each row (``left``: configurations
    still to measure), so a run stopped midway keeps the rows it finished."""
    from tinyformula import GpuExecutor

    rows = ["| candidate | batch | eager img/s | graphed img/s | speed-up |",
            "|---|---:|---:|---:|---:|"]
    with GpuExecutor((0,)) as executor:
        for label, scale in CANDIDATES.items():
            for batch in batches:
                rates, cells = {}, {}
                for index, graphed in enumerate((False, True)):
                    job = per_trial_job(scale, batch, steps, graphed, images, index)
                    list(executor.train([job]))  # untimed: this configuration's set-up
                    [result] = list(executor.train([job]))
                    rates[graphed] = per_trial_rate([result])
                    cell = f"{rates[graphed]:,.0f}"
                    if str(result.state) != "ok":
                        cell = f"{result.state}: {result.message[:60]}"
                    elif graphed and not result.graphed:
                        cell += (" (capture failed: eager)" if "capture failed" in
                                 result.message else " (not graphed)")
                    cells[graphed] = cell
                rows.append(f"| {label} | {batch} | {cells[False]} | {cells[True]} | "
                            f"{speedup(rates[False], rates[True])} |")
                print(rows[-1], flush=True)
                if on_row is not None:
                    on_row(rows, len(CANDIDATES) * len(batches) - (len(rows) - 2))
    return rows


def measure_preset(preset: str, sample: int, per_gpu: int | None) -> dict:
    """Section 2 for one preset: its first ``sample`` trials through the search's GPU path."""
    from tinyformula import (
        SearchConfig,
        Trial,
        aggregate_rate,
        cached_dataset,
        make_executor,
        plan_gpus,
        search_candidates,
        trial_jobs,
    )

    images = len(cached_dataset("fashion-mnist").train_images)
    # Measured on the full schedule, every trial at the preset's whole budget: a halving
    # preset trains about as many images (equal compute), in more, shorter trials.
    config = SearchConfig(preset=preset, device="cuda", trials_per_gpu=per_gpu,
                          schedule="full").resolved(train_images=images)
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    trials = [Trial(i, i, config.seed, candidate, images=config.train_size * config.epochs)
              for i, candidate in enumerate(search_candidates(config, yardstick))]
    notes: list[str] = []
    slots, device = plan_gpus(config, yardstick, trials, dataset, notes.append)
    per = {gpu: slots.count(gpu) for gpu in dict.fromkeys(slots)}
    jobs = trial_jobs(config, yardstick, trials[:sample], device)
    with make_executor("local", None, None, slots, device=device,
                       log=notes.append) as executor:
        # Untimed: each worker's start-up, data, cuDNN set-up, on short copies of its first job.
        list(executor.train([warm_up_job(job) for job in jobs[:len(slots)]]))
        start = time.perf_counter()
        results = list(executor.train(jobs))
        wall = time.perf_counter() - start
    total = len(trials) + config.replicates
    rate = trials_per_hour(len(jobs), wall)
    return {"preset": preset, "total": total, "workers": workers_label(per),
            "per_trial": per_trial_rate(results), "aggregate": aggregate_rate(windows(results)),
            "per_hour": rate, "minutes": search_minutes(total, rate), "sample": len(jobs),
            "wall": wall, "outcomes": outcomes(results), "notes": notes}


def preset_rows(rows: list[dict]) -> list[str]:
    lines = ["| preset | trials at once | per-trial img/s | aggregate img/s | trials/h | "
             "whole search (extrapolated) | sample |", "|---|---|---:|---:|---:|---:|---|"]
    for row in rows:
        said = ", ".join(f"{n} {kind}" for kind, n in row["outcomes"].items())
        lines.append(f"| {row['preset']} ({row['total']} trials) | {row['workers']} | "
                     f"{row['per_trial']:,.0f} | {row['aggregate']:,.0f} | "
                     f"{row['per_hour']:,.0f} | {row['minutes']:.1f} min | {row['sample']} "
                     f"trials in {row['wall']:.0f} s: {said} |")
        lines += [f"  note: {note}" for note in row["notes"]]
    return lines


HEADER = ("# bench_gpu\n\nThe trainer on a CUDA GPU (experiments/bench_gpu.py). Each part below "
          "was measured by the command and on the GPU it names. Per-trial figures are the "
          "steady state (steps after the eager warm-up and the capture, timed with CUDA "
          "events), each configuration run once untimed first. Trials per hour count wall "
          "time with everything in it, after one untimed round of short trials.\n")


def write_part(path: Path, part: str, body: str) -> None:
    """Put ``part``'s section into the results file at ``path``, keeping the others."""
    text = path.read_text() if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(merge(text, part, section(part, body), HEADER))
    temporary.replace(path)  # a run stopped while writing leaves the old file whole


def partial_body(part: str, made: str, gpu: str, what: str, rows: list[str], left: int) -> str:
    """A part's section while it runs, with the rows it has finished: what a run stopped at
    its time limit leaves (it says so)."""
    return (f"## {part}\n\n**Partial**: {left} more configuration(s) were to be measured "
            f"when this was written; if this line is still here, the run was stopped (a time "
            f"limit or an error) before them.\n\n{made}GPU: {gpu}; {what}.\n\n"
            + "\n".join(rows))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to measure, in this order (default: all)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES),
                        help="batch sizes of the per-trial part")
    parser.add_argument("--sample", type=int, default=16, help="trials per preset measured")
    parser.add_argument("--per-gpu", type=int, default=None,
                        help="trials at once per GPU (default: the search's own plan)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_gpu.md",
                        help="the results file (each part's section is replaced in it)")
    args = parser.parse_args(argv)
    for flag in ("steps", "sample"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if min(args.batches) < 1 or (args.per_gpu is not None and args.per_gpu < 1):
        parser.error("--batches and --per-gpu must be at least 1")
    return args


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA GPU visible to torch {torch.__version__}; nothing "
              f"measured.")
        return 1
    from _common import provenance

    from tinyformula import load_dataset

    command = [Path(sys.argv[0]).as_posix()] + (sys.argv[1:] if argv is None else list(argv))
    name = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    print(name, flush=True)
    for part in args.parts:
        write_part(args.out, part, unfinished(part, command))
        tic = time.perf_counter()
        if part == "per-trial":
            images = len(load_dataset("fashion-mnist").train_images)
            what = (f"{args.steps}-step runs of each configuration, eager against graphed, in "
                    f"one worker process")

            def partial(rows, left, part=part, tic=tic, what=what):
                write_part(args.out, part, partial_body(
                    part, provenance(command, time.perf_counter() - tic), name, what, rows,
                    left))

            lines = measure_per_trial(args.steps, images, tuple(args.batches), partial)
        else:
            row = measure_preset(part, args.sample, args.per_gpu)
            lines = preset_rows([row])
            print("\n".join(lines[2:]), flush=True)
            what = (f"the first {row['sample']} trials of the {part} preset (its candidates "
                    f"come in random order) through the search's GPU path; a sample of one "
                    f"round of trials waits for its slowest, so its trials per hour are a "
                    f"floor")
        body = (f"## {part}\n\n{provenance(command, time.perf_counter() - tic)}GPU: {name}; "
                f"{what}.\n\n" + "\n".join(lines))
        write_part(args.out, part, body)
        print(f"{part}: written to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
