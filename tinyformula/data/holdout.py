"""Held-out data: the images a search scores candidates on, carved from the *training* split
so the official test set never chooses an architecture. One home for the rule and its size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import TinyFormulaError

if TYPE_CHECKING:
    import torch

    from .images import ImageData

VAL_FRACTION = 0.2   # the held-out split takes at most this share of the training images


def holdout_size(train_images: int, preferred: int) -> int:
    """Training images to hold out by default: ``preferred`` (a preset's), at most
    ``VAL_FRACTION`` of ``train_images``, and at least one."""
    return max(1, min(preferred, int(VAL_FRACTION * train_images)))


def fixed_split(labels: torch.Tensor, fraction: float, seed: int = 0):
    """Indices ``(train, val)`` holding out ``fraction`` of each class, the same on every call.

    Stratified so small classes keep a held-out share; a class of one image stays in train.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = int(round(len(members) * fraction)) if len(members) > 1 else 0
        n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def carve_validation(data: ImageData, size: int, seed: int = 0) -> ImageData:
    """A copy of ``data`` scored on ``size`` images held out from its *training* split.

    The search ranks candidates on this split, so the official test set (often ``data``'s own
    held-out split) is never used to choose an architecture. Stratified and fixed by ``seed``.
    Both splits are views of ``data``'s training images (:class:`~.images.ImageRows`): no
    image is copied, and a memory-mapped dataset stays mapped.
    """
    from .images import ImageData, select

    n = len(data.train_images)
    if not 1 <= size < n:
        raise TinyFormulaError(f"{data.name}: cannot hold out {size} of {n} training images")
    train, val = fixed_split(data.train_labels, size / n, seed)
    return ImageData(
        name=data.name, train_images=select(data.train_images, train),
        train_labels=data.train_labels[train],
        val_images=select(data.train_images, val), val_labels=data.train_labels[val],
        num_classes=data.num_classes, classes=data.classes, flip=data.flip,
        resolution_base=data.resolution_base,
        val_source=f"{len(val):,} images held out from the training split (seed {seed})",
        mean=data.mean, std=data.std, augmentation=data.augmentation,
        checksum=data.checksum, cache=data.cache)
