"""How long a training takes on an idle 2-core CPU: the figure a search or a validation prints
before it starts, and the weights its progress bar spreads the measured pace over.

A training passes each training image forwards and backwards (about three forward passes),
then recalibrates BatchNorm and scores forwards. Small networks are not FLOP-bound: each image
also pays a fixed cost, and one that grows with the network's depth (more layers, more kernel
launches per batch). The constants were fitted (least squares on relative error) to the
times of 370 trainings, two at once, one thread each, on 2-core machines of one kind whose
speed differed 2-3x from day to day: 96 EfficientNet-B0 trainings of
``experiments/results/{halving,random_at_budget,tiny_vs_giant}_runs.csv`` on a fast day, and the
274 MobileNetV2 trials of a default-preset halving search on a slow one. Measured over
estimated, by median: 0.7-1.0 on the first, 1.4 on the second, 1.5-2.3 for the smoke preset's
searches on the slow day; the FLOP term alone, as printed before 0.4.1, was 4-12x short
(``experiments/results/time_estimate.md``). The figure gives the order of the wait; the
progress bar's, measured on the trials as they finish, is the one to plan by.
"""

from __future__ import annotations

import os

from ..cost.yardstick import Configuration
from ..training.config import TrainConfig

FLOPS_PER_S = 5.6e9            # forward FLOPs per second of one worker (one core)
SECONDS_PER_IMAGE = 4.3e-5     # per image passed, whatever the network
SECONDS_PER_IMAGE_DEPTH = 2.2e-4   # per image passed and unit of depth multiplier d
OVERHEAD_S = 1.5               # per training: building the network, loading its data
RECALIBRATION_IMAGES = TrainConfig.bn_recalibrate


def images_passed(images, scored):
    """Images a training passes forwards, in units of one forward pass: about three per
    training image (forwards and backwards), then BatchNorm recalibration and scoring. Works
    on numbers and on arrays alike (``experiments/time_estimate.py`` refits on columns)."""
    return 3 * images + scored + RECALIBRATION_IMAGES


def training_seconds(config: Configuration, images: int, scored: int) -> float:
    """One worker's seconds to train ``config`` on ``images`` images and score it on
    ``scored``, on an idle core."""
    passed = images_passed(images, scored)
    return (config.flops * passed / FLOPS_PER_S
            + passed * (SECONDS_PER_IMAGE + SECONDS_PER_IMAGE_DEPTH * config.d) + OVERHEAD_S)


def wall_seconds(seconds: list[float], workers: int | None) -> float:
    """The wall time of trainings taking ``seconds`` each on ``workers`` workers (default one
    per core), never more workers than trainings."""
    if not seconds:
        return 0.0
    return sum(seconds) / max(1, min(workers or os.cpu_count() or 1, len(seconds)))
