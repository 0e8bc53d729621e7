"""Stand-ins for a worker's trial, run in real worker processes by the GPU executors' tests.

A module of its own (not a test file) so that spawned workers can import the functions they
are sent. Each fake behaves as its job's ``data.name`` says, and keeps what must survive a
process in files under the job's ``data.data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyformula.execution.jobs import TrialResult, TrialState


def fake_trial(job, threads=None) -> TrialResult:
    """``ok``: fine. ``capture``: its CUDA graph capture fails while ``cuda_graph`` is on.
    ``oom-once``: out of GPU memory the first time it runs, fine after. ``oom``: always out
    of memory. ``die-once``: the worker process dies the first time. The message names this
    process (``pid N``) and the GPU it sees."""
    me = f"pid {os.getpid()} visible {os.environ.get('CUDA_VISIBLE_DEVICES')}"
    kind, folder = job.data.name, Path(job.data.data_dir)
    first = not (folder / f"ran-{job.id}").exists()
    (folder / f"ran-{job.id}").touch()
    if kind == "capture" and job.train.cuda_graph:
        return TrialResult(job.id, TrialState.CAPTURE_FAILED,
                           message=f"CUDA graph capture failed: {me}; train it again with "
                                   f"cuda_graph=False in a new process")
    if kind == "oom" or (kind == "oom-once" and first):
        return TrialResult(job.id, TrialState.OOM, message=f"CUDA out of memory ({me})")
    if kind == "die-once" and first:
        os._exit(3)
    return TrialResult(job.id, TrialState.OK, top1=0.5, loss=1.0, seconds=0.1, message=me,
                       graphed=job.train.cuda_graph)


def job(index: int, kind: str, folder) -> object:
    """A trial job for :func:`fake_trial`."""
    from tinyformula import DataSource, Scale, TrainConfig, TrialJob

    return TrialJob(id=index, base="efficientnet_b0", scale=Scale(), resolution_base=32,
                    data=DataSource(kind, str(folder)), train=TrainConfig(device="cpu"))


def item_in_step_trial(job, threads=None) -> TrialResult:
    """A real trial on the worker's GPU whose loss reads ``.item()`` inside the step: fine
    eagerly, fatal to a CUDA graph capture (a host synchronisation while capturing). Reports
    like :func:`~tinyformula.execution.worker.run_trial`, with this process's id."""
    import torch

    from tinyformula import get_base
    from tinyformula.data import load_dataset
    from tinyformula.training.batches import TrainBatches
    from tinyformula.training.losses import LabelSmoothing
    from tinyformula.training.steps import CaptureFailed, make_step

    smoothing = LabelSmoothing(0.1)

    def loss_with_item(logits, labels):
        loss = smoothing(logits, labels)
        if loss.item() < 0:  # never true; the read is the point
            raise AssertionError
        return loss

    device = torch.device("cuda")
    data = load_dataset("digits")
    batches = TrainBatches(data, train_size=256, batch_size=32, epochs=1, seed=0,
                           resolution=16, device=device)
    torch.manual_seed(0)
    model = get_base("efficientnet_b0").build(job.scale, 10, 32).to(device).train()
    step = make_step(model, job.train, len(batches), device, loss=loss_with_item)
    try:
        for x, y in batches:
            step(x, y)
        torch.cuda.synchronize()
    except CaptureFailed as error:
        return TrialResult(job.id, TrialState.CAPTURE_FAILED,
                           message=f"{error} (pid {os.getpid()})")
    return TrialResult(job.id, TrialState.OK, top1=0.0, loss=0.0, graphed=step.graphed,
                       message=f"pid {os.getpid()}")


def capture_with_item() -> dict:
    """In this (fresh, throw-away) process: a graphed step whose loss reads ``.item()``,
    stepped through its warm-up and into the capture. What happened, for the test to check
    (run it in a worker: the process is unreliable for CUDA afterwards)."""
    import torch

    from tinyformula import Scale, get_base
    from tinyformula.data import load_dataset
    from tinyformula.training.batches import TrainBatches
    from tinyformula.training.config import TrainConfig
    from tinyformula.training.losses import LabelSmoothing
    from tinyformula.training.steps import WARMUP_STEPS, CaptureFailed, make_step

    smoothing = LabelSmoothing(0.1)

    def loss_with_item(logits, labels):
        loss = smoothing(logits, labels)
        if loss.item() < 0:
            raise AssertionError
        return loss

    device = torch.device("cuda")
    batches = TrainBatches(load_dataset("digits"), train_size=512, batch_size=64, epochs=1,
                           seed=0, resolution=16, device=device)
    torch.manual_seed(0)
    model = get_base("efficientnet_b0").build(Scale(0.5, 0.25, 0.25), 10, 32).to(device)
    model.train()
    step = make_step(model, TrainConfig(device="cuda"), len(batches), device,
                     loss=loss_with_item)
    seen = {"type": type(step).__name__, "warm_up": []}
    for k in range(WARMUP_STEPS):
        seen["warm_up"].append(step(*batches.batch(k)).item())
    for attempt in ("capture", "after"):
        try:
            step(*batches.batch(WARMUP_STEPS))
            seen[attempt] = "trained"
        except CaptureFailed as error:
            seen[attempt] = str(error)
            seen[f"{attempt}_oom"] = error.out_of_memory
    seen["graphed"], seen["failed"] = step.graphed, getattr(step, "failed", False)
    return seen
