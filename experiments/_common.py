"""What the paper-analysis experiments share: one training recipe, a two-process pool, output.

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

_DATA = None


def _load(val_size: int) -> None:
    global _DATA
    import torch

    from tinyformula.data import load_dataset
    from tinyformula.data.core import carve_validation

    torch.set_num_threads(1)
    _DATA = carve_validation(load_dataset("fashion-mnist"), val_size)


def train_one(job: dict) -> dict:
    """Train one (r, d, w) with the shared recipe; ``job`` carries the scale, seed and sizes."""
    from tinyformula.scale import Scale
    from tinyformula.train import TrainConfig, train

    config = TrainConfig(train_size=job["train_size"], epochs=1, seed=job["seed"], threads=1,
                         val_size=job["val_size"])
    result = train(_DATA, "efficientnet_b0", Scale(job["r"], job["d"], job["w"]), config,
                   resolution_base=32)
    return {**job, "top1": result.top1, "loss": result.loss, "status": result.status,
            "seconds": result.seconds, "resolution": result.resolution, "flops": result.flops,
            "params": result.params}


def run_jobs(jobs: list[dict], workers: int, val_size: int = VAL_SIZE, worker=train_one):
    """Yield finished jobs as they complete, from ``workers`` single-thread processes.

    ``worker`` trains one job (default :func:`train_one`); it must be importable by name (a
    module-level function) so the spawned processes can find it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_load, initargs=(val_size,)) as pool:
        futures = [pool.submit(worker, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), unit="model",
                           file=sys.stderr, dynamic_ncols=True):
            yield future.result()


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
