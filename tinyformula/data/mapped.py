"""A prepared cache (:mod:`.cache`) opened as an :class:`~.images.ImageData` whose images are
memory-mapped: opening costs milliseconds whatever the dataset's size, a process's own memory
does not grow with it, and every process that maps the same files shares one copy of them in
the kernel's page cache.

The arrays are mapped copy-on-write (``mmap.ACCESS_COPY``): a stray in-place operation
changes the process's own copy of a page, never the file. Pages a process has read stay in
its resident set (counted in its RSS, though the kernel shares them with every other process
mapping the file); :func:`release` lets go of them, and the batch gatherers call it after each
read, so a worker's resident memory does not grow with the dataset.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from pathlib import Path

import numpy as np
import torch

from ..core.errors import TinyFormulaError
from .cache import SPLITS, data_offset, images_file, labels_file, read_manifest, verify
from .images import ImageData, ImageRows, Images

# Every mapping this process made: its start address -> (a weak reference to it, its length).
_MAPS: dict[int, tuple[weakref.ref, int]] = {}
_LOCK = threading.Lock()


def map_array(path: Path) -> np.ndarray:
    """The array of an ``.npy`` file, mapped copy-on-write (registered for :func:`release`)."""
    offset, shape, dtype = data_offset(path)
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    start = np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
    with _LOCK:
        _MAPS[start] = (weakref.ref(mapping), len(mapping))
    count = int(np.prod(shape))
    return np.frombuffer(mapping, dtype=dtype, count=count, offset=offset).reshape(shape)


def release(images: Images) -> None:
    """Drop the pages of ``images``' file mapping from this process's resident set
    (``MADV_DONTNEED``): they stay in the kernel's page cache, shared, and touching them again
    reads them back from there. Nothing happens for images in memory (not mapped)."""
    array = images.array if isinstance(images, ImageRows) else images
    if not isinstance(array, torch.Tensor) or array.device.type != "cpu":
        return
    address = array.data_ptr()
    with _LOCK:
        found = [(start, entry) for start, entry in _MAPS.items()
                 if start <= address < start + entry[1]]
    for start, (ref, _) in found:
        mapping = ref()
        if mapping is None:
            with _LOCK:
                _MAPS.pop(start, None)
        elif hasattr(mmap, "MADV_DONTNEED"):
            try:
                mapping.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed, or a platform that refuses: keep the pages
                pass


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
        array = torch.from_numpy(map_array(folder / images_file(split)))
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
