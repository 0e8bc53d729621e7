"""Benchmark: the trainer on a CUDA GPU, eager against graphed, one trial and many at once.

1. Per-trial training images/s (the whole training loop, graph warm-up and capture included),
   eager (``cuda_graph=False``) against graphed, for EfficientNet-B0 at 32 px, a tiny
   candidate (16 px) and a high-resolution one (64 px), at batch 128, 256 and 512, on real
   Fashion-MNIST. Issue #12's target: B0 at 32 px, batch 256, graphed >= 20,000 images/s.
2. Aggregate trials per hour for the default and paper presets: the first ``--sample``
   trials of each preset's plan, run by worker processes pinned to the GPUs
   (``tinyformula.gpu``: trials at once per GPU from free memory, or ``--per-gpu``), and the
   paper preset's whole search extrapolated from that rate.

Prints a table and writes ``experiments/results/bench_gpu.md`` with the GPU's name, the torch
version and the date. Needs CUDA; on a machine without one it says so and exits.

    PYTHONPATH=. python experiments/bench_gpu.py [--steps 60] [--sample 16] [--per-gpu N]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CANDIDATES = {"B0 (32 px)": (1.0, 1.0, 1.0), "tiny (16 px)": (0.5, 0.25, 0.25),
              "high-res (64 px)": (2.0, 0.5, 0.5)}
BATCHES = (128, 256, 512)


def per_trial(data, scale, batch_size: int, steps: int, graphed: bool) -> tuple[float, bool]:
    from tinyformula import Scale, TrainConfig, train

    config = TrainConfig(train_size=min(len(data.train_images), batch_size * steps),
                         batch_size=batch_size, device="cuda", cuda_graph=graphed,
                         bn_recalibrate=0, val_size=1)
    result = train(data, "efficientnet_b0", Scale(*scale), config)
    if result.status != "ok":
        raise RuntimeError(f"{scale} batch {batch_size}: {result.status} {result.message}")
    return result.images_per_s, result.graphed


def trials_per_hour(preset: str, sample: int, per_gpu: int | None, data) -> dict:
    """Run the first ``sample`` trials of ``preset``'s plan through the search's own GPU path:
    the driver's worker plan (measured memory, N trials per GPU) and the local executor."""
    from tinyformula import (
        PRESETS,
        SearchConfig,
        Trial,
        cached_dataset,
        make_executor,
        plan_gpus,
        search_candidates,
        trial_jobs,
    )

    config = SearchConfig(preset=preset, device="cuda", trials_per_gpu=per_gpu).resolved(
        train_images=len(data.train_images))
    dataset = cached_dataset(config.data, config.data_dir, config.val_size)
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    images = config.train_size * config.epochs
    trials = [Trial(i, i, config.seed, candidate, images=images)
              for i, candidate in enumerate(search_candidates(config, yardstick))]
    notes: list[str] = []
    slots, device = plan_gpus(config, yardstick, trials, dataset, notes.append)
    jobs = trial_jobs(config, yardstick, trials[:sample], device)
    with make_executor("local", None, None, slots) as executor:
        list(executor.train(jobs[:len(slots)]))  # start-up and data loading, untimed
        start = time.perf_counter()
        results = list(executor.train(jobs))
        wall = time.perf_counter() - start
    rate = len(jobs) / wall * 3600
    return {"preset": preset, "per_gpu": len(slots), "notes": notes,
            "trial_gib": float("nan"), "sample": len(jobs), "wall": wall, "rate": rate,
            "ok": sum(r.state == "ok" for r in results),
            "graphed": sum("graph" not in (r.message or "") for r in results),
            "total": len(trials) + config.replicates, "preset_info": PRESETS[preset],
            "search_minutes": (len(trials) + config.replicates) / rate * 60}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    parser.add_argument("--sample", type=int, default=16, help="trials per preset measured")
    parser.add_argument("--per-gpu", type=int, default=None, help="trials at once per GPU")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU visible to torch "
              f"{torch.__version__}; nothing measured.")
        return 1
    from tinyformula import load_dataset

    data = load_dataset("fashion-mnist")
    name = torch.cuda.get_device_name(0)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f"{name}, torch {torch.__version__}, {date}"
    print(header)
    per_trial(data, CANDIDATES["tiny (16 px)"], 128, 8, True)  # warm-up: kernels, cuDNN
    lines = ["| candidate | batch | eager img/s | graphed img/s | speed-up |",
             "|---|---:|---:|---:|---:|"]
    for label, scale in CANDIDATES.items():
        for batch in BATCHES:
            eager, _ = per_trial(data, scale, batch, args.steps, False)
            graphed, captured = per_trial(data, scale, batch, args.steps, True)
            cell = f"{graphed:,.0f}" + ("" if captured else " (capture failed: eager)")
            lines.append(f"| {label} | {batch} | {eager:,.0f} | {cell} | {graphed / eager:.2f}x |")
            print(lines[-1], flush=True)
    lines += ["", "| preset | trials at once | trials/h | whole search (extrapolated) |",
              "|---|---|---:|---:|"]
    for preset in ("default", "paper"):
        row = trials_per_hour(preset, args.sample, args.per_gpu, data)
        lines.append(f"| {preset} ({row['total']} trials) | {row['per_gpu']} | "
                     f"{row['rate']:,.0f} | {row['search_minutes']:.1f} min "
                     f"({row['sample']} trials timed, {row['ok']} ok, {row['graphed']} without "
                     f"a capture note) |")
        for note in row["notes"]:  # the driver's plan: GiB measured per trial, trials per GPU
            lines.append(f"  note: {note}")
        print(lines[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = (f"# bench_gpu\n\nProduced by `python {' '.join(sys.argv)}` on {header}.\n"
            f"Per-trial figures count the whole training loop (graph warm-up and capture "
            f"included) over {args.steps} steps.\n\n" + "\n".join(lines) + "\n")
    (RESULTS / "bench_gpu.md").write_text(text)
    print(f"\nwritten to {RESULTS / 'bench_gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
