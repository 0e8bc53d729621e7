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
(:class:`~tinyformula.training.batches.TrainBatches`), so candidates trained with the same seed see
exactly the same batches, on CPU and GPU. Every batch has one shape: the epochs form one
stream of images and only its final remainder (less than a batch) is dropped. The weight
initialisation uses the same seed. On CPU a run is deterministic for a given seed and thread
count (same seed -> same top-1).

On CUDA the whole training step is captured once in a CUDA graph and replayed
(:mod:`.steps`; ``cuda_graph=False`` keeps it eager); the run happens under
``torch.cuda.device(device)``, so ``cuda:1`` captures on GPU 1. A failed capture ends the run
with status ``"capture_failed"``: this process's CUDA state is then unreliable, and the run
must be trained again with ``cuda_graph=False`` in a new process (the search's executors do
this themselves). BatchNorm recalibration and scoring run in larger batches on CUDA. On CPU
the step is always eager.

Grayscale images (Fashion-MNIST, digits) are repeated to three channels rather than building
the model with ``in_channels=1``: the bases are specified for RGB, and the FLOPs and c of a
candidate then equal the reference convention (the two extra input channels add 147,456
FLOPs to B0's stem at 32 px, 1.7% of its total; more for shallow, narrow candidates).

A run whose training loss turns nan/inf stops with status ``"diverged"``; a CUDA out-of-memory
error gives status ``"oom"``; none of these raises.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.devices import resolve_device
from ..core.errors import TinyFormulaError
from ..core.threads import torch_threads
from ..data.images import ImageData
from ..nets.bases import BaseNetwork, get_base
from ..nets.scale import Scale
from .batches import TrainBatches
from .config import TrainConfig
from .evaluate import eval_batch_size, evaluate, recalibrate_batchnorm
from .loop import run_steps
from .optim import autocast
from .sizes import check_training_size
from .steps import CaptureFailed, make_step, on_device


@dataclass
class TrainResult:
    """What one training run measured; plain values, ready for a table or JSON.

    ``top1`` (fraction correct) and ``loss`` (plain cross-entropy, no smoothing) are on the
    held-out split, None unless ``status == "ok"``. ``images_per_s`` counts training images
    over the training loop's time (on CUDA including the graph's warm-up and capture);
    ``seconds`` is the whole run (build, train, evaluate). ``flops``, ``params`` and
    ``resolution`` come from the analytic cost model. ``images`` = ``steps`` x
    ``batch_size`` (the static batch: the configured one, or the train size when smaller).
    ``graphed``: whether the step ran as a replayed CUDA graph; when a graph was asked for
    and not used (status ``"capture_failed"``, or a torch that cannot run one), ``message``
    says why.
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
    steady_images_per_s: float = 0.0
    steady_images: int = 0
    steady_seconds: float = 0.0
    steady_start: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)



def training_images(data: ImageData, config: TrainConfig) -> int:
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
    one. Bad input raises TinyFormulaError; divergence, CUDA out-of-memory and a failed CUDA
    graph capture are reported in ``status`` (``"diverged"``, ``"oom"``,
    ``"capture_failed"``).
    """
    start = time.perf_counter()
    config = config or TrainConfig()
    base = get_base(base) if isinstance(base, str) else base
    scale = scale or Scale()
    resolution_base = data.resolution_base if resolution_base is None else resolution_base
    cost = base.cost(scale, data.num_classes, resolution_base)
    n_train = training_images(data, config)
    device = resolve_device(config.device)
    check_training_size(flops=cost.flops, activations=cost.activations,
                        batch_size=min(config.batch_size, n_train),
                        images=n_train * config.epochs, device=str(device))
    fields: dict = dict(flops=cost.flops, params=cost.params, resolution=cost.resolution,
                  device=str(device))
    outcome, out_of_memory = None, None
    try:
        with torch_threads(config.threads), on_device(device):
            batches = TrainBatches(data, train_size=n_train, batch_size=config.batch_size,
                                   epochs=config.epochs, seed=config.seed,
                                   resolution=cost.resolution, augment=config.augment,
                                   channels_last=config.channels_last, device=device)
            if model is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(config.seed)
                    model = base.build(scale, data.num_classes, resolution_base)
            outcome = _run(model, batches, data, config, device, progress)
    except CaptureFailed as error:
        # Nothing more runs on CUDA here (not even empty_cache): the process is unreliable.
        model = batches = None
        outcome = dict(status="oom" if error.out_of_memory else "capture_failed",
                       message=f"{error}; train it again with cuda_graph=False in a new "
                               f"process")
    except torch.cuda.OutOfMemoryError as error:
        out_of_memory = (str(error).splitlines() or ["CUDA out of memory"])[0]
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
    model = model.to(device, memory_format=memory_format)  # type: ignore[call-overload]
    step = make_step(model, config, len(batches), device)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=batches.total_images, unit="img", desc=f"train {batches.resolution}px",
                   leave=False, dynamic_ncols=True)
    model.train()
    try:
        run = run_steps(step, batches, range(len(batches)), device, bar)
    finally:
        if bar is not None:
            bar.close()
    notes = [note for note in (run.message, step.note) if note]
    outcome = dict(status=run.status, images=run.images, steps=run.steps,
                   batch_size=batches.batch_size, graphed=step.graphed,
                   images_per_s=run.images / run.seconds if run.seconds > 0 else 0.0,
                   steady_images_per_s=run.steady_images_per_s,
                   steady_images=run.steady_images, steady_seconds=run.steady_seconds,
                   steady_start=run.steady_start, message="; ".join(notes))
    if run.status != "ok":
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

