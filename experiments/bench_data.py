"""Benchmark: the prepared image cache on a generated photo folder (issue 23).

Sections (run any, in any order; each merges its figures into
``experiments/results/bench_data.json`` and rewrites ``bench_data.md`` from all of them):

``prepare``  decode the folder into its cache (``prepare_dataset``, every core, forced): images/s,
             seconds, cache size.
``draft``    JPEG draft mode against exact decoding, on a subset of the folder, at 224 and 112 px:
             images/s and how far the pixels differ.
``memory``   a worker's memory while it trains one trial (1, 2 and 4 workers at once), on
             Fashion-MNIST and on the photos, the same candidate at the same input size, so
             only the data differs: peak RSS, its private (anonymous) part, its file-backed
             part (the mapped cache, shared between workers) and PSS (shared pages divided
             among the processes mapping them); plus one photo trial at 224 px base.
``latency``  seconds from a trial's start to the end of its first step in a fresh worker
             process (the cache opened, checked and mapped; the batches drawn; the model
             built), and from ``search()`` to its first trial for a second search on the same
             folder.
``trial``    one smoke-preset trial at 224 px base, timed: what sizes the smoke search.
``search``   a smoke search at 224 px base end to end (``--trials``, ``--train-size``); with
             ``--summarize``, the figures of the search already in its folder.
``learn``    one small candidate trained longer on the photos: the classes can be learnt.
``identity`` Fashion-MNIST trials' top-1 and loss as JSON: run it on two checkouts (before and
             after the cache) and compare.

The photo folder comes from ``scripts/make_photo_folder.py`` (22,000 JPEGs, 256-416 px a side,
10 classes). Run on a shared machine with ``nice -n 5``; the load is recorded before and after.

    PYTHONPATH=. nice -n 5 python experiments/bench_data.py prepare draft memory latency \\
        [--folder /work/runs/data/photos] [--cache /work/runs/data/cache]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
JSON = RESULTS / "bench_data.json"
MB = 2**20
# The memory section's candidate: small enough that four train at once on two cores; both
# datasets at the same input size (32 px base), so the model's own memory is the same.
MEMORY_SCALE = (0.5, 0.35, 0.35)


def load_now() -> float:
    return os.getloadavg()[0]


def photo_name(folder: str) -> str:
    return f"imagefolder:{folder}"


# -- prepare ---------------------------------------------------------------------------------------

def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the decoding processes)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def section_prepare(args) -> dict:
    from tinyformula import prepare_dataset

    cpu = cpu_seconds()
    result = prepare_dataset(photo_name(args.folder), force=True, progress=True)
    cpu = cpu_seconds() - cpu
    cores = len(os.sched_getaffinity(0))
    return {"images": result.train + result.val, "decoded": result.decoded,
            "seconds": round(result.seconds, 1), "images_per_s": round(result.images_per_s, 1),
            "cpu_seconds": round(cpu, 1),
            # What the cores would decode if the machine were ours: images per CPU second.
            "images_per_cpu_s": round(result.decoded / cpu, 1),
            "idle_images_per_s": round(cores * result.decoded / cpu, 1),
            "cache_bytes": result.bytes, "size": result.size, "folder": result.folder,
            "source_bytes": sum(f.stat().st_size for f in Path(args.folder).rglob("*.jpg")),
            "workers": len(os.sched_getaffinity(0))}


# -- draft -----------------------------------------------------------------------------------------

def _draft_folders(args) -> dict[str, Path]:
    """A 1,800-image subset of the folder (symlinks), and 300 of its images enlarged four
    times (1,000-1,700 px a side, JPEG quality 90: phone-photo sizes, where draft mode acts)."""
    from PIL import Image

    root = Path(args.cache).parent
    subset, large = root / "draft_subset", root / "draft_large"
    if not subset.exists():
        for split, per_class in (("train", 150), ("val", 30)):
            for cls in sorted((Path(args.folder) / split).iterdir()):
                target = subset / split / cls.name
                target.mkdir(parents=True)
                for image in sorted(cls.iterdir())[:per_class]:
                    (target / image.name).symlink_to(image)
    if not large.exists():
        for split, per_class in (("train", 24), ("val", 6)):
            for cls in sorted((Path(args.folder) / split).iterdir()):
                target = large / split / cls.name
                target.mkdir(parents=True)
                for image in sorted(cls.iterdir())[:per_class]:
                    with Image.open(image) as picture:
                        w, h = picture.size
                        picture.resize((4 * w, 4 * h), Image.Resampling.BICUBIC).save(
                            target / image.name, quality=90)
    return {"photos (256-416 px)": subset, "enlarged (1,000-1,700 px)": large}


def section_draft(args) -> dict:
    import numpy as np

    from tinyformula import open_prepared, prepare_dataset

    rows = []
    for label, folder in _draft_folders(args).items():
        for size in (224, 112):
            arrays = {}
            for draft in (True, False):
                out = Path(args.cache).parent / f"draft_{folder.name}_{size}_{draft}"
                cpu = cpu_seconds()
                result = prepare_dataset(f"imagefolder:{folder}", size=size, out=out,
                                         draft=draft, force=True)
                cpu = cpu_seconds() - cpu
                arrays[draft] = open_prepared(out).train_images.numpy().astype(np.int16)
                rows.append({"images": label, "size": size, "draft": draft,
                             "count": result.decoded,
                             "images_per_s": round(result.images_per_s, 1),
                             "images_per_cpu_s": round(result.decoded / cpu, 1)})
            diff = np.abs(arrays[True] - arrays[False])
            rows[-2].update(mean_abs_diff=round(float(diff.mean()), 3),
                            max_abs_diff=int(diff.max()),
                            share_changed=round(float((diff > 0).mean()), 4))
            print(rows[-2:], file=sys.stderr)
    return {"rows": rows}


# -- memory ----------------------------------------------------------------------------------------

def _memory_worker(name: str, resolution_base: int, scale, train_size: int, val_size: int,
                   checksum: str, ready, go) -> None:
    import torch

    from tinyformula import DataSource, Scale, TrainConfig, TrialJob, run_trial

    torch.set_num_threads(1)
    ready.set()
    go.wait()
    job = TrialJob(id=0, base="efficientnet_b0", scale=Scale(*scale),
                   resolution_base=resolution_base,
                   data=DataSource(name, None, val_size, checksum or None),
                   train=TrainConfig(train_size=train_size, epochs=1, batch_size=128, seed=0,
                                     threads=1))
    result = run_trial(job)
    if result.state != "ok":
        raise SystemExit(f"trial {result.state}: {result.message}")


def _status(pid: int) -> dict:
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = int(value.split()[0]) * 1024
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    fields["Pss"] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return fields


def measure_workers(name: str, workers: int, resolution_base: int, scale, train_size: int,
                    val_size: int, checksum: str) -> dict:
    """Peak memory of each of ``workers`` processes training one trial at once (after torch
    is imported in each: the baseline is subtracted too, as ``*_data`` = peak - at start)."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    procs, readies = [], []
    for _ in range(workers):
        ready = context.Event()
        proc = context.Process(target=_memory_worker,
                               args=(name, resolution_base, scale, train_size, val_size,
                                     checksum, ready, go))
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        ready.wait()
    start = {p.pid: _status(p.pid) for p in procs}
    peak = {p.pid: dict(start[p.pid]) for p in procs}
    go.set()
    tic = time.perf_counter()
    while any(p.is_alive() for p in procs):
        for p in procs:
            for key, value in _status(p.pid).items():
                peak[p.pid][key] = max(peak[p.pid].get(key, 0), value)
        time.sleep(0.2)
    seconds = time.perf_counter() - tic
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"a {name} worker failed (exit codes {[p.exitcode for p in procs]})")

    def mean(key, table):
        return round(sum(table[p.pid].get(key, 0) for p in procs) / workers / MB, 1)

    return {"dataset": name.split(":")[0], "workers": workers, "seconds": round(seconds, 1),
            "rss_mb": mean("VmRSS", peak), "anon_mb": mean("RssAnon", peak),
            "file_mb": mean("RssFile", peak), "pss_mb": mean("Pss", peak),
            "rss_at_start_mb": mean("VmRSS", start)}


