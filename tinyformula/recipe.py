"""The final-training recipe: train the chosen model properly, resumably, and write it out.

The search ranks candidates on a short schedule (``tinyformula.train``); once a budget's model
is chosen, this recipe trains it for longer. What it does, following GhostNetV3 (Liu et al.,
2024), which found knowledge distillation and an EMA of the weights among the largest gains for
compact models, and Mixup / CutMix harmful for them (so there are none here):

* SGD with Nesterov momentum, a linear warm-up then cosine decay to 0 over all steps, no weight
  decay on BatchNorm and biases (``train.make_optimizer``, ``train.lr_factor``);
  label smoothing; random crops and flips (where a flip keeps the label);
* an EMA of the weights (``train.WeightEma``), scored beside the raw weights after every epoch;
  the saved model is the EMA one when the EMA is on, decided before training, never picked by
  score;
* optional knowledge distillation from a teacher model file: the loss is
  ``(1 - kd_weight) * CE_smoothed(student, label) + kd_weight * T^2 * KL(teacher_T || student_T)``
  with both soft-maxes at temperature T; the teacher sees the same augmented images at its own
  resolution;
* before scoring, BatchNorm statistics are recomputed on training images in a *copy* of the
  weights (``train.recalibrate_batchnorm``), so scoring never changes what training continues
  from.

The model is scored on the dataset's held-out split: for Fashion-MNIST and CIFAR that is the
official test set. That is what a final model is for, and the card says so; nothing (the
architecture, the schedule, raw or EMA weights) is chosen on it here.

Batches come from :class:`~tinyformula.batches.TrainBatches`, the trainer's iterator: every
draw is made up front from the seed, so a resumed run reads its remaining batches by step.

Durable: after every epoch ``checkpoint.pt`` (weights, optimizer, EMA, step, history) is
replaced atomically, then ``model.pt``, ``card.json`` and ``curve.png``. After
``kill -9`` the same call resumes from the last finished epoch and ends with the same weights
as an uninterrupted run (on CPU, for the same thread count). A folder holding a different run
is refused, never overwritten.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .batches import TrainBatches
from .data import ImageData
from .errors import TinyFormulaError
from .files import write_atomically
from .models import MODEL_FILE, model_state, save_atomically
from .train import (
    TrainConfig,
    WeightEma,
    check_budget,
    evaluate,
    lr_factor,
    make_optimizer,
    recalibrate_batchnorm,
    resolve_device,
)

CHECKPOINT_FILE = "checkpoint.pt"
CARD_FILE = "card.json"
CURVE_FILE = "curve.png"
CHECKPOINT_FORMAT = "tinyformula-checkpoint"
CHECKPOINT_VERSION = 1
TEST_SPLIT_NOTE = ("top-1 is measured on the dataset's held-out split ({source}): for a final "
                   "model that is the point, and nothing in this run was chosen on it")


@dataclass(frozen=True)
class RecipeConfig:
    """The final recipe's settings. The budget is ``train_size`` images x ``epochs`` passes.

    ``optimizer``, ``lr``, ``weight_decay``, ``warmup`` (fraction of all steps),
    ``label_smoothing``, ``val_size``, ``bn_recalibrate``, ``threads``, ``device`` and
    ``batch_size`` mean what they mean in :class:`tinyformula.train.TrainConfig` and default
    to its measured values. ``ema``: decay of the weight EMA (None: off). ``kd_temperature``
    and ``kd_weight``: the distillation loss's T and weight, used only with a teacher.
    """

    epochs: int = 20
    train_size: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 0.05
    warmup: float = 0.05
    label_smoothing: float = 0.1
    ema: float | None = 0.999
    kd_temperature: float = 4.0
    kd_weight: float = 0.5
    seed: int = 0
    val_size: int | None = None
    bn_recalibrate: int = 2048
    threads: int | None = None
    device: str = "auto"

    def __post_init__(self):
        self.train_config()  # TrainConfig checks every setting the two share
        if not (isinstance(self.kd_temperature, (int, float)) and math.isfinite(self.kd_temperature)
                and self.kd_temperature > 0):
            raise TinyFormulaError(f"KD temperature must be a finite number above 0, got "
                                   f"{self.kd_temperature!r}")
        if not (isinstance(self.kd_weight, (int, float)) and 0 <= self.kd_weight <= 1):
            raise TinyFormulaError(f"KD weight must be in [0, 1], got {self.kd_weight!r}")

    def train_config(self) -> TrainConfig:
        """The same settings as a TrainConfig, for the trainer's optimizer and scorer."""
        return TrainConfig(train_size=self.train_size, epochs=self.epochs,
                           batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                           weight_decay=self.weight_decay, warmup=self.warmup,
                           label_smoothing=self.label_smoothing, ema=self.ema, seed=self.seed,
                           device=self.device, val_size=self.val_size,
                           bn_recalibrate=self.bn_recalibrate, threads=self.threads)


