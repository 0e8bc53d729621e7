"""Short-schedule trainer: score one candidate (base, r, d, w) on a dataset.

The search trains many candidates on a short budget, so this must learn fast and cost little:
SGD with Nesterov momentum (default) or AdamW, a linear warm-up then cosine decay
(one-cycle-like), label smoothing, no weight decay on BatchNorm and biases, optional EMA of the
weights, BatchNorm statistics recomputed before scoring, channels_last (2.6x faster for
EfficientNet-B0 on a 2-core CPU, as well as on GPUs), bf16 autocast on CUDA.

Why SGD by default: measured on 4,096 Fashion-MNIST images (2 seeds, 2,000 held-out images),
SGD+Nesterov at 0.05 scored 54% (EfficientNet-B0, 32 px), 55% and 55% (two candidates at
c ~ 0.1), AdamW at 3e-3 43%, 47% and 48%; AdamW at 1e-3 / 1e-2 / 3e-2 and SGD at 0.1 / 0.2 did
no better. Weight decay 0.05 beat 5e-4 for SGD too (scale-invariant BatchNorm'd weights).

Common random numbers: which training images are used, their order, and every crop and flip
are drawn up front from one CPU generator seeded by ``seed``, at the dataset's native size
(:class:`~tinyformula.batches.TrainBatches`), so candidates trained with the same seed see
exactly the same batches, on CPU and GPU. Every batch has one shape: the epochs form one
stream of images and only its final remainder (less than a batch) is dropped. The weight
initialisation uses the same seed. On CPU a run is deterministic for a given seed and thread
count (same seed -> same top-1).

On CUDA the whole training step is captured once in a CUDA graph and replayed
(:mod:`tinyformula.steps`; ``cuda_graph=False`` keeps it eager, and a model whose capture
fails trains eagerly and says so in ``message``); BatchNorm recalibration and scoring run in
larger batches there. On CPU the step is always eager.

Grayscale images (Fashion-MNIST, digits) are repeated to three channels rather than building
the model with ``in_channels=1``: the bases are specified for RGB, and the FLOPs and c of a
candidate then equal the reference convention (the two extra input channels add 147,456
FLOPs to B0's stem at 32 px, 1.7% of its total; more for shallow, narrow candidates).

A run whose training loss turns nan/inf stops with status ``"diverged"``; a CUDA out-of-memory
error gives status ``"oom"``; neither raises.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .bases import BaseNetwork, get_base
from .batches import TrainBatches
from .data import ImageData
from .data.augment import to_input
from .errors import TinyFormulaError
from .scale import Scale
from .steps import WeightEma, autocast, lr_factor, make_optimizer, make_step, param_groups

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "recalibrate_batchnorm",
           "check_budget", "resolve_device", "eval_batch_size", "lr_factor", "param_groups",
           "make_optimizer", "WeightEma"]

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

    def __post_init__(self):
        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TinyFormulaError(f"{name.replace('_', ' ')} must be a whole number of "
                                       f"at least 1, got {value!r}")

        positive_int("train_size", self.train_size, allow_none=True)
        positive_int("val_size", self.val_size, allow_none=True)
        positive_int("threads", self.threads, allow_none=True)
        positive_int("eval_batch_size", self.eval_batch_size, allow_none=True)
        if not isinstance(self.cuda_graph, bool):
            raise TinyFormulaError(f"cuda_graph must be True or False, got {self.cuda_graph!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise TinyFormulaError(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if isinstance(self.bn_recalibrate, bool) or not isinstance(self.bn_recalibrate, int) \
                or self.bn_recalibrate < 0:
            raise TinyFormulaError(f"bn_recalibrate must be a whole number of 0 or more, got "
                                   f"{self.bn_recalibrate!r}")
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        if self.optimizer not in OPTIMIZERS:
            raise TinyFormulaError(f"unknown optimizer {self.optimizer!r}; known: "
                                   f"{', '.join(OPTIMIZERS)}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise TinyFormulaError(f"learning rate must be a finite number above 0, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TinyFormulaError(f"weight decay must be 0 or more, got {self.weight_decay!r}")
        if not 0 <= self.warmup < 1:
            raise TinyFormulaError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup!r}")
        if not 0 <= self.label_smoothing < 1:
            raise TinyFormulaError(f"label smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise TinyFormulaError(f"EMA decay must be in (0, 1), got {self.ema!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise TinyFormulaError(f"device must be auto, cpu or cuda, got {self.device!r}")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class TrainResult:
    """What one training run measured; plain values, ready for a table or JSON.

    ``top1`` (fraction correct) and ``loss`` (plain cross-entropy, no smoothing) are on the
    held-out split, None unless ``status == "ok"``. ``images_per_s`` counts training images
    over the training loop's time (on CUDA including the graph's warm-up and capture);
    ``seconds`` is the whole run (build, train, evaluate). ``flops``, ``params`` and
    ``resolution`` come from the analytic cost model. ``images`` = ``steps`` x
    ``batch_size`` (the static batch: the configured one, or the train size when smaller).
    ``graphed``: whether the step ran as a replayed CUDA graph; when a capture failed,
    ``message`` says why.
    """

    top1: float | None
    loss: float | None
    images_per_s: float
    seconds: float
    status: str
    flops: int
    params: int
    resolution: int
    images: int = 0
    steps: int = 0
    batch_size: int = 0
    device: str = "cpu"
    graphed: bool = False
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TinyFormulaError("--device cuda asked for, but torch sees no CUDA GPU; use "
                               "--device cpu or auto")
    return torch.device(name)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> None:
    """Recompute every BatchNorm's running mean and variance as the plain average over
    ``batches`` (input tensors), with the weights fixed."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, resolution: int, device: torch.device,
             config: TrainConfig) -> tuple[float, float]:
    """(top-1, mean cross-entropy) on the held-out split (its first ``val_size`` images)."""
    model.eval()
    n = len(data.val_images) if config.val_size is None else min(config.val_size, len(data.val_images))
    batch = eval_batch_size(config, device, resolution)
    images_all, labels_all = data.val_images[:n].to(device), data.val_labels[:n].to(device)
    correct, loss_sum = 0, 0.0
    for start in range(0, n, batch):
        images, labels = images_all[start:start + batch], labels_all[start:start + batch]
        x = to_input(images, resolution, data.mean, data.std, channels_last=config.channels_last)
        with autocast(device):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    return correct / n, loss_sum / n


