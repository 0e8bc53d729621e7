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
import multiprocessing as mp
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CANDIDATES = {"B0 (32 px)": (1.0, 1.0, 1.0), "tiny (16 px)": (0.5, 0.25, 0.25),
              "high-res (64 px)": (2.0, 0.5, 0.5)}
BATCHES = (128, 256, 512)


def per_trial(data, scale, batch_size: int, steps: int, graphed: bool) -> tuple[float, bool]:
    from tinyformula import Scale
    from tinyformula.train import TrainConfig, train

    config = TrainConfig(train_size=min(len(data.train_images), batch_size * steps),
                         batch_size=batch_size, device="cuda", cuda_graph=graphed,
                         bn_recalibrate=0, val_size=1)
    result = train(data, "efficientnet_b0", Scale(*scale), config)
    if result.status != "ok":
        raise RuntimeError(f"{scale} batch {batch_size}: {result.status} {result.message}")
    return result.images_per_s, result.graphed


_DATA = None


def _worker_init(slots, val_size):
    global _DATA
    from tinyformula.gpu import claim_gpu

    claim_gpu(slots)
    import torch

    from tinyformula.data import load_dataset
    from tinyformula.data.core import carve_validation

    torch.set_num_threads(1)
    _DATA = carve_validation(load_dataset("fashion-mnist"), val_size)


def _run_trial(job: dict) -> dict:
    from tinyformula import Scale
    from tinyformula.train import TrainConfig, train

    config = TrainConfig(train_size=job["train_size"], epochs=job["epochs"], seed=job["seed"],
                         val_size=job["val_size"], device="cuda", threads=1)
    result = train(_DATA, "efficientnet_b0", Scale(job["r"], job["d"], job["w"]), config)
    return {"status": result.status, "graphed": result.graphed, "seconds": result.seconds}


def trials_per_hour(preset: str, sample: int, per_gpu: int | None, data) -> dict:
    """Run the first ``sample`` trials of ``preset``'s plan on every GPU at once."""
    from tinyformula import Scale
    from tinyformula.gpu import measure_trial_bytes, plan_gpu_workers, visible_gpus
    from tinyformula.presets import PRESETS
    from tinyformula.run import SearchConfig, plan_trials
    from tinyformula.train import TrainConfig

    search = SearchConfig(preset=preset).resolved()
    trials = plan_trials(search, data.num_classes, data.resolution_base)
    largest = max(trials, key=lambda t: (t["resolution"], t["c"]))
    trial_bytes = measure_trial_bytes(
        data, "efficientnet_b0", Scale(largest["r"], largest["d"], largest["w"]),
        TrainConfig(train_size=search.train_size, device="cuda", val_size=search.val_size))
    plan = plan_gpu_workers(visible_gpus(), trial_bytes, override=per_gpu)
    jobs = [{"r": t["r"], "d": t["d"], "w": t["w"], "seed": t["seed"],
             "train_size": search.train_size, "epochs": search.epochs,
             "val_size": search.val_size} for t in trials[:sample]]
    ctx = mp.get_context("spawn")
    slots = ctx.Queue()
    for index in plan.slots:
        slots.put(index)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(plan.workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(slots, search.val_size)) as pool:
        list(pool.map(_run_trial, jobs[:plan.workers]))  # start-up and data loading, untimed
        start = time.perf_counter()
        results = list(pool.map(_run_trial, jobs))
        wall = time.perf_counter() - start
    total = len(trials)
    rate = len(jobs) / wall * 3600
    return {"preset": preset, "per_gpu": plan.per_gpu, "notes": plan.notes,
            "trial_gib": trial_bytes / 2**30, "sample": len(jobs), "wall": wall, "rate": rate,
            "ok": sum(r["status"] == "ok" for r in results),
            "graphed": sum(r["graphed"] for r in results), "total": total,
            "search_minutes": total / rate * 60, "preset_info": PRESETS[preset]}


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
    from tinyformula.data import load_dataset

    data = load_dataset("fashion-mnist")
    name = torch.cuda.get_device_name(0)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f"{name}, torch {torch.__version__}, {date}"
    print(header)
    per_trial(data, CANDIDATES["tiny (16 px)"], 128, 8, True)  # warm-up: kernels, cuDNN
    lines = ["| candidate | batch | eager img/s | graphed img/s | speed-up |", "|---|---:|---:|---:|---:|"]
    for label, scale in CANDIDATES.items():
        for batch in BATCHES:
            eager, _ = per_trial(data, scale, batch, args.steps, False)
            graphed, captured = per_trial(data, scale, batch, args.steps, True)
            cell = f"{graphed:,.0f}" + ("" if captured else " (capture failed: eager)")
            lines.append(f"| {label} | {batch} | {eager:,.0f} | {cell} | {graphed / eager:.2f}x |")
            print(lines[-1], flush=True)
    lines += ["", "| preset | trials at once per GPU | GiB per trial (measured) | trials/h | "
                  "whole search (extrapolated) |", "|---|---|---:|---:|---:|"]
    for preset in ("default", "paper"):
        row = trials_per_hour(preset, args.sample, args.per_gpu, data)
        lines.append(f"| {preset} ({row['total']} trials) | {row['per_gpu']} | "
                     f"{row['trial_gib']:.2f} | {row['rate']:,.0f} | "
                     f"{row['search_minutes']:.1f} min ({row['sample']} trials timed, "
                     f"{row['ok']} ok, {row['graphed']} graphed) |")
        for note in row["notes"]:
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
