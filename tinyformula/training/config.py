"""How one model is trained: :class:`TrainConfig` and the final recipe's :class:`RecipeConfig`,
every setting declared with its limits.

The search trains each candidate with a ``TrainConfig`` (a short schedule); the final recipe's
config holds one for the settings the two share, plus what only the recipe has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from ..core.constraints import (
    COUNT,
    COUNT_LIMIT,
    SEED,
    Boolean,
    Integer,
    Options,
    OrNone,
    Real,
    check_fields,
)
from ..core.devices import DEVICE
from ..core.errors import TinyFormulaError

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adamw": 3e-3}


@dataclass(frozen=True)
class TrainConfig:
    """How to train one candidate. The budget is ``train_size`` images x ``epochs`` passes.

    ``train_size``: how many training images (a seed-fixed subset; None = all).
    ``optimizer``: ``"sgd"`` (Nesterov momentum 0.9; default, it learned fastest) or ``"adamw"``.
    ``lr``: peak learning rate (None: 0.05 for SGD, 3e-3 for AdamW).
    ``warmup``: fraction of the steps spent warming up linearly from 0 to ``lr``.
    ``ema``: decay of an exponential moving average of the weights used for scoring
    (None: score the raw weights; EMA helps longer runs, not a few hundred steps).
    ``val_size``: score on the first ``val_size`` held-out images (fixed; None = all).
    ``eval_batch_size``: batch size of scoring, and on CUDA of BatchNorm recalibration too
    (None: 500 on CPU; on CUDA :func:`eval_batch_size`'s larger batches). On CPU BatchNorm
    is recalibrated in training-sized batches. Recalibrated statistics depend slightly on
    that batch size (each batch's variance is averaged), one more reason, with bf16, that a
    CUDA score differs from a CPU one within seed noise.
    ``cuda_graph``: on CUDA, capture the training step in a CUDA graph and replay it
    (the step is launch-bound for small models); False keeps it eager. Ignored on CPU.
    ``bn_recalibrate``: before scoring, recompute BatchNorm's running statistics on this many
    training images (0 = keep the running averages). After a few dozen fast-moving steps the
    running averages describe old weights: EfficientNet-B0 on 4,096 Fashion-MNIST images scored
    10% (chance) in eval mode without it, 63% with it.
    ``threads``: torch CPU threads for this run (None: leave torch's setting).
    """

    train_size: int | None = None
    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 0.05
    warmup: float = 0.1
    label_smoothing: float = 0.1
    ema: float | None = None
    augment: bool = True
    channels_last: bool = True
    seed: int = 0
    device: str = "auto"
    val_size: int | None = None
    eval_batch_size: int | None = None
    bn_recalibrate: int = 2048
    threads: int | None = None
    cuda_graph: bool = True

    constraints: ClassVar[dict] = {
        "train_size": OrNone(COUNT, "all the training images"),
        "epochs": Integer(1, 10_000, why="a schedule longer than that would not finish"),
        "batch_size": Integer(1, 65_536, why="larger batches do not fit in memory"),
        "optimizer": Options(OPTIMIZERS),
        "lr": OrNone(Real(0, None, closed="right"), "the optimizer's default"),
        "weight_decay": Real(0, 10),
        "warmup": Real(0, 1, closed="left", why="a fraction of the steps"),
        "label_smoothing": Real(0, 1, closed="left"),
        "ema": OrNone(Real(0, 1, closed="neither"), "no EMA"),
        "augment": Boolean(),
        "channels_last": Boolean(),
        "seed": SEED,
        "device": DEVICE,
        "val_size": OrNone(COUNT, "every held-out image"),
        "eval_batch_size": OrNone(Integer(1, 65_536), "the device's default"),
        "bn_recalibrate": Integer(0, COUNT_LIMIT),
        "threads": OrNone(Integer(1, 1024), "torch's setting"),
        "cuda_graph": Boolean(),
    }

    def __post_init__(self):
        check_fields(self)

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (each checked again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


# Where the final recipe's defaults differ from the search's short schedule.
RECIPE_DEFAULTS: dict = {"epochs": 20, "warmup": 0.05, "ema": 0.999}
# The order settings are listed in a card and a checkpoint's key (as before 0.2).
FLAT_ORDER = ("epochs", "train_size", "batch_size", "optimizer", "lr", "weight_decay", "warmup",
              "label_smoothing", "ema", "kd_temperature", "kd_weight", "reparam", "seed",
              "val_size", "bn_recalibrate", "threads", "device")
RECIPE_OWN = ("kd_temperature", "kd_weight", "reparam")
# Distillation defaults: GhostNetV3's released training script (huawei-noah/Efficient-AI-
# Backbones, ghostnetv3_pytorch/train.py) distils at temperature 1 with the cross-entropy and
# the KL term weighted equally (--temperature 1, --ori-loss-weight 1, --kd-loss-weight 1).
KD_TEMPERATURE = 1.0
KD_WEIGHT = 0.5
BASE_TEACHER = "base"   # --teacher base: train the base network as the teacher
MAX_BRANCHES = 8   # re-parameterisation's k x k branches: each costs a convolution per step


def _recipe_training() -> TrainConfig:
    return TrainConfig(**RECIPE_DEFAULTS)


@dataclass(frozen=True)
class RecipeConfig:
    """The final recipe's settings: how to train (a :class:`TrainConfig`, with the recipe's
    defaults: 20 epochs, 5% warm-up, an EMA of decay 0.999) and what only the recipe has: the
    distillation loss's temperature and weight (used only with a teacher; defaults T = 1 and
    0.5, GhostNetV3's), and ``reparam``, the number of parallel k x k branches each depthwise
    and 1x1 convolution is trained with (None: the plain network;
    :mod:`tinyformula.nets.reparam`).

    ``RecipeConfig.of(epochs=30, kd_weight=0.7, reparam=2, ...)`` builds one from flat
    settings.
    """

    train: TrainConfig = field(default_factory=_recipe_training)
    kd_temperature: float = KD_TEMPERATURE
    kd_weight: float = KD_WEIGHT
    reparam: int | None = None

    constraints: ClassVar[dict] = {
        "kd_temperature": Real(0, 100, closed="right", why="a softmax temperature"),
        "kd_weight": Real(0, 1),
        "reparam": OrNone(Integer(1, MAX_BRANCHES, why="each branch costs a convolution per "
                                  "step; GhostNetV3 trains with 3"), "the plain network"),
    }

    def __post_init__(self):
        if not isinstance(self.train, TrainConfig):
            raise TinyFormulaError(f"train must be a TrainConfig, got {type(self.train).__name__}")
        check_fields(self, label="{words}")

    @classmethod
    def of(cls, **settings) -> "RecipeConfig":
        """A recipe from flat settings: :class:`TrainConfig`'s fields (the recipe's defaults
        where not given) and ``kd_temperature``, ``kd_weight``, ``reparam``."""
        own = {name: settings.pop(name) for name in RECIPE_OWN if name in settings}
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TinyFormulaError(f"unknown recipe setting(s): {', '.join(unknown)}")
        return cls(TrainConfig(**{**RECIPE_DEFAULTS, **settings}), **own)

    def flat(self) -> dict:
        """The settings as one flat mapping (a card's ``recipe``, a checkpoint's key)."""
        values = {**self.train.to_dict(), "kd_temperature": self.kd_temperature,
                  "kd_weight": self.kd_weight, "reparam": self.reparam}
        return {name: values[name] for name in FLAT_ORDER}
