"""What the paper-analysis experiments share: the search's recipe and executor, and output.

Every model is trained with the same recipe (the search's short schedule: SGD + Nesterov,
one epoch over a seed-fixed subset of Fashion-MNIST's training images) and scored on images
held out from the *training* split (``carve_validation``), never on the test set.
Each worker process trains with one torch thread: on 2 cores that is 1.25-1.34x faster than
one two-thread process (experiments/bench_cores.py).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
VAL_SIZE = 2000

def trial_job(job: dict, index: int = 0, val_size: int = VAL_SIZE):
    """The search's typed job for one experiment job (a dict with ``r, d, w, seed,
    train_size``): B0 on Fashion-MNIST at 32 px, scored on ``val_size`` held-out training
    images, exactly as ``tinyformula fit`` trains its trials."""
    from tinyformula import DataSource, Scale, TrainConfig, TrialJob

    return TrialJob(id=index, base="efficientnet_b0", scale=Scale(job["r"], job["d"], job["w"]),
                    resolution_base=32, data=DataSource("fashion-mnist", validation=val_size),
                    train=TrainConfig(train_size=job["train_size"], epochs=1, seed=job["seed"]))


def with_result(job: dict, result) -> dict:
    """``job`` with its trial's result (a ``TrialResult`` or a ``TrainResult``) and its
    network's resolution, FLOPs and params."""
    from tinyformula import Scale, Yardstick

    config = Yardstick("efficientnet_b0", 10, 32).measure(Scale(job["r"], job["d"], job["w"]))
    status = result.state.value if hasattr(result, "state") else result.status
    return {**job, "top1": result.top1, "loss": result.loss, "status": status,
            "seconds": result.seconds, "resolution": config.resolution, "flops": config.flops,
            "params": config.params}


def train_one(job: dict) -> dict:
    """Train one job in this process, single-threaded, with the search's ``run_trial``."""
    from tinyformula import run_trial

    return with_result(job, run_trial(trial_job(job, val_size=job.get("val_size", VAL_SIZE)),
                                      threads=1))


def run_jobs(jobs: list[dict], workers: int, val_size: int = VAL_SIZE, worker=None):
    """Train every job and yield it back with its result as each ends, on ``workers``
    single-thread processes: the search's own executor, or, with ``worker`` (a module-level
    function taking and returning a job dict, e.g. one that swaps something in around
    :func:`train_one`), a plain process pool running it."""
    from tqdm import tqdm

    if worker is None:
        from tinyformula import LocalExecutor

        typed = [trial_job(job, i, val_size) for i, job in enumerate(jobs)]
        with LocalExecutor(workers) as executor:
            for result in tqdm(executor.train(typed), total=len(typed), unit="model",
                               file=sys.stderr, dynamic_ncols=True):
                yield with_result(jobs[result.id], result)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(worker, {"val_size": val_size, **job}) for job in jobs]
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


def write_results(out: str, table: str, data, started: float, load: float,
                  title: str = "") -> None:
    """Print ``table``, then write ``experiments/results/OUT.md`` (``title``, the provenance
    lines, the load average before (``load``) and now, and ``table``) and ``OUT.json``
    (``data``). ``started``: the ``time.perf_counter()`` the run began at."""
    import json
    import time

    from tinyformula.core.files import write_atomically

    print(table)
    loads = f"Load average (1 min) {load:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
    RESULTS.mkdir(exist_ok=True)
    write_atomically(RESULTS / f"{out}.md", (f"# {title}\n\n" if title else "")
                     + provenance(sys.argv, time.perf_counter() - started) + loads + "\n"
                     + table + "\n")
    write_atomically(RESULTS / f"{out}.json", json.dumps(data, indent=1, default=str) + "\n")


def recommendation_cells(formula, budgets) -> list[str]:
    """The formula's recommendation at each budget as a table cell, ``r / d / w (px)``, or
    ``unreachable`` where it cannot be solved."""
    cells = []
    for c in budgets:
        try:
            rec = formula.recommend(c)
        except Exception:  # noqa: BLE001 - shown as unreachable
            cells.append("unreachable")
            continue
        cells.append(f"{rec.r:.2f} / {rec.d:.2f} / {rec.w:.2f} ({rec.resolution} px)")
    return cells


REPORT_KEYS = ("base", "seeds", "schedules", "by_schedule", "entries", "scores")


def read_validation(path) -> dict:
    """A ``tinyformula validate`` report (``validation.json``), checked to be one: a file that
    is missing, not JSON or not such a report raises a one-line TinyFormulaError."""
    import json

    from tinyformula import TinyFormulaError

    try:
        report = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TinyFormulaError(f"cannot read {path} as a validation report: {error}") from None
    if not isinstance(report, dict) or any(key not in report for key in REPORT_KEYS) \
            or not report["by_schedule"] or not report["schedules"]:
        raise TinyFormulaError(f"{path} is not a validation report (tinyformula validate's "
                               f"validation.json)")
    return report


def network_scores(report: dict, formulas=None) -> dict[str, dict]:
    """Per distinct network of a validate report at its longest schedule (only those of
    ``formulas``, when given): its ``entry`` (c_budget, r, d, w, resolution, ...) and its
    ``scores`` as {training seed: top-1}. Formulas that got the same network share one."""
    images = report["schedules"][-1]["images"]
    entries = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
    networks: dict[str, dict] = {}
    for score in report["scores"]:
        entry = entries.get((score["c_budget"], score["formula"]))
        if not entry or not entry.get("network") or score["images"] != images \
                or (formulas is not None and score["formula"] not in formulas):
            continue
        network = networks.setdefault(entry["network"], {"entry": entry, "scores": {}})
        network["scores"][score["seed"]] = score["top1"]
    return networks


def refit_with_surrogate(config, yardstick, trials, surrogate):
    """The search's formula refitted without a band, its surrogate built by ``surrogate`` (a
    class or factory taking ``Surrogate``'s arguments) in place of the package's: how the
    experiments try another reading of the same trials without touching the package."""
    import tinyformula.sweep.fitting as fitting

    saved = fitting.Surrogate
    fitting.Surrogate = surrogate
    try:
        return fitting.fit_formula(config, yardstick, trials, draws=0)
    finally:
        fitting.Surrogate = saved


def named(spec: str) -> tuple[str, str]:
    """An argparse type: ``NAME=PATH`` as (name, path); anything else is refused."""
    import argparse

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{spec!r}: give NAME=PATH")
    return name, path


@contextlib.contextmanager
def refusing(parser):
    """Bad input met inside the block (a TinyFormulaError: a folder that is not a run, a
    formula file that is not there) ends the script as argparse does: one line, exit status
    2, before anything is written."""
    from tinyformula import TinyFormulaError

    try:
        yield
    except TinyFormulaError as error:
        parser.error(str(error))


def save_figure(figure, path: Path) -> None:
    from tinyformula import save_figure as save

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
