"""Datasets for the short-schedule trainer, by name or path; each loader is its own module.

``load_dataset(name, data_dir)`` returns an :class:`ImageData`: uint8 tensors in memory, a
training split and a fixed held-out split for scoring. Names: ``fashion-mnist``, ``digits``,
``cifar10``, ``cifar100`` and ``imagefolder:PATH``.
"""

from __future__ import annotations

from ..errors import TinyFormulaError
from .core import ImageData

DATASETS = ("fashion-mnist", "digits", "cifar10", "cifar100", "imagefolder:PATH")


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, data_dir=None) -> ImageData:
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


__all__ = ["ImageData", "list_datasets", "load_dataset"]
