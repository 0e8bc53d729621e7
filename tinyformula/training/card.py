"""The final model's card (``card.json``: what was trained, on what, how, and how well) and its
training curve (``curve.png``), rewritten after every epoch."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.figures import new_figure, save_figure
from ..core.files import json_kind, write_atomically
from ..data.images import ImageData
from ..data.preprocessing import preprocessing
from ..models.files import MODEL_FILE
from .trainer import training_images

CARD_FILE = "card.json"
CARD_FORMAT = "tinyformula-card"
CURVE_FILE = "curve.png"
CARD_KIND = json_kind("tinyformula model card", lambda data: isinstance(data, dict) and (
    data.get("format") == CARD_FORMAT or {"status", "model", "recipe", "epochs"} <= set(data)))
TEST_SPLIT_NOTE = ("top-1 is measured on the dataset's held-out split ({source}): for a final "
                   "model that is the point, and nothing in this run was chosen on it")


def data_entry(data: ImageData) -> dict:
    """How to feed the model: the dataset and its per-channel normalisation (0..255 units);
    every step in :func:`model_preprocessing`."""
    return {"name": data.name, "mean": list(data.mean), "std": list(data.std),
            "channels": data.channels}


def make_card(model_config, data, recipe, teacher, command, history, seconds,
              status) -> dict:
    """The card of a final-recipe run (a :class:`~.recipe.RecipeConfig`) after ``history``;
    ``teacher``: what :func:`~.teacher.teacher_entry` says of the teacher, or None."""
    config = recipe.train
    n_val = len(data.val_images) if config.val_size is None else min(config.val_size,
                                                                      len(data.val_images))
    last = history[-1] if history else {}
    return {
        "format": CARD_FORMAT,
        "status": status,
        "model": model_config,
        "flops": model_config["flops"], "params": model_config["params"],
        "data": {**data_entry(data),
                 "train_images": training_images(data, config),
                 "scored_on": f"{n_val:,} images",
                 "note": TEST_SPLIT_NOTE.format(source=data.val_source)},
        "preprocessing": model_preprocessing(model_config, data),
        "recipe": {"name": "final", **recipe.flat(), "lr": config.peak_lr,
                   "augmentation": "random crop (1/8 padding) and flip where it keeps the "
                                   "label; no Mixup or CutMix",
                   "teacher": teacher},
        "weights": f"{MODEL_FILE}: the " + ("EMA weights" if config.ema else "raw weights")
                   + ", BatchNorm statistics recomputed on training images"
                   + (f"; trained re-parameterised ({recipe.reparam} k x k branch(es) per "
                      f"depthwise and 1x1 convolution, plus 1x1 and identity branches) and "
                      f"folded into the plain network" if recipe.reparam else ""),
        "train_seconds": sum(h.get("train_seconds", 0.0) for h in history),
        "top1": last.get("top1_ema") if config.ema else last.get("top1"),
        "top1_raw": last.get("top1"), "top1_ema": last.get("top1_ema"),
        "epochs": history,
        "seconds": seconds,
        "command": command,
        "torch": torch.__version__,
    }


def write_card(out: Path, card: dict) -> None:
    write_atomically(out / CARD_FILE, json.dumps(card, indent=1) + "\n", CARD_KIND)


def plot_curve(history: list[dict], path: Path, epochs: int) -> None:
    """Top-1 (raw and EMA) and the training loss against the epoch."""
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(6, 4, dpi=100)
    left = figure.add_subplot()
    x = [h["epoch"] for h in history]
    left.plot(x, [100 * h["top1"] for h in history], "o-", label="top-1 (raw weights)")
    if history and history[0].get("top1_ema") is not None:
        left.plot(x, [100 * h["top1_ema"] for h in history], "s-", label="top-1 (EMA)")
    left.set_xlabel("epoch")
    left.set_ylabel("held-out top-1 (%)")
    left.set_xlim(0.5, epochs + 0.5)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    right = left.twinx()
    right.plot(x, [h["loss"] for h in history], "--", color="grey", label="training loss")
    right.set_ylabel("training loss")
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    left.grid(alpha=0.3)
    save_figure(figure, path)


def model_preprocessing(model_config: dict, data: ImageData) -> dict:
    """How to feed a model trained on ``data`` (resize, scale, mean and std, channels): the
    ``preprocessing`` of its ``tinyformula`` dict, its card and its exported files."""
    return preprocessing(model_config["resolution"], data.mean, data.std, data.channels)
