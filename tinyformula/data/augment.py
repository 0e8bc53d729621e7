"""Whole-batch preprocessing: padded random crop or random-resized crop, horizontal flip,
resize, normalise.

Everything acts on a batch tensor at once (advanced indexing, ``F.interpolate``,
``F.grid_sample``); there is no per-sample Python. Random draws take an explicit
``torch.Generator`` and do not depend on the candidate: padded crops are drawn at the dataset's
native size, before resizing, and random-resized crops as boxes in relative coordinates
(fractions of the image's side), so every candidate - whatever its resolution - gets the same
crops and flips for a given seed (common random numbers).

Two augmentations (:data:`~.images.AUGMENTATIONS`), chosen by the dataset:

* ``"pad-crop"`` (small images: Fashion-MNIST, CIFAR, digits): zero-pad by 1/8 of the side,
  crop back at a random offset (:func:`random_crop`), then resize to the candidate's size.
* ``"resized-crop"`` (photo folders): the ImageNet recipe's random-resized crop - a box of
  :data:`CROP_SCALE` of the image's area and :data:`CROP_RATIO` aspect ratio, first of
  :data:`CROP_TRIES` tries that fits, else the whole image - cut and resized straight to the
  candidate's resolution in one resampling (:func:`resized_crop`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def crop_padding(size: int) -> int:
    """The usual 4 px of a 32 px image, scaled: 1/8 of the side, at least 1."""
    return max(1, size // 8)


def draw_crops(batch: int, pad: int, generator: torch.Generator) -> torch.Tensor:
    """``(batch, 2)`` offsets (y, x) in ``0..2*pad`` for :func:`random_crop`."""
    return torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator)


def draw_flips(batch: int, generator: torch.Generator) -> torch.Tensor:
    """A boolean mask: which images of the batch to mirror."""
    return torch.rand(batch, generator=generator) < 0.5


def random_crop(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by ``pad`` on each side, then cut each image's window at its own offset.

    Same size out as in; one gather for the whole batch.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = offsets.to(images.device)
    rows = offsets[:, 0, None] + torch.arange(h, device=images.device)  # (n, h)
    cols = offsets[:, 1, None] + torch.arange(w, device=images.device)  # (n, w)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # (n, c, H, W) -> (n, H, W, c) so the three index tensors broadcast to (n, h, w).
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror (left-right) the images where ``mask`` is true."""
    mask = mask.to(images.device)[:, None, None, None]
    return torch.where(mask, images.flip(3), images)


#: A batch is converted to float at its stored size this many bytes at a time, at most: a
#: photo batch (600 kB an image at 224 px) in slices, every small-image batch whole.
CHUNK_BYTES = 4 << 20


def chunk_images(images: torch.Tensor) -> int:
    """How many of ``images`` to convert to float at once (see :data:`CHUNK_BYTES`)."""
    c, h, w = images.shape[1:]
    return max(1, CHUNK_BYTES // (4 * c * h * w))


def to_input(images: torch.Tensor, resolution: int, mean, std, channels: int = 3,
             channels_last: bool = True) -> torch.Tensor:
    """uint8 batch -> normalised float batch at ``resolution`` with ``channels`` channels.

    ``mean`` and ``std``: per channel, 0..255 units; tuples or float32 tensors.

    Resizing is bilinear (antialiased when shrinking). A one-channel image is repeated to
    ``channels`` (the models take RGB: that keeps their FLOPs equal to the reference count).
    A batch larger than :data:`CHUNK_BYTES` as float is converted a slice at a time (every
    image on its own: the same numbers as in one go).
    """
    step = chunk_images(images)
    if len(images) > step:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return torch.cat([to_input(part, resolution, mean, std, channels, channels_last)
                          for part in images.split(step)]).contiguous(memory_format=layout)
    x = images.float()
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        shrink = resolution < min(x.shape[-2:])
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                          align_corners=False, antialias=shrink)
    # A tensor already on the device is used as is: building one from a tuple is a host-to-
    # device copy, which on CUDA waits for the GPU to finish its queued work.
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)[None, :, None, None]
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)[None, :, None, None]
    x = (x - mean) / std
    if x.shape[1] != channels:
        if x.shape[1] != 1:
            raise ValueError(f"cannot turn {x.shape[1]} channels into {channels}")
        x = x.expand(-1, channels, -1, -1)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=layout)