# -- the output folder ---------------------------------------------------------------------------

def prepare_folder(out) -> Path:
    """Create ``out`` if needed and check it takes files; an unwritable one raises
    TinyFormulaError before anything is trained."""
    import tempfile

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise TinyFormulaError(f"cannot write to output folder {out}: "
                               f"{error.strerror or error}") from None
    return out


def read_checkpoint(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError):
        raise TinyFormulaError(f"checkpoint {path} is truncated or corrupt; it was left as it "
                               f"is: move it away to start over, or use another --out") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT \
            or data.get("version") != CHECKPOINT_VERSION:
        raise TinyFormulaError(f"{path} is not a tinyformula training checkpoint (version "
                               f"{CHECKPOINT_VERSION}); use another --out")
    return data


def _run_key(model_config: dict, recipe: RecipeConfig, data: ImageData, teacher) -> dict:
    """What must match for a checkpoint to be continued."""
    return {"model": {k: model_config[k] for k in ("base", "r", "d", "w", "num_classes",
                                                   "resolution_base")},
            "recipe": {k: v for k, v in asdict(recipe).items() if k not in ("threads", "device")},
            "data": data.name,
            "teacher": None if teacher is None else
            {k: teacher.tinyformula.get(k) for k in ("base", "r", "d", "w", "resolution")}}


def _describe_difference(saved: dict, wanted: dict) -> str:
    for part in ("model", "recipe", "data", "teacher"):
        a, b = saved.get(part), wanted.get(part)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                keys = [k for k in b if a.get(k) != b.get(k)] or list(a)
                k = keys[0]
                return f"{part} {k}: {a.get(k)!r} there, {b.get(k)!r} now"
            return f"{part}: {a!r} there, {b!r} now"
    return "unknown difference"


# -- training ------------------------------------------------------------------------------------

def _distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float
                       ) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.log_softmax(teacher / temperature, dim=1), reduction="batchmean",
                    log_target=True) * temperature ** 2


def _score(model: nn.Module, data: ImageData, batches: TrainBatches, device: torch.device,
           config: TrainConfig) -> tuple[float, nn.Module]:
    """Top-1 of a copy of ``model`` with BatchNorm statistics recomputed on training images,
    and that copy."""
    scored = copy.deepcopy(model)
    if config.bn_recalibrate:
        recalibrate_batchnorm(scored, batches.first_images(config.bn_recalibrate,
                                                           config.batch_size))
    top1, _ = evaluate(scored, data, batches.resolution, device, config)
    return top1, scored