def section_memory(args) -> dict:
    from tinyformula import load_dataset

    photos = load_dataset(photo_name(args.folder))
    fashion = load_dataset("fashion-mnist")
    rows = []
    for workers in (1, 2, 4):
        for name, data in (("fashion-mnist", fashion), (photo_name(args.folder), photos)):
            rows.append(measure_workers(name, workers, 32, MEMORY_SCALE, args.memory_train_size,
                                        1000, data.checksum))
            print(rows[-1], file=sys.stderr)
    # Today's in-memory loader held the whole folder in every worker:
    in_memory = (len(photos.train_images) + len(photos.val_images)) * 3 * 224 * 224
    real = measure_workers(photo_name(args.folder), 1, 224, args.trial_scale, 256, 500,
                           photos.checksum)
    return {"rows": rows, "candidate": list(MEMORY_SCALE), "train_size": args.memory_train_size,
            "in_memory_per_worker_mb": round(in_memory / MB), "photo_224": real,
            "photo_224_scale": list(args.trial_scale)}


# -- latency ---------------------------------------------------------------------------------------

def _process_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _latency_worker(name: str, resolution_base: int, checksum: str, queue) -> None:
    tic = time.perf_counter()
    import torch

    from tinyformula import (
        DataSource,
        Scale,
        TrainConfig,
        TrialJob,
        cached_dataset,
        run_trial,
    )

    torch.set_num_threads(1)
    imported = time.perf_counter()
    data = cached_dataset(name, None, 1000, checksum or None)
    opened = time.perf_counter()
    # A one-step trial (128 images at batch 128), scored on one image without BatchNorm
    # recalibration: its training loop is its first step, so start -> loop is the set-up.
    job = TrialJob(id=0, base="efficientnet_b0", scale=Scale(0.5, 0.35, 0.35),
                   resolution_base=resolution_base,
                   data=DataSource(name, None, 1000, checksum or None),
                   train=TrainConfig(train_size=128, epochs=1, batch_size=128, seed=0,
                                     threads=1, val_size=1, bn_recalibrate=0))
    result = run_trial(job)
    done = time.perf_counter()
    step = 128 / result.images_per_s if result.images_per_s else float("nan")
    # The same again in the same process: what every later trial of a worker waits (the
    # first pays for torch's lazily imported parts, on any dataset).
    cpu, again = _process_cpu(), time.perf_counter()
    second = run_trial(job)
    second_step = 128 / second.images_per_s if second.images_per_s else float("nan")
    warm = time.perf_counter() - again - second_step
    queue.put({"imports_s": round(imported - tic, 2), "open_s": round(opened - imported, 3),
               "to_first_step_s": round(done - imported - step, 2),
               "first_step_s": round(step, 2), "to_first_step_warm_s": round(warm, 2),
               "warm_trial_cpu_s": round(_process_cpu() - cpu, 2),
               "state": str(result.state), "images": len(data.train_images)})


