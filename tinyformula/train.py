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
come from one generator seeded by ``seed`` and are drawn at the dataset's native size, so
candidates trained with the same seed see exactly the same batches. The weight
initialisation uses the same seed. On CPU a run is deterministic for a given seed and thread
count (same seed -> same top-1).

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
from .data import ImageData
from .data.augment import crop_padding, draw_crops, draw_flips, flip, random_crop, to_input
from .errors import TinyFormulaError
from .scale import Scale

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
    eval_batch_size: int = 500
    bn_recalibrate: int = 2048
    threads: int | None = None

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
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise TinyFormulaError(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if isinstance(self.bn_recalibrate, bool) or not isinstance(self.bn_recalibrate, int) \
                or self.bn_recalibrate < 0:
            raise TinyFormulaError(f"bn_recalibrate must be a whole number of 0 or more, got "
                                   f"{self.bn_recalibrate!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
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
    over the training loop's time; ``seconds`` is the whole run (build, train, evaluate).
    ``flops``, ``params`` and ``resolution`` come from the analytic cost model.
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
    device: str = "cpu"
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


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights of convolutions and linear layers decay; BatchNorm parameters and
    biases (every parameter of one dimension or fewer) do not, since shrinking them only
    fights normalisation."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.peak_lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.peak_lr, betas=(0.9, 0.999))


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Multiplier of the peak rate at ``step`` (0-based): linear warm-up, then cosine to 0."""
    warm = max(1, round(warmup * total)) if warmup > 0 else 0
    if step < warm:
        return (step + 1) / warm
    span = max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * min(step - warm, span) / span))


class WeightEma:
    """Exponential moving average of parameters and BatchNorm statistics.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so a short run is not dominated
    by its random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        mine = [t for t in self.model.state_dict().values() if t.dtype.is_floating_point]
        theirs = [t for t in model.state_dict().values() if t.dtype.is_floating_point]
        torch._foreach_lerp_(mine, theirs, 1 - decay)


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
    correct, loss_sum = 0, 0.0
    for start in range(0, n, config.eval_batch_size):
        stop = min(n, start + config.eval_batch_size)
        images, labels = data.val_images[start:stop].to(device), data.val_labels[start:stop].to(device)
        x = to_input(images, resolution, data.mean, data.std, channels_last=config.channels_last)
        with _autocast(device):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    return correct / n, loss_sum / n


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def check_budget(data: ImageData, config: TrainConfig) -> int:
    """The number of distinct training images; a train size beyond the dataset is an error."""
    available = len(data.train_images)
    if config.train_size is not None and config.train_size > available:
        raise TinyFormulaError(f"train size {config.train_size:,} is larger than {data.name}'s "
                               f"{available:,} training images")
    return available if config.train_size is None else config.train_size


def batch_plan(n_images: int, batch_size: int) -> list[int]:
    """Sizes of the batches of one epoch: full batches, then the rest unless it is a single
    image (BatchNorm cannot train on one)."""
    sizes = [batch_size] * (n_images // batch_size)
    rest = n_images % batch_size
    if rest > 1:
        sizes.append(rest)
    return sizes


def train(data: ImageData, base: str | BaseNetwork = "efficientnet_b0", scale: Scale | None = None,
          config: TrainConfig | None = None, *, resolution_base: int | None = None,
          progress: bool = False) -> TrainResult:
    """Train ``base`` scaled by ``scale`` on ``data`` for the configured budget and score it.

    ``resolution_base`` defaults to the dataset's (32 for small images, 224 for folders); the
    candidate sees ``int(resolution_base * r)`` pixels. Bad input raises TinyFormulaError;
    divergence and CUDA out-of-memory are reported in ``status``.
    """
    start = time.perf_counter()
    config = config or TrainConfig()
    base = get_base(base) if isinstance(base, str) else base
    scale = scale or Scale()
    resolution_base = resolution_base or data.resolution_base
    cost = base.cost(scale, data.num_classes, resolution_base)
    n_train = check_budget(data, config)
    device = resolve_device(config.device)
    sizes = batch_plan(n_train, config.batch_size)
    if not sizes:
        raise TinyFormulaError(f"train size {n_train} is too small: a batch needs 2 images")
    total_steps = len(sizes) * config.epochs

    result = TrainResult(top1=None, loss=None, images_per_s=0.0, seconds=0.0, status="ok",
                         flops=cost.flops, params=cost.params, resolution=cost.resolution,
                         device=str(device))
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out_of_memory = None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = base.build(scale, data.num_classes, resolution_base)
        _run(model, data, config, device, sizes, total_steps, result, progress)
    except torch.cuda.OutOfMemoryError as error:
        out_of_memory = (str(error).splitlines() or ["CUDA out of memory"])[0]
    finally:
        if config.threads is not None:
            torch.set_num_threads(previous_threads)
    if out_of_memory is not None:
        # Only now, with the exception's traceback (and the frames holding the model and its
        # optimizer) gone, can the cache give the memory back for the next candidate.
        model = None
        result.status, result.top1, result.loss, result.message = "oom", None, None, out_of_memory
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    result.seconds = time.perf_counter() - start
    return result


def _run(model, data, config, device, sizes, total_steps, result, progress):
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config.warmup))
    ema = WeightEma(model, config.ema) if config.ema else None
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    # Every random draw of the data pipeline comes from this generator, on the CPU, in a fixed
    # order; none depends on the model, so all candidates with one seed see the same batches.
    generator = torch.Generator().manual_seed(config.seed)
    subset = torch.randperm(len(data.train_images), generator=generator)[:check_budget(data, config)]
    images_all, labels_all = data.train_images, data.train_labels
    if device.type == "cuda":
        images_all, labels_all = images_all.to(device), labels_all.to(device)
    pad = crop_padding(data.size)
    check_every = 1 if device.type == "cpu" else 25

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(sizes) * config.epochs, unit="img", desc=f"train {result.resolution}px",
                   leave=False, dynamic_ncols=True)
    model.train()
    seen, step = 0, 0
    tic = time.perf_counter()
    try:
        for _ in range(config.epochs):
            order = subset[torch.randperm(len(subset), generator=generator)]
            position = 0
            for size in sizes:
                index = order[position:position + size]
                position += size
                crops = draw_crops(size, pad, generator) if config.augment else None
                flips = draw_flips(size, generator) if config.augment else None
                index = index.to(images_all.device)
                images, labels = images_all[index], labels_all[index]
                if config.augment:
                    images = random_crop(images, crops, pad)
                    if data.flip:
                        images = flip(images, flips)
                x = to_input(images, result.resolution, data.mean, data.std,
                             channels_last=config.channels_last)
                with _autocast(device):
                    loss = criterion(model(x).float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                seen += size
                if step % check_every == 0 or step == total_steps:
                    value = loss.item()
                    if not math.isfinite(value):
                        result.status = "diverged"
                        result.message = f"training loss became {value} at step {step}"
                        break
                    if bar is not None:
                        bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                if bar is not None:
                    bar.update(size)
            if result.status != "ok":
                break
    finally:
        if bar is not None:
            bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - tic
    result.images, result.steps = seen, step
    result.images_per_s = seen / train_seconds if train_seconds > 0 else 0.0
    if result.status != "ok":
        return
    scored = ema.model if ema is not None else model
    if config.bn_recalibrate:
        # The first images of the seed-fixed subset, unaugmented: the same for every candidate.
        chosen = subset[:config.bn_recalibrate].to(images_all.device)
        batches = (to_input(images_all[chosen[i:i + config.batch_size]], result.resolution,
                            data.mean, data.std, channels_last=config.channels_last)
                   for i in range(0, len(chosen), config.batch_size)
                   if len(chosen[i:i + config.batch_size]) > 1)
        with _autocast(device):
            recalibrate_batchnorm(scored, batches)
    top1, loss = evaluate(scored, data, result.resolution, device, config)
    if not math.isfinite(loss):
        result.status = "diverged"
        result.message = f"held-out loss is {loss}"
        return
    result.top1, result.loss = top1, loss
