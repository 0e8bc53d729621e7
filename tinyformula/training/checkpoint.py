"""The final recipe's checkpoint: written atomically after every epoch, read back to resume.

A checkpoint holds the run's key (what must match for it to be continued: the model, the
recipe, the data, the teacher), the epoch and step reached, the weights, the optimizer's and
the EMA's state, the history and the seconds spent. A folder holding another run's checkpoint
is refused, never overwritten.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from ..core.constraints import Integer, Options, OrNone, Real
from ..core.errors import TinyFormulaError
from ..core.files import FileKind
from ..core.schema import Anything, ListOf, Number, Record, Text, validate
from ..data.images import ImageData
from ..models.files import Weights, save_atomically

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = "tinyformula-checkpoint"
CHECKPOINT_VERSION = 1

_SCORE = OrNone(Real(0, 1), "not scored")
EPOCH_RECORD = Record({"epoch": Integer(1, 1_000_000), "loss": Number(), "top1": Real(0, 1)},
                      optional={"top1_ema": _SCORE, "lr": Number(),
                                "seconds": Real(0, 1e10)})
CHECKPOINT = Record({
    "format": Options((CHECKPOINT_FORMAT,)),
    "version": Integer(CHECKPOINT_VERSION, CHECKPOINT_VERSION),
    "key": Record({"model": Record({}), "recipe": Record({}), "data": Text(max_length=10_000),
                   "teacher": OrNone(Record({}), "no teacher")}),
    "epoch": Integer(0, 1_000_000), "step": Integer(0, 2**62),
    "model": Weights(), "optimizer": Record({}), "ema": OrNone(Weights(), "no EMA"),
    "ema_updates": Integer(0, 2**62), "history": ListOf(EPOCH_RECORD, 0, 1_000_000),
    "seconds": Real(0, 1e10)}, optional={"extra": Anything()})
"""What a final recipe's checkpoint holds, every value checked before training continues."""


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
    data = validate(data, CHECKPOINT, f"checkpoint {path}",
                    "it was left as it is: move it away to start over, or use another --out")
    if data["epoch"] != len(data["history"]):
        raise TinyFormulaError(f"checkpoint {path} is damaged (epoch {data['epoch']} but "
                               f"{len(data['history'])} epochs of history); it was left as it "
                               f"is: move it away to start over, or use another --out")
    return data


CHECKPOINT_KIND = FileKind("tinyformula training checkpoint",
                           lambda path: bool(read_checkpoint(path)))


def run_key(model_config: dict, recipe, data: ImageData, teacher) -> dict:
    """What must match for a checkpoint to be continued: the model, the recipe's settings
    (a :class:`~.recipe.RecipeConfig`; where it runs does not count), the data, the teacher."""
    return {"model": {k: model_config[k] for k in ("base", "r", "d", "w", "num_classes",
                                                   "resolution_base")},
            "recipe": {k: v for k, v in recipe.flat().items() if k not in ("threads", "device")},
            "data": data.name,
            "teacher": None if teacher is None else
            {k: teacher.tinyformula.get(k) for k in ("base", "r", "d", "w", "resolution")}}


def comparable(key: dict) -> dict:
    """A run key with the settings that cannot change the run left out: the distillation
    settings without a teacher, ``reparam`` when off (so a checkpoint written before they
    existed, or with other distillation defaults, still resumes)."""
    recipe = dict(key.get("recipe") or {})
    if key.get("teacher") is None:
        recipe.pop("kd_temperature", None)
        recipe.pop("kd_weight", None)
    if recipe.get("reparam") is None:
        recipe.pop("reparam", None)
    return {**key, "recipe": recipe}


def describe_difference(saved: dict, wanted: dict) -> str:
    for part in ("model", "recipe", "data", "teacher"):
        a, b = saved.get(part), wanted.get(part)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                keys = [k for k in b if a.get(k) != b.get(k)] or list(a)
                k = keys[0]
                return f"{part} {k}: {a.get(k)!r} there, {b.get(k)!r} now"
            return f"{part}: {a!r} there, {b!r} now"
    return "unknown difference"


def write_checkpoint(path: Path, key: dict, epoch: int, step: int, model, step_state: dict,
                     history: list[dict], seconds: float) -> None:
    """Replace the checkpoint at ``path`` atomically (the previous one stays until then)."""
    save_atomically({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "key": key,
                     "epoch": epoch, "step": step, "model": model.state_dict(), **step_state,
                     "history": history, "seconds": seconds}, path, CHECKPOINT_KIND)