class FirstTrial(Exception):
    """Raised by the search's log at its plan line: the first trial starts next."""


def _stop_at_plan(message: str) -> None:
    if " trials (" in message:
        raise FirstTrial


def _search_worker(folder: str, out: str, queue) -> None:
    import torch

    from tinyformula import search

    torch.set_num_threads(1)
    tic, cpu = time.perf_counter(), _process_cpu()
    try:
        search("efficientnet_b0", photo_name(folder), out=out, preset="smoke", workers=1,
               progress=False, log=_stop_at_plan)
    except FirstTrial:
        pass
    queue.put({"wall_s": round(time.perf_counter() - tic, 2),
               "cpu_s": round(_process_cpu() - cpu, 2)})


def section_latency(args) -> dict:
    from tinyformula import load_dataset

    photos = load_dataset(photo_name(args.folder))
    fashion = load_dataset("fashion-mnist")
    context = multiprocessing.get_context("spawn")
    rows = []
    for name, base, data in (("fashion-mnist", 32, fashion),
                             (photo_name(args.folder), 224, photos)):
        for attempt in range(2):
            queue = context.Queue()
            proc = context.Process(target=_latency_worker,
                                   args=(name, base, data.checksum, queue))
            proc.start()
            row = queue.get()
            proc.join()
            rows.append({"dataset": name.split(":")[0], "attempt": attempt + 1, **row})
            print(rows[-1], file=sys.stderr)
    searches = []
    for attempt in range(2):
        out = Path(tempfile.mkdtemp(dir=Path(args.cache).parent))
        queue = context.Queue()
        proc = context.Process(target=_search_worker, args=(args.folder, str(out), queue))
        proc.start()
        searches.append(queue.get())
        proc.join()
        shutil.rmtree(out, ignore_errors=True)
        print(searches[-1], file=sys.stderr)
    return {"workers": rows, "search_to_first_trial": searches}


