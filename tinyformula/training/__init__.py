"""Training: one model at a time, through one training step.

* :mod:`.config`: :class:`TrainConfig`, every setting declared with its limits;
* :mod:`.batches`: a run's batches, every random draw made up front from the seed;
* :mod:`.optim`, :mod:`.losses`, :mod:`.steps`: the optimizer and schedule, the loss hook, and
  the step (eager, or captured in a CUDA graph) that every run trains through;
* :mod:`.loop`, :mod:`.evaluate`: the loop over a run's steps, and scoring;
* :mod:`.trainer`: the search's short schedule, one candidate in, top-1 out;
* :mod:`.recipe`, :mod:`.checkpoint`, :mod:`.card`: the final recipe, its checkpoints and card.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .config import RecipeConfig, TrainConfig
    from .recipe import train_final
    from .trainer import TrainResult, train

__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": ".config",
    "RecipeConfig": ".config",
    "train_final": ".recipe",
    "TrainResult": ".trainer",
    "train": ".trainer",
})

__all__ = ["RecipeConfig", "TrainConfig", "TrainResult", "train", "train_final"]
