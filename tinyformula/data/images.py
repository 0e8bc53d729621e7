"""The plain value every dataset loader returns and the trainer consumes.

Images are uint8 ``(N, C, H, W)``: a tensor in memory, or a memory-mapped tensor read from a
prepared cache (:mod:`.cache`), whose pages the kernel shares between every process that maps
it. A selection of a mapped array's rows (a split carved out of another, a cache with images
left out) is an :class:`ImageRows`: a view that reads only the rows it is asked for, so
holding one costs no memory. Either way batches are gathered, augmented and resized as whole
tensors with no per-sample Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import torch

from ..core.errors import TinyFormulaError

#: The augmentations a dataset can ask for (:mod:`.augment`): small images are zero-padded and
#: cropped back to their size; photos are cut by random-resized crops.
AUGMENTATIONS = ("pad-crop", "resized-crop")


class ImageRows:
    """Rows ``rows`` of the uint8 image array ``array`` (usually memory-mapped), read on demand.

    Indexing (an integer, a slice, an index or boolean tensor) returns a tensor holding just
    those images, gathered in ascending row order (what the page cache reads best) and put
    back in the order asked for. ``select`` gives another view; ``len``, ``shape``, ``dtype``
    and ``dim()`` read as a tensor's. Nothing is copied until indexed.
    """

    def __init__(self, array: torch.Tensor, rows: torch.Tensor):
        if array.dtype != torch.uint8 or array.dim() != 4:
            raise ValueError(f"ImageRows needs a uint8 (N, C, H, W) array, got {array.dtype} "
                             f"{tuple(array.shape)}")
        self.array = array
        self.rows = torch.as_tensor(rows, dtype=torch.long)
        if self.rows.dim() != 1:
            raise ValueError("rows must be 1-D")

    dtype = torch.uint8

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.array.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.array.device

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, index) -> "ImageRows":
        """A view of some of these rows (``index`` into this view)."""
        return ImageRows(self.array, self.rows[_as_index(index)])

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, tuple):
            head, rest = (key[0], key[1:]) if key else (slice(None), ())
            images = self[head]
            return images[(slice(None),) + tuple(rest)] if images.dim() == 4 else images[rest]
        if isinstance(key, int):
            return self.array[int(self.rows[key])]
        return gather(self.array, self.rows[_as_index(key)])

    def to(self, *args, **kwargs) -> torch.Tensor:
        """Every image of the view, as one tensor (``Tensor.to``'s arguments)."""
        return self[:].to(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<ImageRows: {len(self):,} of {len(self.array):,} rows, {tuple(self.shape[1:])}>"


Images = Union[torch.Tensor, ImageRows]


def _as_index(key):
    if isinstance(key, slice):
        return key
    if isinstance(key, (list, tuple)):
        return torch.as_tensor(key, dtype=torch.long)
    return key


def gather(array: torch.Tensor, rows: torch.Tensor, out: torch.Tensor | None = None):
    """``array[rows]`` read in ascending row order (what the page cache reads best) and
    returned in the order of ``rows``; into ``out`` (e.g. a pinned tensor) when given.

    On the CPU the copy is numpy's ``take``: one thread, the GIL released, so it can run
    beside training in a background thread without waking torch's thread pool.
    """
    rows = torch.as_tensor(rows)
    rows = torch.nonzero(rows).flatten() if rows.dtype == torch.bool else rows.long()
    if array.device.type != "cpu":
        return torch.index_select(array, 0, rows.to(array.device), out=out)
    source, index = array.numpy(), rows.numpy()
    target = None if out is None else out.numpy()
    if len(index) > 1 and not bool((index[1:] >= index[:-1]).all()):
        order = np.argsort(index, kind="stable")
        if target is None:
            target = np.empty((len(index), *source.shape[1:]), dtype=source.dtype)
        for position, row in zip(order.tolist(), index[order].tolist()):
            target[position] = source[row]  # rows read in ascending order, no second copy
    else:
        target = np.take(source, index, axis=0, out=target)
    return out if out is not None else torch.from_numpy(target)


def take(images: Images, index: torch.Tensor) -> torch.Tensor:
    """``images[index]`` as a tensor, for a tensor or an :class:`ImageRows` alike; a mapped
    tensor is read in ascending row order."""
    if isinstance(images, ImageRows):
        return images[index]
    return gather(images, index)


def select(images: Images, index: torch.Tensor) -> Images:
    """Rows ``index`` of ``images`` without copying them: a view (:class:`ImageRows`)."""
    if isinstance(images, ImageRows):
        return images.select(index)
    return ImageRows(images, torch.as_tensor(index, dtype=torch.long))


def image_bytes(images: Images) -> int:
    """Bytes of one image of ``images``."""
    c, h, w = images.shape[1:]
    return int(c * h * w)


@dataclass(eq=False)
class ImageData:
    """A classification dataset: a training split and a fixed held-out split.

    ``flip``: whether a horizontal flip keeps the label (not for digits).
    ``resolution_base``: the input size at r = 1 (32 for small images, 224 for photo folders).
    ``augmentation``: how training batches are augmented (:data:`AUGMENTATIONS`):
    ``"pad-crop"`` (small images: padded random crops) or ``"resized-crop"`` (photos:
    random-resized crops, the ImageNet recipe's scales and aspect ratios).
    ``val_source`` says where the held-out split came from (official test set, or a fixed-seed
    split), so results can say what they were scored on. ``mean`` and ``std`` (per channel,
    in 0..255 units) are computed from the training images when not given. ``checksum`` and
    ``cache``: the prepared cache the images are read from (empty for data built in memory).
    """

    name: str
    train_images: Images
    train_labels: torch.Tensor
    val_images: Images
    val_labels: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] = ()
    flip: bool = True
    resolution_base: int = 32
    val_source: str = ""
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
    augmentation: str = "pad-crop"
    checksum: str = ""
    cache: str = ""

    def __post_init__(self):
        for split in ("train", "val"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(f"{split}_images must be uint8 (N, C, H, W), got "
                                 f"{images.dtype} {tuple(images.shape)}")
            if labels.dim() != 1 or len(labels) != len(images):
                raise ValueError(f"{split}_labels must be 1-D with one label per image")
            if len(images) == 0:
                raise TinyFormulaError(f"{self.name}: the {split} split is empty")
            if labels.min() < 0 or labels.max() >= self.num_classes:
                raise TinyFormulaError(f"{self.name}: {split} labels outside "
                                       f"0..{self.num_classes - 1}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got "
                             f"{self.augmentation!r}")
        self.train_labels = self.train_labels.long()
        self.val_labels = self.val_labels.long()
        if self.train_images.shape[1:] != self.val_images.shape[1:]:
            raise ValueError("train and val images differ in shape")
        if not self.mean or not self.std:
            self.mean, self.std = channel_stats(self.train_images)

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def size(self) -> int:
        """Native (stored) image size in pixels; images are square."""
        return self.train_images.shape[-1]

    def __repr__(self) -> str:
        return (f"<ImageData {self.name}: {len(self.train_images):,} train / "
                f"{len(self.val_images):,} held-out ({self.val_source}), {self.num_classes} "
                f"classes, {self.channels}x{self.size}x{self.size}>")


#: Above this many bytes of float64 sample, channel statistics are summed a block at a time.
STATS_BYTES = 1 << 30


def channel_stats(images: Images, limit: int = 10_000) -> tuple[tuple, tuple]:
    """Per-channel mean and std (0..255 units) of up to ``limit`` images (evenly spaced).

    A sample that fits :data:`STATS_BYTES` as float64 is reduced in one go (the numbers every
    earlier release computed, to the last bit); a larger one (photos) a block of images at a
    time, from exact integer sums (the same unbiased std), so memory stays small.
    """
    step = max(1, len(images) // limit)
    count = len(range(0, len(images), step))
    if count * image_bytes(images) * 8 <= STATS_BYTES:
        sample = images[::step].to(torch.float64)
        mean = sample.mean(dim=(0, 2, 3))
        std = sample.std(dim=(0, 2, 3)).clamp_min(1.0)  # a constant channel must not divide by 0
        return tuple(mean.tolist()), tuple(std.tolist())
    # Exact integer sums of the values and of their squares, a block of images at a time.
    channels = images.shape[1]
    total, squares = [0] * channels, [0] * channels
    rows = torch.arange(0, len(images), step)
    block = max(1, (64 << 20) // (image_bytes(images) * 2))
    for start in range(0, len(rows), block):
        chunk = take(images, rows[start:start + block]).numpy()
        wide = chunk.astype(np.uint16)
        wide *= wide  # 255 ** 2 fits 16 bits
        for c in range(channels):
            total[c] += int(chunk[:, c].sum(dtype=np.int64))
            squares[c] += int(wide[:, c].sum(dtype=np.int64))
    n = count * images.shape[2] * images.shape[3]
    means = tuple(t / n for t in total)
    stds = tuple(max(1.0, math.sqrt((q * n - t * t) / (n * max(n - 1, 1))))
                 for t, q in zip(total, squares))
    return means, stds
