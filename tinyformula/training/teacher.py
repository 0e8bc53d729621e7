"""A teacher worth distilling from: checked before a run starts, or trained here.

Distillation only helps when the teacher knows more than the student: in
``experiments/results/final_recipe.md`` (0.2) a teacher trained as briefly as its students
(76.2%) *cost* them about a point. So:

* :func:`check_teacher` scores a teacher on the run's first training images (unaugmented, at
  the teacher's own resolution) before anything is written, and refuses one that cannot take
  the images or does no better than chance there (a teacher trained on other data with the
  same classes, an untrained one);
* :func:`~.recipe.base_teacher` trains the *base* network (r = d = w = 1, the data's
  classes) with the final recipe on a longer schedule than the student's, in a folder of
  the student's output folder's parent named by its settings, and reuses it when it is
  there: several students
  (budgets, arms of an experiment) share one teacher per setting, and a killed teacher
  training resumes like any final-recipe run. A lock beside the folder makes a second process
  wait for the first instead of training the same teacher twice. This module holds its
  settings, recipe and folder name.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
from torch import nn

from ..core.errors import TinyFormulaError
from ..data.images import ImageData
from .config import RecipeConfig
from .optim import autocast

TEACHER_CHECK_IMAGES = 1024      # training images a teacher is checked on
TEACHER_EPOCHS_FACTOR = 2        # --teacher base: the teacher's epochs, x the student's
MAX_TEACHER_RESOLUTION = 4096    # px; larger inputs would not fit in memory


def chance_bound(classes: int, images: int) -> float:
    """Top-1 a teacher must beat: chance (1 / classes) plus three binomial standard errors
    over ``images`` images, so a guessing teacher is refused nearly always and a teacher that
    learned anything passes."""
    chance = 1.0 / classes
    return chance + 3.0 * math.sqrt(chance * (1.0 - chance) / images)


@torch.no_grad()
def check_teacher(teacher: nn.Module, batches, device: torch.device, classes: int) -> dict:
    """Score ``teacher`` (on ``device``) on the first :data:`TEACHER_CHECK_IMAGES` images of
    the run's training subset (``batches``: a ``TrainBatches``); returns ``{"images", "top1"}``.

    Raises TinyFormulaError when its configuration has no usable resolution, when it fails
    on the images or gives other than ``classes`` logits, or when its top-1 does not beat
    :func:`chance_bound`."""
    config = getattr(teacher, "tinyformula", None) or {}
    resolution = config.get("resolution")
    if isinstance(resolution, bool) or not isinstance(resolution, int) \
            or not 1 <= resolution <= MAX_TEACHER_RESOLUTION:
        raise TinyFormulaError(f"the teacher's configuration gives no usable input resolution "
                               f"({resolution!r}; 1..{MAX_TEACHER_RESOLUTION} px): make it "
                               f"with create_model or tinyformula build")
    n = min(TEACHER_CHECK_IMAGES, len(batches.images))
    was_training = teacher.training
    teacher.eval()
    correct = 0
    try:
        for start in range(0, n, 256):
            stop = min(n, start + 256)
            x = batches.inputs(batches.images[start:stop], resolution)
            with autocast(device):
                logits = teacher(x).float()
            if logits.shape != (stop - start, classes):
                raise TinyFormulaError(f"the teacher gives logits of shape "
                                       f"{tuple(logits.shape)} for {stop - start} images; "
                                       f"distillation needs ({stop - start}, {classes})")
            correct += int((logits.argmax(1) == batches.labels[start:stop]).sum())
    except RuntimeError as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:150]
        raise TinyFormulaError(f"the teacher cannot take {resolution} px images of "
                               f"{batches.data.name} ({first})") from None
    finally:
        teacher.train(was_training)
    top1 = correct / n
    bound = chance_bound(classes, n)
    if top1 <= bound:
        raise TinyFormulaError(f"the teacher scores {top1:.1%} on {n:,} training images, no "
                               f"better than chance ({1 / classes:.1%}; needs above "
                               f"{bound:.1%}): distilling from it would teach noise. Train "
                               f"it first, or use --teacher base")
    return {"images": n, "top1": top1}


def teacher_entry(teacher: nn.Module, path: str | None, check: dict | None) -> dict:
    """What a card records of a teacher: where it came from, its configuration, its own
    held-out top-1 as recorded when it was trained (None when its file does not say), and
    the pre-run check's top-1 on training images."""
    config = dict(getattr(teacher, "tinyformula", None) or {})
    trained = config.get("trained") or {}
    return {"path": path, "model": config, "top1": trained.get("top1"),
            "check": check}


def weaker_teacher(card: dict) -> str | None:
    """A finished distilled run's warning when its teacher's own held-out top-1 (as recorded
    when it was trained) is below the student's: distilling from it most likely cost the
    student accuracy. None when the teacher is better, or either score is unknown."""
    teacher = (card.get("recipe") or {}).get("teacher") or {}
    mine, theirs = card.get("top1"), teacher.get("top1")
    if mine is None or theirs is None or theirs >= mine:
        return None
    return (f"the teacher scored {100 * theirs:.2f}% on its held-out split, below this "
            f"student's {100 * mine:.2f}%: distilling from it most likely cost accuracy; "
            f"train it longer (--teacher-epochs with --teacher base) or give a stronger "
            f"--teacher")


def base_teacher_settings(base: str, data: ImageData, resolution_base: int,
                          recipe: RecipeConfig) -> dict:
    """What names a base teacher: the base, the data and the teacher's recipe (where it runs
    and distillation settings aside)."""
    flat = recipe.flat()
    return {"base": base, "data": data.name, "num_classes": data.num_classes,
            "resolution_base": resolution_base,
            "recipe": {k: v for k, v in flat.items()
                       if k not in ("threads", "device", "kd_temperature", "kd_weight")}}


def base_teacher_recipe(student: RecipeConfig, epochs: int | None = None) -> RecipeConfig:
    """The teacher's recipe: the student's training settings, ``epochs`` (default
    :data:`TEACHER_EPOCHS_FACTOR` x the student's, at most the schedule limit) epochs, no
    re-parameterisation and no teacher of its own."""
    limit = type(student.train).constraints["epochs"].high or 10_000
    epochs = epochs or min(limit, TEACHER_EPOCHS_FACTOR * student.train.epochs)
    return RecipeConfig(train=student.train.replace(epochs=epochs))


def base_teacher_folder(parent: Path, settings: dict) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(parent) / f"teacher-{settings['base']}-{digest}"
