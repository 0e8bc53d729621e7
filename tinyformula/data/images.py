"""The plain value every dataset loader returns and the trainer consumes.

Images stay uint8 ``(N, C, H, W)`` in memory (Fashion-MNIST's 70,000 images are 55 MB), so
batches are cut, augmented and resized as whole tensors with no per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.errors import TinyFormulaError


@dataclass(eq=False)
class ImageData:
    """A classification dataset in memory: a training split and a fixed held-out split.

    ``flip``: whether a horizontal flip keeps the label (not for digits).
    ``resolution_base``: the input size at r = 1 (32 for small images, 224 for photo folders).
    ``val_source`` says where the held-out split came from (official test set, or a fixed-seed
    split), so results can say what they were scored on. ``mean`` and ``std`` (per channel,
    in 0..255 units) are computed from the training images when not given.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] = ()
    flip: bool = True
    resolution_base: int = 32
    val_source: str = ""
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

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


def channel_stats(images: torch.Tensor, limit: int = 10_000) -> tuple[tuple, tuple]:
    """Per-channel mean and std (0..255 units) of up to ``limit`` images (evenly spaced)."""
    step = max(1, len(images) // limit)
    sample = images[::step].to(torch.float64)
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1.0)  # a constant channel must not divide by 0
    return tuple(mean.tolist()), tuple(std.tolist())