# -- one trial and a smoke search at 224 px ------------------------------------------------------

def section_trial(args) -> dict:
    from tinyformula import (
        PRESETS,
        SearchConfig,
        load_dataset,
        run_trial,
        search_candidates,
        trial_jobs,
    )

    photos = load_dataset(photo_name(args.folder))
    config = SearchConfig(data=photo_name(args.folder), preset="smoke").resolved(
        train_images=len(photos.train_images))
    yardstick = config.yardstick(photos.num_classes, photos.resolution_base)
    candidates = search_candidates(config, yardstick)
    preset = PRESETS["smoke"]
    rows = []
    for index in args.trial_candidates:
        candidate = candidates[index]
        trial = _trial(candidate, config)
        job = trial_jobs(config, yardstick, [trial])[0]
        tic = time.perf_counter()
        result = run_trial(job, threads=1)
        rows.append({"candidate": index, "r": candidate.scale.r, "d": candidate.scale.d,
                     "w": candidate.scale.w, "c": round(candidate.c, 4),
                     "resolution": candidate.resolution, "state": str(result.state),
                     "top1": result.top1, "seconds": round(time.perf_counter() - tic, 1),
                     "images_per_s": round(result.images_per_s or 0, 1),
                     "load": round(load_now(), 1)})
        print(rows[-1], file=sys.stderr)
    if args.keep_rows:  # add to the rows stored by an earlier run
        stored = json.loads(JSON.read_text()).get("trial", {}).get("rows", []) \
            if JSON.exists() else []
        done = {row["candidate"] for row in rows}
        rows = [row for row in stored if row["candidate"] not in done] + rows
    return {"preset": "smoke", "train_size": preset.train_size, "val_size": preset.val_size,
            "rows": rows}


def _trial(candidate, config):
    from tinyformula import Trial

    return Trial(id=0, candidate=0, seed=config.seed, config=candidate,
                 images=config.train_size * config.epochs)


def section_search(args) -> dict:
    """A smoke search at 224 px base, end to end (or, with ``--summarize``, the figures of
    the one already in the output folder). A search whose trials score at chance ends
    without a formula (the fit refuses them): its trials are recorded all the same."""
    from tinyformula import TinyFormulaError, search

    out = Path(args.cache).parent / "smoke_search"
    refusal = ""
    if not args.summarize:
        shutil.rmtree(out, ignore_errors=True)
        try:
            search("efficientnet_b0", photo_name(args.folder), out=out, preset="smoke",
                   trials=args.trials, train_size=args.train_size, val_size=args.val_size,
                   batch_size=args.batch_size, c_range=tuple(args.c_range),
                   workers=args.workers, progress=True)
        except TinyFormulaError as error:
            refusal = str(error)
    else:  # the refusal, from the run's log when it was kept beside the folder
        log = out.parent / "bench_search.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        refusal = next((line.split("TinyFormulaError: ", 1)[1] for line in reversed(lines)
                        if "TinyFormulaError: " in line), "")
    summary = _search_summary(out, refusal)
    if args.summarize:
        summary["summarized"] = ("recorded afterwards from the run's store; the run's own "
                                 "load is not recorded (25-35 for the sections run that hour)")
    return summary


