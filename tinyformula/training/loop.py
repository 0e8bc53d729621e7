"""The training loop every run shares: steps over a range of a run's batches, the loss watched
for divergence, a progress bar fed, and the steady state timed.

The steady state is every step after the first :data:`~.steps.WARMUP_STEPS` + 1 of the loop
(a graphed step's eager warm-up and its capture; cuDNN's first-call set-up in an eager one):
on CUDA it is timed with CUDA events on the current stream, after one synchronisation where
it starts (so its wall-clock start is known too), on CPU with the wall clock. It is the rate a
long run trains at, and what benchmarks compare."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .steps import WARMUP_STEPS

# How often the loss is read on CUDA (a read waits for the GPU); on CPU every step.
CUDA_CHECK_EVERY = 25


@dataclass
class LoopOutcome:
    """What a run of steps did: ``status`` ("ok" or "diverged") with its ``message``, the
    steps taken, their seconds, and the sum of the training loss over the images seen; the
    steady state's images, seconds and wall-clock start (``time.time()``; 0 when the loop
    was too short to have one)."""

    status: str
    message: str
    steps: int
    seconds: float
    loss_sum: float
    images: int
    steady_images: int = 0
    steady_seconds: float = 0.0
    steady_start: float = 0.0

    @property
    def steady_images_per_s(self) -> float:
        return self.steady_images / self.steady_seconds if self.steady_seconds > 0 else 0.0

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
    steady = _SteadyClock(device)
    tic = time.perf_counter()
    for k in steps:
        loss = step(*batches.batch(k))
        done += 1
        if done == WARMUP_STEPS + 1 and k != steps[-1]:
            steady.start()
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
    steady_seconds = steady.stop()
    if not cpu:
        torch.cuda.synchronize(device)
        loss_sum = float(loss_sum)
    steady_steps = max(0, done - WARMUP_STEPS - 1) if steady_seconds else 0
    return LoopOutcome(status, message, done, time.perf_counter() - tic, float(loss_sum),
                       done * size, steady_steps * size, steady_seconds, steady.wall)


class _SteadyClock:
    """Times the steady state: CUDA events on the current stream on CUDA (one
    synchronisation at the start, for its wall-clock time), the wall clock on CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.wall = 0.0
        self._tic: float | None = None
        self._event: torch.cuda.Event | None = None

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self._event = torch.cuda.Event(enable_timing=True)
            self._event.record()
        self.wall, self._tic = time.time(), time.perf_counter()

    def stop(self) -> float:
        """Seconds since :meth:`start` (0.0 if it never started)."""
        if self._tic is None:
            return 0.0
        if self._event is not None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return self._event.elapsed_time(end) / 1000
        return time.perf_counter() - self._tic
