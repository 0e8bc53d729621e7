"""Datasets for the short-schedule trainer, by name or path; each loader is its own module.

``load_dataset(name, data_dir)`` returns an :class:`ImageData`: uint8 tensors in memory, a
training split and a fixed held-out split for scoring. Names: ``fashion-mnist``, ``digits``,
``cifar10``, ``cifar100`` and ``imagefolder:PATH``. :func:`cached_dataset` loads one once per
process (a worker trains many trials on it), optionally scored on images held out from its
training split (:mod:`.holdout`).
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .images import ImageData
    from .loading import DATASETS, cached_dataset, list_datasets, load_dataset

__getattr__, __dir__ = lazy_exports(__name__, {
    "ImageData": ".images",
    "DATASETS": ".loading",
    "cached_dataset": ".loading",
    "list_datasets": ".loading",
    "load_dataset": ".loading",
})

__all__ = ["DATASETS", "ImageData", "cached_dataset", "list_datasets", "load_dataset"]
