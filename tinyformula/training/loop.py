"""The training loop every run shares: steps over a range of a run's batches, the loss watched
for divergence, a progress bar fed."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

# How often the loss is read on CUDA (a read waits for the GPU); on CPU every step.
CUDA_CHECK_EVERY = 25


@dataclass
class LoopOutcome:
    """What a run of steps did: ``status`` ("ok" or "diverged") with its ``message``, the
    steps taken, their seconds, and the sum of the training loss over the images seen."""

    status: str
    message: str
    steps: int
    seconds: float
    loss_sum: float
    images: int

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.images if self.images else math.nan


def run_steps(step, batches, steps: range, device: torch.device, bar=None) -> LoopOutcome:
    """Call ``step`` on batches ``steps`` of ``batches`` (a ``TrainBatches``) in order.

    The loss is read every step on CPU and every :data:`CUDA_CHECK_EVERY` steps (and the last)
    on CUDA, where it is summed on the device meanwhile; a nan/inf loss ends the run as
    "diverged", naming the step (1-based, in the whole schedule)."""
    cpu = device.type != "cuda"
    status, message, done = "ok", "", 0
    loss_sum: float | torch.Tensor = 0.0 if cpu else torch.zeros((), device=device)
    size = batches.batch_size
    tic = time.perf_counter()
    for k in steps:
        loss = step(*batches.batch(k))
        done += 1
        if cpu or done % CUDA_CHECK_EVERY == 0 or k == steps[-1]:
            value = loss.item()
            if not math.isfinite(value):
                status, message = "diverged", f"training loss became {value} at step {k + 1}"
                break
            if bar is not None:
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
        loss_sum = loss_sum + (value * size if cpu else loss.detach().float() * size)
        if bar is not None:
            bar.update(size)
    if not cpu:
        torch.cuda.synchronize(device)
        loss_sum = float(loss_sum)
    return LoopOutcome(status, message, done, time.perf_counter() - tic, float(loss_sum),
                       done * size)
