"""The training batches of one run, every random draw made before the first step.

:class:`TrainBatches` draws, from one CPU ``torch.Generator`` seeded by the run's seed, the
training subset, each epoch's order and every crop and flip, at the dataset's native size,
before training starts. Nothing it draws depends on the model or the device, so every
candidate trained with one seed sees the same batches, on CPU and on GPU (common random
numbers). Iterating it yields ``(x, labels)``: normalised float inputs at the candidate's
resolution and their labels, on the run's device; with ``extra_resolutions`` (a distillation
teacher's input size), also the same augmented images at each of those resolutions.

Every batch has the same shape (a CUDA graph replays one shape). The rule: the run's epochs
are one stream (each epoch a fresh permutation of the subset, drawn when the stream reaches
it) cut into batches of ``min(batch_size, train_size)``; a batch that crosses an epoch's end
takes its remaining images from the start of the next epoch's order, and only the run's final
remainder (fewer than one batch) is dropped. When ``train_size`` is a multiple of the batch
size (every search preset at batch 128), the batches and draws are exactly those of the
per-epoch loop this replaced.

The images of the subset are held on the device as uint8 (on CPU: a copy of the subset),
and cropping, flipping, resizing and normalising run there, a whole batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..core.errors import TinyFormulaError
from ..data import ImageData
from ..data.augment import crop_padding, draw_crops, draw_flips, flip, random_crop, to_input


class TrainBatches:
    """All training batches of one run, drawn up front; iterate for ``(x, labels)``.

    ``index[k]`` holds the positions (in ``subset``) of batch ``k``'s images, ``crops[k]``
    and ``flips[k]`` its augmentation (None when ``augment`` is off). ``len()`` is the number
    of steps; every batch has ``batch_size`` images.
    """

    def __init__(self, data: ImageData, *, train_size: int, batch_size: int, epochs: int,
                 seed: int, resolution: int, augment: bool = True, channels_last: bool = True,
                 device: torch.device | str = "cpu", extra_resolutions: tuple[int, ...] = ()):
        if not 1 <= train_size <= len(data.train_images):
            raise TinyFormulaError(f"train size {train_size:,} is outside "
                                   f"1..{len(data.train_images):,}")
        self.batch_size = min(batch_size, train_size)
        if self.batch_size < 2:
            raise TinyFormulaError(f"a training batch needs at least 2 images (BatchNorm); "
                                   f"got train size {train_size}, batch size {batch_size}")
        self.data, self.resolution = data, resolution
        self.extra_resolutions = tuple(extra_resolutions)
        self.augment, self.channels_last = augment, channels_last
        self.device = torch.device(device)
        self.pad = crop_padding(data.size)
        self.steps = train_size * epochs // self.batch_size

        # The order of the draws is fixed: subset; then, per batch, the next epoch's
        # permutation when the stream needs one, the batch's crops, the batch's flips.
        generator = torch.Generator().manual_seed(seed)
        self.subset = torch.randperm(len(data.train_images), generator=generator)[:train_size]
        index = torch.empty(self.steps, self.batch_size, dtype=torch.long)
        crops = torch.empty(self.steps, self.batch_size, 2, dtype=torch.long) if augment else None
        flips = torch.empty(self.steps, self.batch_size, dtype=torch.bool) if augment else None
        order, position = torch.empty(0, dtype=torch.long), 0
        for step in range(self.steps):
            parts, need = [], self.batch_size
            while need:
                if position == len(order):
                    order, position = torch.randperm(train_size, generator=generator), 0
                take = min(need, len(order) - position)
                parts.append(order[position:position + take])
                position += take
                need -= take
            index[step] = parts[0] if len(parts) == 1 else torch.cat(parts)
            if augment:
                crops[step] = draw_crops(self.batch_size, self.pad, generator)
                flips[step] = draw_flips(self.batch_size, generator)

        self.index = index.to(self.device)
        self.crops = None if crops is None else crops.to(self.device)
        self.flips = None if flips is None else flips.to(self.device)
        self.images = data.train_images[self.subset].to(self.device)
        self.labels = data.train_labels[self.subset].to(self.device)
        self._mean = torch.tensor(data.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(data.std, dtype=torch.float32, device=self.device)

    def __len__(self) -> int:
        return self.steps

    @property
    def device_bytes(self) -> int:
        """Bytes this run keeps on its device (the subset's images and labels, the draws):
        what :func:`resident_bytes` predicts before anything is built."""
        held = (self.index, self.crops, self.flips, self.images, self.labels, self._mean,
                self._std)
        return sum(t.numel() * t.element_size() for t in held if t is not None)

    @property
    def total_images(self) -> int:
        """Training images over the whole run (``steps * batch_size``)."""
        return self.steps * self.batch_size

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """Batch ``step`` (0-based): augmented, resized, normalised inputs and labels (then
        the same images at each of ``extra_resolutions``)."""
        images, labels = self.augmented(step)
        extra = tuple(self.inputs(images, size) for size in self.extra_resolutions)
        return (self.inputs(images), labels, *extra)

    def augmented(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step``'s augmented images at the dataset's native size (uint8) and labels:
        for a second model (a distillation teacher) that sees them at its own resolution."""
        index = self.index[step]
        images = self.images[index]
        if self.augment:
            images = random_crop(images, self.crops[step], self.pad)
            if self.data.flip:
                images = flip(images, self.flips[step])
        return images, self.labels[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for step in range(self.steps):
            yield self.batch(step)

    def first_images(self, count: int, batch_size: int) -> Iterator[torch.Tensor]:
        """The first ``count`` images of the subset, unaugmented, as inputs in batches of
        ``batch_size`` (a last batch of one image is left out: BatchNorm cannot use it).
        The same images for every candidate of a seed: what BatchNorm is recalibrated on."""
        count = min(count, len(self.images))
        for start in range(0, count, batch_size):
            stop = min(count, start + batch_size)
            if stop - start > 1:
                yield self.inputs(self.images[start:stop])

    def inputs(self, images: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
        """uint8 images as normalised model inputs at ``resolution`` (default the run's)."""
        return to_input(images, resolution or self.resolution, self._mean, self._std,
                        channels_last=self.channels_last)


def resident_bytes(data: ImageData, *, train_size: int, batch_size: int, epochs: int,
                   augment: bool = True) -> int:
    """Bytes a run's :class:`TrainBatches` keeps on its device, computed without building
    it: the training subset's images (uint8 at the dataset's native size) and labels, and
    every batch's positions, crops and flips (a GPU's memory plan counts these explicitly)."""
    batch = min(batch_size, train_size)
    steps = train_size * epochs // batch
    image = data.train_images[:1]
    per_image = image.numel() * image.element_size()
    per_label = data.train_labels[:1].element_size()
    draws = steps * batch * (8 + (2 * 8 + 1 if augment else 0))  # int64 index, crops, flips
    norm = 2 * 4 * len(data.mean)
    return train_size * (per_image + per_label) + draws + norm