def _search_summary(out: Path, refusal: str) -> dict:
    """What the search in ``out`` did, read from its store (its configuration and trials)."""
    import sqlite3

    with sqlite3.connect(out / "trials.sqlite") as store:
        identity = json.loads(dict(store.execute("SELECT key, value FROM meta"))["identity"])
        rows = store.execute("SELECT status, top1, seconds, finished_at, resolution "
                             "FROM trials ORDER BY id").fetchall()
    ok = [row for row in rows if row[0] == "ok"]
    # From the first trial's start to the last one's end (the trials' own clock).
    span = max(r[3] for r in ok) - min(r[3] - r[2] for r in ok) if ok else 0.0
    formula = (out / "formula.json").exists()
    return {"trials": len(rows), "ok": len(ok), "seconds": round(span, 1),
            "train_size": identity["train_size"], "val_size": identity["val_size"],
            "batch_size": identity["batch_size"], "c_range": identity["c_range"],
            "started": datetime.datetime.fromtimestamp(min(r[3] - r[2] for r in ok))
            .isoformat(timespec="minutes") if ok else "",
            "top1": [round(float(r[1]), 3) for r in ok],
            "trial_seconds": [round(float(r[2]), 1) for r in ok],
            "resolutions": sorted({int(r[4]) for r in rows}),
            "formula": formula, "refusal": refusal, "out": str(out)}


# -- learn: the folder's classes can be learnt -----------------------------------------------------

def section_learn(args) -> dict:
    import torch

    from tinyformula import Scale, TrainConfig, cached_dataset, train

    torch.set_num_threads(1)
    data = cached_dataset(photo_name(args.folder), None, 1000)
    scale = Scale(*args.learn_scale)
    rows = []
    for epochs in args.learn_epochs:
        config = TrainConfig(train_size=args.learn_train_size, epochs=epochs, batch_size=64,
                             seed=0, threads=1)
        result = train(data, "efficientnet_b0", scale, config)
        rows.append({"epochs": epochs, "top1": result.top1, "loss": result.loss,
                     "resolution": result.resolution, "seconds": round(result.seconds, 1),
                     "status": result.status})
        print(rows[-1], file=sys.stderr)
    return {"scale": list(args.learn_scale), "train_size": args.learn_train_size,
            "val_size": 1000, "rows": rows}


# -- identity --------------------------------------------------------------------------------------

def section_identity(args) -> dict:
    import torch

    from tinyformula import DataSource, Scale, TrainConfig, TrialJob, run_trial

    torch.set_num_threads(1)
    rows = {}
    for scale in ((0.6, 0.35, 0.3), (1.0, 0.25, 0.5)):
        job = TrialJob(id=0, base="efficientnet_b0", scale=Scale(*scale), resolution_base=32,
                       data=DataSource("fashion-mnist", None, 1000),
                       train=TrainConfig(train_size=2048, epochs=1, batch_size=128, seed=0))
        result = run_trial(job, threads=1)
        rows[str(scale)] = [str(result.state), result.top1, result.loss]
    print(json.dumps(rows))
    return {"rows": rows}


SECTIONS = {"prepare": section_prepare, "draft": section_draft, "memory": section_memory,
            "latency": section_latency, "trial": section_trial, "search": section_search,
            "learn": section_learn,
            "identity": section_identity}


# -- report ----------------------------------------------------------------------------------------

