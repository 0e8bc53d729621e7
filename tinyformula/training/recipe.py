"""The final-training recipe: train the chosen model properly, resumably, and write it out.

The search ranks candidates on a short schedule (:mod:`.trainer`); once a budget's model is
chosen, this recipe trains it for longer, through the same training step (:mod:`.steps`: eager
on CPU, bf16 under a CUDA graph on a GPU). What it does, following GhostNetV3 (Liu et al.,
2024), which found knowledge distillation and an EMA of the weights among the largest gains for
compact models, and Mixup / CutMix harmful for them (so there are none here):

* SGD with Nesterov momentum, a linear warm-up then cosine decay to 0 over all steps, no weight
  decay on BatchNorm and biases (:mod:`.optim`); label smoothing; random crops and flips (where
  a flip keeps the label);
* an EMA of the weights, scored beside the raw weights after every epoch; the saved model is
  the EMA one when the EMA is on, decided before training, never picked by score;
* optional re-parameterisation (``reparam``: GhostNetV3's largest gain for compact models):
  every depthwise and 1x1 convolution trains as parallel branches with their own BatchNorms
  (:mod:`tinyformula.nets.reparam`), folded exactly into the plain network whenever the
  model is written; the checkpoint holds the branched weights, so a resumed run continues
  the branched training exactly;
* optional knowledge distillation from a teacher (:class:`.losses.Distillation`):
  ``(1 - kd_weight) * CE_smoothed(student, label) + kd_weight * T^2 * KL(teacher_T ||
  student_T)`` (T = 1, weight 0.5 by default, GhostNetV3's); the teacher sees the same
  augmented images at its own resolution. A teacher is checked on training images before
  anything is written (:func:`.teacher.check_teacher`), and :func:`base_teacher` trains the
  base network as one, on a longer schedule, or reuses it;
* before scoring, BatchNorm statistics are recomputed on training images in a *copy* of the
  weights (:func:`.evaluate.score_copy`), so scoring never changes what training continues from.

The model is scored on the dataset's held-out split: for Fashion-MNIST and CIFAR that is the
official test set. That is what a final model is for, and the card says so; nothing (the
architecture, the schedule, raw or EMA weights) is chosen on it here.

Batches come from :class:`~.batches.TrainBatches`: every draw is made up front from the seed, so
a resumed run reads its remaining batches by step.

Durable: after every epoch ``checkpoint.pt`` (weights, optimizer, EMA, step, history;
:mod:`.checkpoint`) is replaced atomically, then ``model.pt``, ``card.json`` and ``curve.png``
(:mod:`.card`). After ``kill -9`` the same call resumes from the last finished epoch and ends
with the same weights as an uninterrupted run (on CPU, for the same thread count). A folder
holding a different run is refused, never overwritten.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from ..core.devices import resolve_device
from ..core.errors import TinyFormulaError
from ..core.folders import check_folder, mark_folder
from ..core.locks import locked_file
from ..core.paths import check_output_path
from ..core.threads import torch_threads
from ..data.images import ImageData
from ..models.create import create_model
from ..models.files import MODEL_FILE, MODEL_KIND, load_model, model_state, save_atomically
from ..nets.reparam import fold, reparameterisable, reparameterise
from .batches import TrainBatches
from .card import (
    CURVE_FILE,
    data_entry,
    make_card,
    model_preprocessing,
    plot_curve,
    write_card,
)
from .checkpoint import (
    CHECKPOINT_FILE,
    comparable,
    describe_difference,
    read_checkpoint,
    run_key,
    write_checkpoint,
)
from .config import RecipeConfig
from .evaluate import score_copy
from .loop import run_steps
from .losses import Distillation
from .sizes import check_training_size
from .steps import CaptureFailed, make_step, on_device
from .teacher import (
    base_teacher_folder,
    base_teacher_recipe,
    base_teacher_settings,
    check_teacher,
    teacher_entry,
)
from .trainer import training_images

# -- the output folder ---------------------------------------------------------------------------

OUT_KIND = "final training"
OUT_MADE_BY = "tinyformula train --recipe final"


def check_output_folder(out) -> Path:
    """Refuse (reading only) an ``out`` that cannot take a final training's files: a folder
    holding a search, another program's files, or anything but this toolkit's final
    training (see :mod:`tinyformula.core.folders`)."""
    out = check_output_path("--out", out)
    check_folder(out, OUT_KIND, OUT_MADE_BY, legacy=holds_training)
    return out


def holds_training(folder: Path) -> bool:
    """Whether an unmarked folder (written before folders were marked) holds a final
    training: its checkpoint reads as one."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return False
    read_checkpoint(path)
    return True


