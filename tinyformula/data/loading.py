"""Datasets by name: the loaders of :mod:`tinyformula.data`, and one copy per process."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ..core.errors import TinyFormulaError

if TYPE_CHECKING:
    from .images import ImageData

DATASETS = ("fashion-mnist", "digits", "cifar10", "cifar100", "imagefolder:PATH")


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, data_dir=None) -> "ImageData":
    """Load a dataset by name; a bad name, a missing or corrupt file raises TinyFormulaError."""
    if not isinstance(name, str):
        raise TinyFormulaError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower()
    if key in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        from . import fashion_mnist

        return fashion_mnist.load(data_dir)
    if key == "digits":
        from . import digits

        return digits.load()
    if key in ("cifar10", "cifar100"):
        from . import cifar

        return cifar.load(key, data_dir)
    if key.startswith("imagefolder:") or key == "imagefolder":
        from . import imagefolder

        path = name.strip()[len("imagefolder:"):] or data_dir
        if not path:
            raise TinyFormulaError("imagefolder needs a path: imagefolder:PATH "
                                   "(one sub-folder per class)")
        return imagefolder.load(path)
    raise TinyFormulaError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str, data_dir: str | None = None, validation: int | None = None):
    """The dataset, loaded once per process (workers are reused for many trials); with
    ``validation``, scored on that many images carved out of its training split."""
    if validation:
        from .holdout import carve_validation

        return carve_validation(cached_dataset(name, data_dir), validation)
    return load_dataset(name, data_dir)