def write_report(results: dict) -> None:
    lines = ["# The prepared image cache (issue 23)", "",
             "Figures from `experiments/bench_data.py`; each section records its command, "
             "machine, load and date. The photo folder is `scripts/make_photo_folder.py`'s "
             "(22,000 JPEGs of 256-416 px, 10 classes: 20,000 in train/, 2,000 in val/).", ""]
    for name, body in results.items():
        meta = body.get("meta", {})
        lines += [f"## {name}", "",
                  f"`{meta.get('command', '')}` on {meta.get('machine', '')}, "
                  f"{meta.get('date', '')}, load {meta.get('load_before', '?')} before, "
                  f"{meta.get('load_after', '?')} after.", ""]
        lines += _section_lines(name, body)
        lines.append("")
    (RESULTS / "bench_data.md").write_text("\n".join(lines))


def _section_lines(name: str, body: dict) -> list[str]:
    if name == "prepare":
        return [f"- {body['decoded']:,} images decoded in {body['seconds']} s: "
                f"**{body['images_per_s']} images/s** on {body['workers']} cores "
                f"(decoding, writing, digests and statistics included)",
                f"- {body['cpu_seconds']} CPU seconds: {body['images_per_cpu_s']} images per "
                f"CPU second, so **{body['idle_images_per_s']} images/s** on "
                f"{body['workers']} cores of our own (the machine was shared)",
                f"- cache: {body['cache_bytes'] / 2**30:.2f} GiB at {body['size']} px "
                f"(the JPEGs: {body['source_bytes'] / 2**30:.2f} GiB)"]
    if name == "draft":
        out = ["| images | size | draft | images/s | images per CPU s | mean abs diff | max | "
               "pixels changed |", "|---|---|---|---|---|---|---|---|"]
        for row in body["rows"]:
            out.append(f"| {row['images']} | {row['size']} | {row['draft']} | "
                       f"{row['images_per_s']} | "
                       f"{row['images_per_cpu_s']} | "
                       f"{row.get('mean_abs_diff', '')} | {row.get('max_abs_diff', '')} | "
                       f"{row.get('share_changed', '')} |")
        return out
    if name == "memory":
        out = [f"Candidate r, d, w = {body['candidate']} at 32 px base (16 px), "
               f"{body['train_size']:,} training images, 1,000 held out; peak per worker, "
               "MiB (mean over the workers):", "",
               "| dataset | workers | RSS | private (anon) | file-backed | PSS | seconds |",
               "|---|---|---|---|---|---|---|"]
        for row in body["rows"]:
            out.append(f"| {row['dataset']} | {row['workers']} | {row['rss_mb']} | "
                       f"{row['anon_mb']} | {row['file_mb']} | {row['pss_mb']} | "
                       f"{row['seconds']} |")
        real = body["photo_224"]
        out += ["", f"The folder in memory in every worker, as before the cache: "
                    f"{body['in_memory_per_worker_mb']:,} MiB per worker.",
                f"One photo trial at 224 px base (r, d, w = {body['photo_224_scale']}): peak "
                f"RSS {real['rss_mb']} MiB, private {real['anon_mb']} MiB, file-backed "
                f"{real['file_mb']} MiB, {real['seconds']} s."]
        return out
    if name == "latency":
        out = ["A fresh worker process (torch imported first), a trial at its resolution "
               "base (photos 224: 112 px here):", "",
               "| dataset | process | imports s | open the cache s | trial start to first "
               "step s | the first step s | a second trial: start to first step s |",
               "|---|---|---|---|---|---|---|"]
        for row in body["workers"]:
            out.append(f"| {row['dataset']} | {row['attempt']} | {row['imports_s']} | "
                       f"{row['open_s']} | {row['to_first_step_s']} | {row['first_step_s']} | "
                       f"{row.get('to_first_step_warm_s', '')} |")
        runs = "; ".join(f"{r['wall_s']} s ({r['cpu_s']} CPU s)"
                         for r in body["search_to_first_trial"])
        out += ["", "A second search on the same folder, in a fresh process (imports done), "
                    f"from `search()` to its first trial (workers=1): {runs}."]
        return out
    if name == "trial":
        out = ["| candidate | r | d | w | c | px | top-1 | seconds | images/s |",
               "|---|---|---|---|---|---|---|---|---|"]
        for row in body["rows"]:
            out.append(f"| {row['candidate']} | {row['r']} | {row['d']} | {row['w']} | "
                       f"{row['c']} | {row['resolution']} | {row['top1']} | {row['seconds']} | "
                       f"{row['images_per_s']} |")
        return out
    if name == "learn":
        out = [f"EfficientNet-B0 scaled by r, d, w = {body['scale']}, {body['train_size']:,} "
               f"training photos, scored on {body['val_size']:,} held out (10 classes: chance "
               "is 10%):", "", "| epochs | px | top-1 | loss | seconds |", "|---|---|---|---|---|"]
        for row in body["rows"]:
            out.append(f"| {row['epochs']} | {row['resolution']} | {row['top1']} | "
                       f"{row['loss']:.3f} | {row['seconds']} |")
        return out
    if name == "search":
        lines = [f"- {body['trials']} trials ({body['ok']} ok), {body['train_size']:,} "
                 f"training images each at batch {body['batch_size']}, c in "
                 f"{body['c_range']}, {body['val_size']:,} held out: {body['seconds']} s from "
                 f"the first trial's start to the last one's end (started "
                 f"{body.get('started', '?')}); a formula "
                 f"{'fitted' if body['formula'] else 'not fitted'}",
                 f"- trial seconds {body['trial_seconds']}",
                 f"- resolutions {body['resolutions']}, top-1 {body['top1']}"]
        if body.get("summarized"):
            lines.append(f"- {body['summarized']}")
        if body.get("refusal"):
            lines.append(f"- the fit refused: {body['refusal']}")
        return lines
    return ["```", json.dumps(body, indent=1), "```"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="+", choices=sorted(SECTIONS))
    parser.add_argument("--folder", default="/work/runs/data/photos")
    parser.add_argument("--cache", default="/work/runs/data/cache",
                        help="the prepared-cache root (TINYFORMULA_DATA_CACHE)")
    parser.add_argument("--memory-train-size", type=int, default=2048)
    parser.add_argument("--trial-scale", type=float, nargs=3, default=(0.5, 0.35, 0.35))
    parser.add_argument("--trial-candidates", type=int, nargs="+", default=[0])
    parser.add_argument("--keep-rows", action="store_true",
                        help="trial: add to the stored rows instead of replacing them")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=512)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--c-range", type=float, nargs=2, default=(0.03, 1.0))
    parser.add_argument("--summarize", action="store_true",
                        help="search: record the search already in the output folder")
    parser.add_argument("--learn-scale", type=float, nargs=3, default=(0.3, 0.35, 0.35))
    parser.add_argument("--learn-train-size", type=int, default=4096)
    parser.add_argument("--learn-epochs", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    os.environ["TINYFORMULA_DATA_CACHE"] = args.cache
    results = json.loads(JSON.read_text()) if JSON.exists() else {}
    for name in args.sections:
        before = load_now()
        body = SECTIONS[name](args)
        body["meta"] = {
            "command": f"PYTHONPATH=. nice -n {os.nice(0)} python experiments/bench_data.py "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()}: {len(os.sched_getaffinity(0))} usable cores, "
                       f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f}"
                       " GiB", "date": datetime.datetime.now().isoformat(timespec="minutes"),
            "load_before": round(before, 2), "load_after": round(load_now(), 2)}
        if name != "identity":
            results[name] = body
            RESULTS.mkdir(exist_ok=True)
            JSON.write_text(json.dumps(results, indent=1))
            write_report(results)
        print(json.dumps({name: body}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