def writable_folder(path) -> Path:
    """Create ``path`` if needed and check it takes files, without claiming it: a folder that
    holds runs side by side (a teacher's parent, often the working folder) is not marked as a
    training of its own."""
    import tempfile

    path = check_output_path("the teacher's folder", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise TinyFormulaError(f"cannot write to folder {path}: "
                               f"{error.strerror or error}") from None
    return path


def prepare_folder(out) -> Path:
    """Check ``out`` (:func:`check_output_folder`), create and mark it, and check it takes
    files; an unwritable one raises TinyFormulaError before anything is trained."""
    import tempfile

    out = check_output_folder(out)
    mark_folder(out, OUT_KIND, OUT_MADE_BY)
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise TinyFormulaError(f"cannot write to output folder {out}: "
                               f"{error.strerror or error}") from None
    return out


def _activations(model_config: dict) -> int:
    """The analytic count of a model's activations per image (0 when its base is unknown
    here: the size check then rests on the schedule alone)."""
    from ..nets.bases import get_base
    from ..nets.scale import Scale

    try:
        return get_base(model_config["base"]).cost(
            Scale(model_config["r"], model_config["d"], model_config["w"]),
            model_config["num_classes"], model_config["resolution_base"]).activations
    except (TinyFormulaError, KeyError, TypeError, ValueError):
        return 0


def epoch_bounds(steps: int, epochs: int) -> list[int]:
    """The first step of each epoch, and the run's end: the run's batches are one stream
    (``TrainBatches``) cut into ``epochs`` nearly equal parts."""
    return [round(e * steps / epochs) for e in range(epochs + 1)]


# -- training ------------------------------------------------------------------------------------

def train_final(data: ImageData, model: nn.Module, out, recipe: RecipeConfig | None = None, *,
                teacher: nn.Module | None = None, teacher_path: str | None = None,
                command: str | None = None, progress: bool = False,
                stop_after: int | None = None) -> dict:
    """Train ``model`` (from ``create_model`` / ``load_model``) on ``data`` with the final
    recipe, writing ``out``/checkpoint.pt, model.pt, card.json and curve.png after every
    epoch; returns the card. A checkpoint already in ``out`` for the same run is continued.

    ``teacher``: a trained model (``load_model``) with the dataset's classes, for distillation;
    it must take the data at its own resolution and beat chance on the run's training images
    (checked before anything is written). With ``recipe.reparam`` the model is
    re-parameterised in place (trained branched; every model file written is folded).
    ``stop_after``: return after that many epochs in total, as if killed (for tests).
    """
    recipe = recipe or RecipeConfig()
    config = recipe.train
    check_output_folder(out)  # before anything is drawn or trained
    model_config = dict(getattr(model, "tinyformula", None) or {})
    if "resolution" not in model_config:
        raise TinyFormulaError("the model has no tinyformula configuration; make it with "
                               "create_model or load_model")
    if model_config["num_classes"] != data.num_classes:
        raise TinyFormulaError(f"the model has {model_config['num_classes']} classes, "
                               f"{data.name} has {data.num_classes}")
    if recipe.reparam and not reparameterisable(model):
        raise TinyFormulaError("--reparam: the model has no depthwise or 1x1 convolution "
                               "followed by its BatchNorm in an nn.Sequential to branch; "
                               "train it without --reparam")
    extra: tuple[int, ...] = ()
    if teacher is not None:
        classes = (getattr(teacher, "tinyformula", None) or {}).get("num_classes")
        if classes != data.num_classes:
            raise TinyFormulaError(f"the teacher has {classes} classes, {data.name} has "
                                   f"{data.num_classes}: distillation needs the same classes")
        extra = (int(teacher.tinyformula["resolution"]),)  # type: ignore[index]
    device = resolve_device(config.device)
    n_train = training_images(data, config)
    check_training_size(flops=model_config["flops"], activations=_activations(model_config),
                        batch_size=min(config.batch_size, n_train),
                        images=n_train * config.epochs, device=str(device),
                        what="the final recipe")
    # Every draw of the run (subset, orders, crops, flips) is made here, from the seed alone:
    # a resumed run reads its remaining batches by step number, exactly as if never stopped.
    batches = TrainBatches(data, train_size=training_images(data, config),
                           batch_size=config.batch_size, epochs=config.epochs, seed=config.seed,
                           resolution=model_config["resolution"], device=device,
                           extra_resolutions=extra)
    try:
        with torch_threads(config.threads), on_device(device):
            teacher_info = None
            if teacher is not None:
                teacher = teacher.to(device, memory_format=torch.channels_last)  # type: ignore
                check = check_teacher(teacher, batches, device, data.num_classes)
                teacher_info = teacher_entry(teacher, teacher_path, check)
            out = prepare_folder(out)
            key = run_key(model_config, recipe, data, teacher)
            checkpoint_path = out / CHECKPOINT_FILE
            saved = read_checkpoint(checkpoint_path) if checkpoint_path.exists() else None
            if saved is not None and comparable(saved["key"]) != comparable(key):
                why = describe_difference(comparable(saved["key"]), comparable(key))
                raise TinyFormulaError(f"{out} holds a different training run ({why}); use "
                                       f"another --out, or the same options to continue it")
            return _train(data, model, model_config, out, recipe, key, saved, batches, device,
                          teacher, teacher_info, command, progress, stop_after)
    except CaptureFailed as error:
        # This process must not train on after a failed capture; the last checkpoint stands.
        raise TinyFormulaError(f"{error}; run the same command with --no-cuda-graph "
                               f"(cuda_graph=False) to train this model eagerly: it continues "
                               f"from the last finished epoch") from None


def _train(data, model, model_config, out, recipe, key, saved, batches, device, teacher,
           teacher_info, command, progress, stop_after) -> dict:
    config = recipe.train
    epochs = config.epochs
    if recipe.reparam:
        # The extra branches are drawn from the run's seed: a resumed run rebuilds the same
        # structure and then loads the checkpoint's branched weights into it.
        model = reparameterise(model, recipe.reparam, seed=config.seed)
    model = model.to(device, memory_format=torch.channels_last)
    history, epoch0, step0, seconds = [], 0, 0, 0.0
    if saved is not None:
        _load(out, lambda: model.load_state_dict(saved["model"]))
        history, epoch0, step0 = saved["history"], saved["epoch"], saved["step"]
        seconds = saved["seconds"]
    loss = None
    if teacher is not None:
        loss = Distillation(teacher, recipe.kd_temperature, recipe.kd_weight,
                            config.label_smoothing)
    step = make_step(model, config, len(batches), device, loss=loss, start=step0)
    if saved is not None:
        _load(out, lambda: step.load_state(saved))
    bounds = epoch_bounds(len(batches), epochs)
    card = make_card(model_config, data, recipe, teacher_info, command, history, seconds,
                     "running" if epoch0 < epochs else "done")

    bar = None
    if progress and epoch0 < epochs:
        from tqdm import tqdm

        bar = tqdm(total=batches.total_images, initial=bounds[epoch0] * batches.batch_size,
                   unit="img", desc=f"final {batches.resolution}px", dynamic_ncols=True)
        if history:
            bar.set_postfix_str(_postfix(history[-1], epochs))
    try:
        for epoch in range(epoch0, epochs):
            tic = time.perf_counter()
            model.train()
            run = run_steps(step, batches, range(bounds[epoch], bounds[epoch + 1]), device, bar)
            if run.status != "ok":
                card.update(status="diverged", message=run.message)
                write_card(out, card)
                return card
            if bar is not None:  # scoring (BatchNorm recalibration, raw and EMA) takes a while
                bar.set_postfix_str(f"epoch {epoch + 1}: recalibrating BatchNorm and scoring "
                                    f"{'raw and EMA weights' if step.ema else 'the weights'}")
            top1, final = score_copy(model, data, batches, device, config)
            record = {"epoch": epoch + 1, "loss": run.mean_loss, "top1": top1,
                      "top1_ema": None, "lr": float(step.optimizer.param_groups[0]["lr"]),
                      "train_seconds": run.seconds}
            if step.ema is not None:
                record["top1_ema"], final = score_copy(step.ema.model, data, batches, device,
                                                       config)
            seconds += time.perf_counter() - tic
            record["seconds"] = seconds
            history.append(record)
            write_checkpoint(out / CHECKPOINT_FILE, key, epoch + 1, bounds[epoch + 1], model,
                             step.state(), history, seconds)
            final = fold(final.cpu())   # the plain network (a no-op without reparam)
            trained = {"recipe": "final", "epochs": epoch + 1,
                       "weights": "ema" if step.ema is not None else "raw",
                       "top1": record["top1_ema"] if step.ema is not None else top1}
            if recipe.reparam:
                trained["reparam"] = recipe.reparam
            final.tinyformula = {**model_config, "data": data_entry(data),  # type: ignore
                                 "preprocessing": model_preprocessing(model_config, data),
                                 "trained": trained}
            save_atomically(model_state(final), out / MODEL_FILE, MODEL_KIND)
            card = make_card(model_config, data, recipe, teacher_info, command, history,
                             seconds, "done" if epoch + 1 == epochs else "running")
            write_card(out, card)
            plot_curve(history, out / CURVE_FILE, epochs)
            if bar is not None:
                bar.set_postfix_str(_postfix(record, epochs))
            if stop_after is not None and epoch + 1 >= stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
    return card


def _load(out: Path, load) -> None:
    """Continue from the checkpoint's state; one that does not fit the run (edited, or from
    another version) is refused and left as it is."""
    try:
        load()
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"checkpoint {out / CHECKPOINT_FILE} does not fit this run "
                               f"({first}); it was left as it is: move it away to start over, "
                               f"or use another --out") from None


