"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes): always there, tiny.

There is no official test split: a fixed-seed, stratified 25% is held out. Pixel values 0..16
are scaled to 0..255. A mirrored digit is another symbol, so no flips.
"""

from __future__ import annotations

import torch

from .holdout import fixed_split
from .images import ImageData

HELD_OUT = 0.25


def load(data_dir=None) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255 / 16).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    train, val = fixed_split(labels, HELD_OUT, seed=0)
    return ImageData(
        name="digits",
        train_images=images[train], train_labels=labels[train],
        val_images=images[val], val_labels=labels[val],
        num_classes=10, classes=tuple(str(d) for d in range(10)),
        flip=False, resolution_base=32,
        val_source=f"fixed-seed stratified {HELD_OUT:.0%} of the data",
    )
