"""What the paper-analysis experiments share: the search's recipe and executor, and output.

Every model is trained with the same recipe (the search's short schedule: SGD + Nesterov,
one epoch over a seed-fixed subset of Fashion-MNIST's training images) and scored on images
held out from the *training* split (``carve_validation``), never on the test set.
Each worker process trains with one torch thread: on 2 cores that is 1.25-1.34x faster than
one two-thread process (experiments/bench_cores.py).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
VAL_SIZE = 2000

def run_jobs(jobs: list[dict], workers: int, val_size: int = VAL_SIZE):
    """Train each job (a dict with ``r, d, w, seed, train_size``) with the search's own
    executor and yield it back with its result (top-1, loss, status, seconds), as each ends.

    Workers are single-thread processes scored on ``val_size`` training images held out
    (``carve_validation``), exactly as ``tinyformula fit`` trains its trials.
    """
    from tqdm import tqdm

    from tinyformula import Scale, Yardstick
    from tinyformula.executors import LocalExecutor
    from tinyformula.train import TrainConfig
    from tinyformula.trial import DataSource, TrialJob

    yardstick = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
    data = DataSource("fashion-mnist", validation=val_size)
    typed = [TrialJob(id=i, base=yardstick.base, scale=Scale(job["r"], job["d"], job["w"]),
                      resolution_base=yardstick.resolution_base, data=data,
                      train=TrainConfig(train_size=job["train_size"], epochs=1,
                                        seed=job["seed"]))
             for i, job in enumerate(jobs)]
    with LocalExecutor(workers) as executor:
        for result in tqdm(executor.train(typed), total=len(typed), unit="model",
                           file=sys.stderr, dynamic_ncols=True):
            config = yardstick.measure(typed[result.id].scale)
            yield {**jobs[result.id], "top1": result.top1, "loss": result.loss,
                   "status": result.state.value, "seconds": result.seconds,
                   "resolution": config.resolution, "flops": config.flops,
                   "params": config.params}


def provenance(command: list[str], seconds: float) -> str:
    """The lines every results file starts with: what produced it, when, where, how long."""
    import torch

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Produced by `python {' '.join(command)}` on {now}, in {seconds / 60:.1f} min "
            f"on {os.cpu_count()} CPU cores ({platform.machine()}, torch {torch.__version__}, "
            f"shared with other work).\n")


def save_figure(figure, path: Path) -> None:
    from tinyformula.plots import save_figure as save

    path.parent.mkdir(parents=True, exist_ok=True)
    save(figure, path)


def write_csv(rows: list[dict], path: Path) -> None:
    """Every single training run, so a table or figure can be re-derived without retraining."""
    import csv

    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in columns[:3])))