def _postfix(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs} loss {record['loss']:.3f} top-1 {record['top1']:.1%}"
    if record.get("top1_ema") is not None:
        text += f" (EMA {record['top1_ema']:.1%})"
    return text


# -- a teacher trained here ------------------------------------------------------------------------

def base_teacher(data: ImageData, base: str, resolution_base: int, student: RecipeConfig,
                 parent, epochs: int | None = None, progress: bool = False,
                 command: str | None = None) -> tuple[nn.Module, str]:
    """Train (or reuse) the base network as a teacher for ``student``'s runs:
    ``(model, folder)``.

    ``base`` at r = d = w = 1 for ``data``'s classes and ``resolution_base``, trained with the
    final recipe on the student's settings for ``epochs`` epochs (default twice the
    student's; :func:`.teacher.base_teacher_recipe`) in ``parent/teacher-BASE-HASH``, the hash
    naming those settings (:func:`.teacher.base_teacher_settings`). A finished teacher there
    is reused as it is, an unfinished one continued; a lock beside the folder makes a second
    process wait for the first."""
    recipe = base_teacher_recipe(student, epochs)
    settings = base_teacher_settings(base, data, resolution_base, recipe)
    folder = base_teacher_folder(writable_folder(parent), settings)
    model = create_model(base, num_classes=data.num_classes, resolution_base=resolution_base,
                         seed=recipe.train.seed)
    with locked_file(folder):
        card = train_final(data, model, folder, recipe, progress=progress,
                           command=command or f"base teacher ({recipe.train.epochs} epochs)")
    if card["status"] != "done":
        raise TinyFormulaError(f"the base teacher's training in {folder} ended "
                               f"{card['status']} ({card.get('message', '')}); remove the "
                               f"folder or change the settings")
    return load_model(folder, "teacher"), str(folder)
