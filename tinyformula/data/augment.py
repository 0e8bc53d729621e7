"""Whole-batch preprocessing: padded random crop, horizontal flip, resize, normalise.

Everything acts on a batch tensor at once (advanced indexing, ``F.interpolate``); there is no
per-sample Python. Random draws take an explicit ``torch.Generator`` and are made at the
dataset's native size, before resizing, so every candidate - whatever its resolution - gets the
same crops and flips for a given seed (common random numbers).
"""

from __future__ import annotations

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


def to_input(images: torch.Tensor, resolution: int, mean, std, channels: int = 3,
             channels_last: bool = True) -> torch.Tensor:
    """uint8 batch -> normalised float batch at ``resolution`` with ``channels`` channels.

    ``mean`` and ``std``: per channel, 0..255 units; tuples or float32 tensors.

    Resizing is bilinear (antialiased when shrinking). A one-channel image is repeated to
    ``channels`` (the models take RGB: that keeps their FLOPs equal to the reference count).
    """
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
