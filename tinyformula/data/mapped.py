"""A prepared cache (:mod:`.cache`) opened as an :class:`~.images.ImageData` whose images are
memory-mapped: opening costs milliseconds whatever the dataset's size, a process's own memory
does not grow with it, and every process that maps the same files shares one copy of them in
the kernel's page cache.

The arrays are mapped copy-on-write (``numpy.load(mmap_mode="c")``): a stray in-place
operation changes the process's own copy of a page, never the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import TinyFormulaError
from .cache import SPLITS, images_file, labels_file, read_manifest, verify
from .images import ImageData, ImageRows, Images


def open_cache(folder, checksum: str | None = None, check: bool = True) -> ImageData:
    """The prepared dataset at ``folder``, memory-mapped.

    ``checksum``: the content it must hold (a search's workers get the driver's), anything
    else is refused. ``check``: verify the arrays against their digests, once per copy of the
    files (see :func:`~.cache.verify`); shapes and sizes are always checked.
    """
    folder = Path(folder).expanduser()
    manifest = read_manifest(folder)
    if checksum and manifest["checksum"] != checksum:
        raise TinyFormulaError(
            f"the prepared dataset at {folder} holds other data than expected (checksum "
            f"{manifest['checksum'][:16]}, expected {checksum[:16]}): copy the driver's cache "
            f"here, or prepare it from the same source with the same tinyformula and Pillow")
    if check:
        verify(folder, manifest)
    else:
        from .cache import check_arrays

        check_arrays(folder, manifest)
    dataset = manifest["dataset"]
    splits = {}
    for split in SPLITS:
        array = torch.from_numpy(np.load(folder / images_file(split), mmap_mode="c"))
        labels = torch.from_numpy(np.load(folder / labels_file(split)))
        kept = labels >= 0
        images: Images = array
        if not bool(kept.all()):
            rows = torch.nonzero(kept).flatten()
            images, labels = ImageRows(array, rows), labels[rows]
        splits[split] = images, labels
    return ImageData(
        name=manifest["source"]["name"],
        train_images=splits["train"][0], train_labels=splits["train"][1],
        val_images=splits["val"][0], val_labels=splits["val"][1],
        num_classes=dataset["num_classes"],
        classes=tuple(dataset["classes"]), flip=dataset["flip"],
        resolution_base=dataset["resolution_base"], val_source=dataset["val_source"],
        mean=tuple(dataset["mean"]), std=tuple(dataset["std"]),
        augmentation=dataset["augmentation"], checksum=manifest["checksum"],
        cache=str(folder))
