"""Search sizes, kept apart so the command line can list them without importing the search."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A search size: how many candidates and how long each trains."""

    trials: int         # candidates of a full search; halving plans eta x as many (equal compute)
    train_size: int
    epochs: int
    val_size: int
    replicates: int     # candidates trained again with another seed, to measure the noise
    note: str
    schedule: str = "full"  # "full" (every candidate the whole budget) or "halving"
    second_stage: int = 0   # candidates sampled around the formula's band, then refitted


PRESETS = {
    "smoke": Preset(trials=24, train_size=2048, epochs=1, val_size=1000, replicates=2,
                    note="checks the pipeline end to end; about a minute on an idle 2-core CPU "
                         "(56 s measured)"),
    # Halving at equal compute (3 x 50 candidates in rungs of 1/9, 1/3 and all of the images),
    # then a second stage of 10 candidates around the formula's band on all of the images: the
    # training images of 66 full trials, as 0.6's 3 x 60 candidates without a second stage.
    # Halving tied the full schedule at equal compute and agreed better across search seeds
    # (experiments/results/schedules_validation.md). With the second stage, three search
    # seeds' formulas agree within 0.65 points at every budget where 0.6's differed by up to
    # 2.0, and score as well or better (experiments/results/second_stage_default.md).
    "default": Preset(trials=50, train_size=16384, epochs=1, val_size=2000, replicates=6,
                      note="a usable formula on a 2-core CPU in well under 30 minutes",
                      schedule="halving", second_stage=10),
    "paper": Preset(trials=100, train_size=50000, epochs=5, val_size=10000, replicates=10,
                    note="the paper's protocol at this dataset's scale; meant for a GPU"),
}
