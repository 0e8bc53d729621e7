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