def train_final(data: ImageData, model: nn.Module, out, recipe: RecipeConfig | None = None, *,
                teacher: nn.Module | None = None, teacher_path: str | None = None,
                command: str | None = None, progress: bool = False,
                stop_after: int | None = None) -> dict:
    """Train ``model`` (from ``create_model`` / ``load_model``) on ``data`` with the final
    recipe, writing ``out``/checkpoint.pt, model.pt, card.json and curve.png after every
    epoch; returns the card. A checkpoint already in ``out`` for the same run is continued.

    ``teacher``: a trained model (``load_model``) with the dataset's classes, for distillation.
    ``stop_after``: return after that many epochs in total, as if killed (for tests).
    """
    recipe = recipe or RecipeConfig()
    config = recipe.train_config()
    model_config = dict(getattr(model, "tinyformula", None) or {})
    if "resolution" not in model_config:
        raise TinyFormulaError("the model has no tinyformula configuration; make it with "
                               "create_model or load_model")
    if model_config["num_classes"] != data.num_classes:
        raise TinyFormulaError(f"the model has {model_config['num_classes']} classes, "
                               f"{data.name} has {data.num_classes}")
    if teacher is not None:
        classes = (getattr(teacher, "tinyformula", None) or {}).get("num_classes")
        if classes != data.num_classes:
            raise TinyFormulaError(f"the teacher has {classes} classes, {data.name} has "
                                   f"{data.num_classes}: distillation needs the same classes")
    device = resolve_device(config.device)
    # Every draw of the run (subset, orders, crops, flips) is made here, from the seed alone:
    # a resumed run reads its remaining batches by step number, exactly as if never stopped.
    batches = TrainBatches(data, train_size=check_budget(data, config),
                           batch_size=config.batch_size, epochs=recipe.epochs, seed=recipe.seed,
                           resolution=model_config["resolution"], device=device)
    out = prepare_folder(out)
    key = _run_key(model_config, recipe, data, teacher)
    checkpoint_path = out / CHECKPOINT_FILE
    saved = read_checkpoint(checkpoint_path) if checkpoint_path.exists() else None
    if saved is not None and saved["key"] != key:
        raise TinyFormulaError(f"{out} holds a different training run "
                               f"({_describe_difference(saved['key'], key)}); use another "
                               f"--out, or the same options to continue it")

    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(data, model, model_config, out, recipe, config, key, saved, batches,
                      device, teacher, teacher_path, command, progress, stop_after)
    finally:
        if config.threads is not None:
            torch.set_num_threads(previous_threads)


def epoch_bounds(steps: int, epochs: int) -> list[int]:
    """The first step of each epoch, and the run's end: the run's batches are one stream
    (``TrainBatches``) cut into ``epochs`` nearly equal parts."""
    return [round(e * steps / epochs) for e in range(epochs + 1)]


