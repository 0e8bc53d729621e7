"""Scoring a trained model: BatchNorm statistics recomputed, then top-1 and cross-entropy on the
held-out split."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import to_input
from ..data.images import ImageData
from ..data.mapped import release
from .config import TrainConfig
from .optim import autocast


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
    n = len(data.val_images)
    if config.val_size is not None:
        n = min(config.val_size, n)
    # Photos are stored larger than most candidates see them, and a batch is converted to
    # float at its stored size: size the batch by the larger of the two.
    batch = eval_batch_size(config, device, resolution if data.size <= 128
                            else max(resolution, data.size))
    labels_all = data.val_labels[:n].to(device)
    correct, loss_sum = 0, 0.0
    for start in range(0, n, batch):
        # One batch of images at a time: a memory-mapped split is read as it is scored.
        images = data.val_images[start:min(start + batch, n)].to(device)
        labels = labels_all[start:start + batch]
        x = to_input(images, resolution, data.mean, data.std, channels_last=config.channels_last)
        release(data.val_images)  # read once: the pages go back to the page cache
        with autocast(device):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    return correct / n, loss_sum / n


CUDA_EVAL_PIXELS = 4096 * 32 * 32  # per scoring batch on CUDA: 4,096 images at 32 px
CPU_EVAL_PIXELS = 500 * 128 * 128  # on CPU: 500 images up to 128 px (every small-image
#                                    candidate, r <= 4 at 32 px), fewer beyond (photos)


def eval_batch_size(config: TrainConfig, device: torch.device, resolution: int) -> int:
    """Scoring batch size: ``config.eval_batch_size`` when set; else 500 images up to 128 px
    on CPU, 4,096 images at 32 px on CUDA, and fewer at higher resolutions (equal pixels per
    batch: a 224 px photo batch must fit in memory), never fewer than the training batch
    (inference keeps no activations for a backward pass)."""
    if config.eval_batch_size is not None:
        return config.eval_batch_size
    if device.type != "cuda":
        if resolution * resolution * 500 <= CPU_EVAL_PIXELS:
            return 500
        return max(min(config.batch_size, 500), CPU_EVAL_PIXELS // (resolution * resolution))
    return max(config.batch_size, CUDA_EVAL_PIXELS // (resolution * resolution))


def score_copy(model: nn.Module, data: ImageData, batches, device: torch.device,
               config: TrainConfig) -> tuple[float, nn.Module]:
    """Top-1 of a copy of ``model`` with BatchNorm statistics recomputed on the run's first
    training images (``batches.first_images``), and that copy: scoring never changes what
    training continues from."""
    scored = copy.deepcopy(model)
    if config.bn_recalibrate:
        recalibrate_batchnorm(scored, batches.first_images(config.bn_recalibrate,
                                                           config.batch_size))
    top1, _ = evaluate(scored, data, batches.resolution, device, config)
    return top1, scored
