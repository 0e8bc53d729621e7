"""What an executor runs and returns: a :class:`TrialJob` (everything a worker needs to train
one model, and nothing it must look up elsewhere) and a :class:`TrialResult`, with the
:class:`TrialState` a training run ends in. Typed: a misspelled field fails at construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from ..nets.scale import Scale
from ..training.config import TrainConfig


class TrialState(str, Enum):
    PENDING = "pending"
    OK = "ok"
    DIVERGED = "diverged"   # the training loss turned nan or inf
    OOM = "oom"             # CUDA ran out of memory, even alone on a GPU: retried on resume
    FAILED = "failed"       # the trial raised (a bad setting, a crash): retried on resume
    # The worker's CUDA graph capture failed: the executor trains the trial again eagerly in
    # a fresh process and reports that result instead; never stored.
    CAPTURE_FAILED = "capture_failed"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        return self is not TrialState.PENDING


@dataclass(frozen=True)
class DataSource:
    """Which data a trial trains on: a dataset name, its folder, how many training images are
    held out to score on, and the checksum of the prepared cache the driver opened: a worker
    (on this machine or another) opens its copy of the cache and refuses one holding anything
    else, before its first trial."""

    name: str
    data_dir: str | None = None
    validation: int | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to train one trial, and nothing it must look up elsewhere."""

    id: int
    base: str
    scale: Scale
    resolution_base: int
    data: DataSource
    train: TrainConfig     # its seed is the trial's seed
    base_record: dict | None = None  # a base not built in: what registers it in a worker


@dataclass(frozen=True)
class TrialResult:
    """What a worker reports for one job: the scores and times the store keeps, and how it
    trained (``graphed``: its step was a replayed CUDA graph; the steady state's training
    images, seconds and wall-clock start, for throughput figures; see
    :class:`~tinyformula.training.trainer.TrainResult`)."""

    id: int
    state: TrialState
    top1: float | None = None
    loss: float | None = None
    seconds: float | None = None
    images_per_s: float | None = None
    message: str = ""
    graphed: bool = False
    steady_images: int = 0
    steady_seconds: float = 0.0
    steady_start: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "state": self.state.value}