def _train(data, model, model_config, out, recipe, config, key, saved, batches, device, teacher,
           teacher_path, command, progress, stop_after) -> dict:
    resolution = batches.resolution
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    ema = WeightEma(model, recipe.ema) if recipe.ema else None
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    history, epoch0, step, seconds = [], 0, 0, 0.0
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            ema.model.load_state_dict(saved["ema"])
            ema.updates = saved["ema_updates"]
        history, epoch0, step = saved["history"], saved["epoch"], saved["step"]
        seconds = saved["seconds"]
    if teacher is not None:
        teacher = teacher.eval().to(device, memory_format=torch.channels_last)
        teacher_resolution = teacher.tinyformula["resolution"]
    total_steps = len(batches)
    bounds = epoch_bounds(total_steps, recipe.epochs)
    card = _card(model_config, data, recipe, teacher, teacher_path, command, history, seconds,
                 "running" if epoch0 < recipe.epochs else "done")

    bar = None
    if progress and epoch0 < recipe.epochs:
        from tqdm import tqdm

        bar = tqdm(total=batches.total_images, initial=bounds[epoch0] * batches.batch_size,
                   unit="img",
                   desc=f"final {resolution}px", dynamic_ncols=True)
        if history:
            bar.set_postfix_str(_postfix(history[-1], recipe.epochs))
    try:
        for epoch in range(epoch0, recipe.epochs):
            tic = time.perf_counter()
            model.train()
            loss_sum, seen = 0.0, 0
            for step in range(bounds[epoch], bounds[epoch + 1]):
                images, labels = batches.augmented(step)
                for group in optimizer.param_groups:
                    group["lr"] = config.peak_lr * lr_factor(step, total_steps, recipe.warmup)
                logits = model(batches.inputs(images))
                loss = criterion(logits, labels)
                if teacher is not None and recipe.kd_weight > 0:
                    with torch.no_grad():
                        target = teacher(batches.inputs(images, teacher_resolution))
                    loss = (1 - recipe.kd_weight) * loss + recipe.kd_weight * \
                        _distillation_loss(logits, target, recipe.kd_temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                value = loss.item()
                if not math.isfinite(value):
                    card.update(status="diverged",
                                message=f"training loss became {value} at step {step + 1}")
                    _write_card(out, card)
                    return card
                loss_sum += value * len(labels)
                seen += len(labels)
                if bar is not None:
                    bar.update(len(labels))
            step = bounds[epoch + 1]
            top1, raw_scored = _score(model, data, batches, device, config)
            record = {"epoch": epoch + 1, "loss": loss_sum / seen, "top1": top1,
                      "top1_ema": None, "lr": optimizer.param_groups[0]["lr"]}
            final = raw_scored
            if ema is not None:
                record["top1_ema"], final = _score(ema.model, data, batches, device, config)
            seconds += time.perf_counter() - tic
            record["seconds"] = seconds
            history.append(record)
            save_atomically({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                             "key": key, "epoch": epoch + 1, "step": step,
                             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "ema": ema.model.state_dict() if ema is not None else None,
                             "ema_updates": ema.updates if ema is not None else 0,
                             "history": history,
                             "seconds": seconds}, out / CHECKPOINT_FILE)
            final = final.cpu()
            final.tinyformula = {**model_config, "data": _data_entry(data),
                                 "trained": {"recipe": "final", "epochs": epoch + 1,
                                             "weights": "ema" if ema is not None else "raw",
                                             "top1": record["top1_ema"] if ema is not None
                                             else top1}}
            save_atomically(model_state(final), out / MODEL_FILE)
            card = _card(model_config, data, recipe, teacher, teacher_path, command, history,
                         seconds, "done" if epoch + 1 == recipe.epochs else "running")
            _write_card(out, card)
            _plot_curve(history, out / CURVE_FILE, recipe.epochs)
            if bar is not None:
                bar.set_postfix_str(_postfix(record, recipe.epochs))
            if stop_after is not None and epoch + 1 >= stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
    return card


def _postfix(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs} loss {record['loss']:.3f} top-1 {record['top1']:.1%}"
    if record.get("top1_ema") is not None:
        text += f" (EMA {record['top1_ema']:.1%})"
    return text


def _data_entry(data: ImageData) -> dict:
    """How to feed the model: the dataset and its per-channel normalisation (0..255 units)."""
    return {"name": data.name, "mean": list(data.mean), "std": list(data.std),
            "channels": data.channels}


def _card(model_config, data, recipe, teacher, teacher_path, command, history, seconds,
          status) -> dict:
    n_val = len(data.val_images) if recipe.val_size is None else min(recipe.val_size,
                                                                      len(data.val_images))
    last = history[-1] if history else {}
    return {
        "status": status,
        "model": model_config,
        "flops": model_config["flops"], "params": model_config["params"],
        "data": {**_data_entry(data),
                 "train_images": check_budget(data, recipe.train_config()),
                 "scored_on": f"{n_val:,} images",
                 "note": TEST_SPLIT_NOTE.format(source=data.val_source)},
        "recipe": {"name": "final", **asdict(recipe),
                   "augmentation": "random crop (1/8 padding) and flip where it keeps the "
                                   "label; no Mixup or CutMix",
                   "teacher": None if teacher is None else
                   {"path": teacher_path, "model": teacher.tinyformula}},
        "weights": f"{MODEL_FILE}: the " + ("EMA weights" if recipe.ema else "raw weights")
                   + ", BatchNorm statistics recomputed on training images",
        "top1": last.get("top1_ema") if recipe.ema else last.get("top1"),
        "top1_raw": last.get("top1"), "top1_ema": last.get("top1_ema"),
        "epochs": history,
        "seconds": seconds,
        "command": command,
        "torch": torch.__version__,
    }


def _write_card(out: Path, card: dict) -> None:
    write_atomically(out / CARD_FILE, json.dumps(card, indent=1) + "\n")


def _plot_curve(history: list[dict], path: Path, epochs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plots import save_figure

    figure, left = plt.subplots(figsize=(6, 4), dpi=100)
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
    figure.tight_layout()
    try:
        save_figure(figure, path)
    finally:
        plt.close(figure)