# -- photos: random-resized crops ----------------------------------------------------------------

CROP_SCALE = (0.08, 1.0)      # share of the image's area (torchvision's RandomResizedCrop)
CROP_RATIO = (3 / 4, 4 / 3)   # width / height
CROP_TRIES = 10
MAX_SUPERSAMPLE = 4           # at most 4x4 bilinear samples averaged per output pixel


def draw_resized_crops(batch: int, generator: torch.Generator, scale=CROP_SCALE,
                       ratio=CROP_RATIO) -> torch.Tensor:
    """``(batch, 4)`` boxes ``(top, left, height, width)`` as fractions of a square image's
    side: :data:`CROP_TRIES` tries of an area in ``scale`` and a log-uniform aspect ratio in
    ``ratio``, the first that fits the image, else the whole image. The same number of draws
    for every batch, so the stream of draws after it does not depend on which try fitted."""
    tries = torch.rand(batch, CROP_TRIES, 2, generator=generator, dtype=torch.float64)
    offsets = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    area = scale[0] + (scale[1] - scale[0]) * tries[..., 0]
    log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * tries[..., 1]
    aspect = torch.exp(log_ratio)
    width, height = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
    fits = (width <= 1) & (height <= 1)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((batch,), -1))
    rows = torch.arange(batch)
    pick = first.clamp_min(0)
    h = torch.where(first >= 0, height[rows, pick], torch.ones(batch, dtype=torch.float64))
    w = torch.where(first >= 0, width[rows, pick], torch.ones(batch, dtype=torch.float64))
    top, left = offsets[:, 0] * (1 - h), offsets[:, 1] * (1 - w)
    return torch.stack([top, left, h, w], dim=1).float()


def supersampling(largest: float, size: int, resolution: int) -> int:
    """Bilinear samples per output pixel and side when the largest box of a batch (its side
    as a fraction of the image's) is cut from ``size`` px images to ``resolution``: enough that
    the crop is not aliased when shrunk, at most :data:`MAX_SUPERSAMPLE`."""
    return max(1, min(MAX_SUPERSAMPLE, math.ceil(largest * size / resolution - 1e-6)))


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, resolution: int,
                 flips: torch.Tensor | None = None, samples: int = 1) -> torch.Tensor:
    """Cut each image's box (:func:`draw_resized_crops`) and resize it to ``resolution``,
    mirrored where ``flips`` is true: one ``grid_sample`` for the whole batch, float out
    (0..255). ``samples`` (:func:`supersampling`): each output pixel averages ``samples``
    x ``samples`` bilinear samples over its footprint (an area filter when shrinking). A batch
    larger than :data:`CHUNK_BYTES` as float is cut a slice at a time."""
    step = chunk_images(images)
    if len(images) > step:
        return torch.cat([resized_crop(images[i:i + step], boxes[i:i + step], resolution,
                                       None if flips is None else flips[i:i + step], samples)
                          for i in range(0, len(images), step)])
    n, c = images.shape[:2]
    x = images.float()
    boxes = boxes.to(device=x.device, dtype=x.dtype)
    top, left, height, width = boxes.unbind(1)
    sign = torch.ones_like(width)
    if flips is not None:
        sign = 1 - 2 * flips.to(device=x.device, dtype=x.dtype)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = 2 * left + width - 1
    theta[:, 1, 1] = height
    theta[:, 1, 2] = 2 * top + height - 1
    side = resolution * samples
    grid = F.affine_grid(theta, [n, c, side, side], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if samples > 1:
        out = F.avg_pool2d(out, samples)
    return out
