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

Where the images live: a subset of up to :data:`RESIDENT_BYTES` (per device type) is held on
the device as uint8 - on a GPU moved there once, as airbench does; on the CPU a copy - and
each batch is cut from it. A larger subset (photos at 224 px) streams: each batch's rows are
gathered from the dataset's memory-mapped array (ascending row order, what the page cache
reads best) by a background thread one step ahead of training, into pinned memory on CUDA,
then moved to the device. Either way a batch holds the same images, so the choice never
changes a result. Cropping, flipping, resizing and normalising run on the device, a whole
batch at a time: padded crops for small images; for photo datasets (``data.augmentation ==
"resized-crop"``) random-resized crops drawn as boxes in relative coordinates and cut
straight to the candidate's resolution.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..core.errors import TinyFormulaError
from ..data import ImageData
from ..data.augment import (
    crop_padding,
    draw_crops,
    draw_flips,
    draw_resized_crops,
    flip,
    random_crop,
    resized_crop,
    supersampling,
    to_input,
)
from ..data.images import ImageRows, gather, image_bytes, take
from ..data.mapped import release

#: A training subset up to this many bytes is held whole on the device; a larger one streams.
RESIDENT_BYTES = {"cpu": 64 << 20, "cuda": 2 << 30}


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
        self.photo = data.augmentation == "resized-crop"
        generator = torch.Generator().manual_seed(seed)
        self.subset = torch.randperm(len(data.train_images), generator=generator)[:train_size]
        index = torch.empty(self.steps, self.batch_size, dtype=torch.long)
        crops = None
        if augment:
            crops = (torch.empty(self.steps, self.batch_size, 4) if self.photo
                     else torch.empty(self.steps, self.batch_size, 2, dtype=torch.long))
        flips = torch.empty(self.steps, self.batch_size, dtype=torch.bool) if augment else None
        order, position = torch.empty(0, dtype=torch.long), 0
        for step in range(self.steps):
            parts, need = [], self.batch_size
            while need:
                if position == len(order):
                    order, position = torch.randperm(train_size, generator=generator), 0
                take_ = min(need, len(order) - position)
                parts.append(order[position:position + take_])
                position += take_
                need -= take_
            index[step] = parts[0] if len(parts) == 1 else torch.cat(parts)
            if augment:
                crops[step] = (draw_resized_crops(self.batch_size, generator) if self.photo
                               else draw_crops(self.batch_size, self.pad, generator))
                flips[step] = draw_flips(self.batch_size, generator)
        # The largest box of each batch, on the CPU: how finely a photo batch is resampled.
        self._largest = (crops[:, :, 2:].amax(dim=(1, 2)).tolist()
                         if augment and self.photo and self.steps else [])

        self.index = index.to(self.device)
        self.crops = None if crops is None else crops.to(self.device)
        self.flips = None if flips is None else flips.to(self.device)
        self.labels = data.train_labels[self.subset].to(self.device)
        self._mean = torch.tensor(data.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(data.std, dtype=torch.float32, device=self.device)
        limit = RESIDENT_BYTES.get(self.device.type, RESIDENT_BYTES["cuda"])
        self.resident = train_size * image_bytes(data.train_images) <= limit
        self.images: torch.Tensor | None = None
        self._stream: _Stream | None = None
        if self.resident:
            self.images = take(data.train_images, self.subset).to(self.device)
            release(data.train_images)
        else:
            source = data.train_images
            array, rows = ((source.array, source.rows[self.subset])
                           if isinstance(source, ImageRows) else (source, self.subset))
            self._stream = _Stream(array, rows, index, self.device)

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
        labels = self.labels[self.index[step]]
        if self.photo and self.augment:
            images = self._images(step)
            inputs = tuple(self._photo_inputs(images, step, size)
                           for size in (self.resolution, *self.extra_resolutions))
            return (inputs[0], labels, *inputs[1:])
        images, labels = self.augmented(step)
        extra = tuple(self.inputs(images, size) for size in self.extra_resolutions)
        return (self.inputs(images), labels, *extra)

    def augmented(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step``'s augmented images at the dataset's native size (uint8) and labels:
        for a second model (a distillation teacher) that sees them at its own resolution."""
        images = self._images(step)
        labels = self.labels[self.index[step]]
        if self.augment and self.photo:
            crops = self._photo_crop(images, step, self.data.size)
            return crops.round_().clamp_(0, 255).to(torch.uint8), labels
        if self.augment:
            images = random_crop(images, self.crops[step], self.pad)
            if self.data.flip:
                images = flip(images, self.flips[step])
        return images, labels

    def _images(self, step: int) -> torch.Tensor:
        """Batch ``step``'s images as stored (uint8, on the device)."""
        if self._stream is not None:
            return self._stream.get(step)
        return self.images[self.index[step]]

    def _photo_crop(self, images: torch.Tensor, step: int, size: int) -> torch.Tensor:
        samples = supersampling(self._largest[step], self.data.size, size)
        flips = self.flips[step] if self.data.flip else None
        return resized_crop(images, self.crops[step], size, flips, samples)

    def _photo_inputs(self, images: torch.Tensor, step: int, size: int) -> torch.Tensor:
        return self.inputs(self._photo_crop(images, step, size), size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for step in range(self.steps):
            yield self.batch(step)

    def first_images(self, count: int, batch_size: int) -> Iterator[torch.Tensor]:
        """The first ``count`` images of the subset, unaugmented, as inputs in batches of
        ``batch_size`` (a last batch of one image is left out: BatchNorm cannot use it).
        The same images for every candidate of a seed: what BatchNorm is recalibrated on."""
        count = min(count, len(self.subset))
        for start in range(0, count, batch_size):
            stop = min(count, start + batch_size)
            if stop - start > 1:
                if self.images is not None:
                    images = self.images[start:stop]
                else:
                    images = take(self.data.train_images, self.subset[start:stop])
                    release(self.data.train_images)
                    images = images.to(self.device)
                yield self.inputs(images)

    def close(self) -> None:
        """Stop the background thread of a streamed run (also done when it is collected)."""
        if self._stream is not None:
            self._stream.close()

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
    per_image = image_bytes(data.train_images)   # a tensor or mapped rows alike
    per_label = data.train_labels[:1].element_size()
    draws = steps * batch * (8 + (2 * 8 + 1 if augment else 0))  # int64 index, crops, flips
    norm = 2 * 4 * len(data.mean)
    return train_size * (per_image + per_label) + draws + norm


class _Stream:
    """Batches gathered from a (memory-mapped) image array one step ahead, in a thread.

    ``get(step)`` returns batch ``step``'s images on ``device`` - prefetched when the steps
    come in order, as training asks for them - and starts gathering the next. The rows of a
    batch are read in ascending order (:func:`~tinyformula.data.images.gather`); on CUDA
    into pinned memory, copied to the GPU without blocking.
    """

    def __init__(self, array: torch.Tensor, rows: torch.Tensor, index: torch.Tensor,
                 device: torch.device):
        self.array, self.rows, self.index, self.device = array, rows, index, device
        self.pin = device.type == "cuda"
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future] | None = None
        self._finalizer: weakref.finalize | None = None

    def _buffer(self) -> torch.Tensor:
        # Allocated here, in the training thread: a buffer freed by the thread that made it
        # goes back to that thread's malloc arena, and two arenas hold twice the memory.
        return torch.empty((self.index.shape[1], *self.array.shape[1:]), dtype=torch.uint8,
                           pin_memory=self.pin)

    def _gather(self, step: int, out: torch.Tensor) -> torch.Tensor:
        images = gather(self.array, self.rows[self.index[step]], out=out)
        release(self.array)  # read once a batch: the pages go back to the page cache
        return images

    def get(self, step: int) -> torch.Tensor:
        ahead, self._ahead = self._ahead, None
        images = ahead[1].result() if ahead is not None and ahead[0] == step else None
        if images is None:
            images = self._gather(step, self._buffer())
        if step + 1 < len(self.index):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="tinyformula-batches")
                self._finalizer = weakref.finalize(self, self._pool.shutdown, wait=False,
                                                   cancel_futures=True)
            self._ahead = (step + 1, self._pool.submit(self._gather, step + 1, self._buffer()))
        else:
            self.close()
        return images.to(self.device, non_blocking=True) if self.pin else images

    def close(self) -> None:
        self._ahead = None
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer, self._pool = None, None