CUDA_EVAL_PIXELS = 4096 * 32 * 32  # per scoring batch on CUDA: 4,096 images at 32 px


def eval_batch_size(config: TrainConfig, device: torch.device, resolution: int) -> int:
    """Scoring batch size: ``config.eval_batch_size`` when set; else 500 on CPU and, on CUDA,
    4,096 images at 32 px, fewer at higher resolutions (equal pixels per batch), never fewer
    than the training batch (inference keeps no activations for a backward pass)."""
    if config.eval_batch_size is not None:
        return config.eval_batch_size
    if device.type != "cuda":
        return 500
    return max(config.batch_size, CUDA_EVAL_PIXELS // (resolution * resolution))


def check_budget(data: ImageData, config: TrainConfig) -> int:
    """The number of distinct training images; a train size beyond the dataset is an error."""
    available = len(data.train_images)
    if config.train_size is not None and config.train_size > available:
        raise TinyFormulaError(f"train size {config.train_size:,} is larger than {data.name}'s "
                               f"{available:,} training images")
    return available if config.train_size is None else config.train_size



def train(data: ImageData, base: str | BaseNetwork = "efficientnet_b0", scale: Scale | None = None,
          config: TrainConfig | None = None, *, resolution_base: int | None = None,
          progress: bool = False, model: nn.Module | None = None) -> TrainResult:
    """Train ``base`` scaled by ``scale`` on ``data`` for the configured budget and score it.

    ``resolution_base`` defaults to the dataset's (32 for small images, 224 for folders); the
    candidate sees ``int(resolution_base * r)`` pixels. ``model``: train this module (built
    from the same base and scale, e.g. to continue an earlier run) in place instead of a fresh
    one. Bad input raises TinyFormulaError; divergence and CUDA out-of-memory are reported in
    ``status``.
    """
    start = time.perf_counter()
    config = config or TrainConfig()
    base = get_base(base) if isinstance(base, str) else base
    scale = scale or Scale()
    resolution_base = resolution_base or data.resolution_base
    cost = base.cost(scale, data.num_classes, resolution_base)
    n_train = check_budget(data, config)
    device = resolve_device(config.device)
    fields = dict(flops=cost.flops, params=cost.params, resolution=cost.resolution,
                  device=str(device))
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    outcome, out_of_memory = None, None
    try:
        batches = TrainBatches(data, train_size=n_train, batch_size=config.batch_size,
                               epochs=config.epochs, seed=config.seed, resolution=cost.resolution,
                               augment=config.augment, channels_last=config.channels_last,
                               device=device)
        if model is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                model = base.build(scale, data.num_classes, resolution_base)
        outcome = _run(model, batches, data, config, device, progress)
    except torch.cuda.OutOfMemoryError as error:
        out_of_memory = (str(error).splitlines() or ["CUDA out of memory"])[0]
    finally:
        if config.threads is not None:
            torch.set_num_threads(previous_threads)
    if out_of_memory is not None:
        # Only now, with the exception's traceback (and the frames holding the model and its
        # optimizer) gone, can the cache give the memory back for the next candidate.
        model = batches = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        outcome = dict(status="oom", message=out_of_memory)
    result = TrainResult(top1=None, loss=None, images_per_s=0.0, seconds=0.0, status="ok",
                         **fields)
    for name, value in outcome.items():
        setattr(result, name, value)
    result.seconds = time.perf_counter() - start
    return result


def _run(model: nn.Module, batches: TrainBatches, data: ImageData, config: TrainConfig,
         device: torch.device, progress: bool) -> dict:
    """Train ``model`` on ``batches`` and score it; returns the TrainResult fields it measured."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    step = make_step(model, config, len(batches), device)
    status, message, steps, seconds = _train_loop(step, batches, device, progress)
    notes = [note for note in (message, step.note) if note]
    outcome = dict(status=status, images=steps * batches.batch_size, steps=steps,
                   batch_size=batches.batch_size, graphed=step.graphed,
                   images_per_s=steps * batches.batch_size / seconds if seconds > 0 else 0.0,
                   message="; ".join(notes))
    if status != "ok":
        return outcome
    # Gradients, optimizer state and a CUDA graph's memory pool are not needed to score.
    scored = step.scored
    model.zero_grad(set_to_none=True)
    del step
    if config.bn_recalibrate:
        # The first images of the seed-fixed subset, unaugmented: the same for every candidate.
        size = (config.batch_size if device.type == "cpu"
                else eval_batch_size(config, device, batches.resolution))
        with autocast(device):
            recalibrate_batchnorm(scored, batches.first_images(config.bn_recalibrate, size))
    top1, loss = evaluate(scored, data, batches.resolution, device, config)
    if not math.isfinite(loss):
        notes.insert(0, f"held-out loss is {loss}")
        return dict(outcome, status="diverged", message="; ".join(notes))
    return dict(outcome, top1=top1, loss=loss)


def _train_loop(step, batches: TrainBatches, device: torch.device,
                progress: bool) -> tuple[str, str, int, float]:
    """Run ``step`` on every batch: (status, message, steps taken, seconds). The loss is read
    every step on CPU and every 25 on CUDA (a read waits for the GPU); a nan/inf loss stops
    the run as "diverged"."""
    check_every = 1 if device.type == "cpu" else 25
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=batches.total_images, unit="img", desc=f"train {batches.resolution}px",
                   leave=False, dynamic_ncols=True)
    step.model.train()
    status, message, done = "ok", "", 0
    tic = time.perf_counter()
    try:
        for x, labels in batches:
            loss = step(x, labels)
            done += 1
            if done % check_every == 0 or done == len(batches):
                value = loss.item()
                if not math.isfinite(value):
                    status, message = "diverged", f"training loss became {value} at step {done}"
                    break
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            if bar is not None:
                bar.update(batches.batch_size)
    finally:
        if bar is not None:
            bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return status, message, done, time.perf_counter() - tic
