"""What a dataset name stands for: the files it is read from, and where its prepared cache
goes by default.

``resolve(name, data_dir)`` returns a :class:`Source`: the canonical name (what jobs and
messages say), the kind (``"arrays"``: a built-in dataset read whole by its loader;
``"images"``: a folder of photos decoded one by one), the cache's folder name under
:func:`~.cache.cache_root` (the dataset and a hash of where its files are), and the listing of
its files - sizes and modification times - that a prepared cache records, so a source changed
since is noticed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import TinyFormulaError

DATASETS = ("fashion-mnist", "digits", "cifar10", "cifar100", "imagefolder:PATH",
            "prepared:DIR")


@dataclass
class Source:
    """A dataset's files, ready to prepare or to compare with a cache's record of them."""

    name: str
    kind: str                        # "arrays" or "images"
    key: str                         # the cache's folder name under cache_root()
    listing: list[tuple]             # sources.tsv rows: split, row, label, bytes, mtime, path
    plan: object = None              # images: the FolderPlan
    loader: Callable | None = None   # arrays: reads the dataset into memory

    @property
    def root(self) -> str:
        return str(self.plan.root) if self.plan is not None else ""  # type: ignore[attr-defined]


def image_folder_key(path) -> str:
    """The cache folder name of the photo folder at ``path``: its name and a hash of where it
    is (two folders called ``photos`` do not share a cache)."""
    root = Path(path).expanduser().absolute()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name)[:40] or "root"
    return f"imagefolder-{slug}-{_tag(root)}"


def _tag(path) -> str:
    return hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:10]


def _files(paths) -> list[tuple]:
    rows = []
    for path in paths:
        stat = os.stat(path)
        rows.append(("-", "-", "-", stat.st_size, stat.st_mtime_ns, str(Path(path).absolute())))
    return rows


def canonical(name: str) -> str:
    """A dataset name's canonical spelling (``fashion_mnist`` -> ``fashion-mnist``)."""
    if not isinstance(name, str):
        raise TinyFormulaError(f"dataset name must be a string, got {name!r}")
    key = name.strip()
    lower = key.lower()
    if lower in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        return "fashion-mnist"
    if lower in ("digits", "cifar10", "cifar100", "imagefolder"):
        return lower
    for prefix in ("imagefolder:", "prepared:"):
        if lower.startswith(prefix):
            return prefix + key[len(prefix):]
    raise TinyFormulaError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def source_name(text: str) -> str:
    """What a command's SOURCE names: a dataset name as ``--data`` takes it, or a folder - a
    prepared cache (``prepared:DIR``) or a photo folder (``imagefolder:PATH``)."""
    try:
        return canonical(text)
    except TinyFormulaError:
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise
    return f"prepared:{folder}" if (folder / "manifest.json").is_file() else f"imagefolder:{folder}"


def resolve(name: str, data_dir=None) -> Source:
    """The :class:`Source` a dataset name (and ``data_dir``) stands for; a missing or bad
    source raises TinyFormulaError. Not for ``prepared:DIR`` (a cache has no source to read)."""
    key = canonical(name)
    if key == "fashion-mnist":
        from . import fashion_mnist

        files = fashion_mnist.locate(data_dir)
        folder = Path(files["train_images"]).parent
        return Source("fashion-mnist", "arrays", f"fashion-mnist-{_tag(folder)}",
                      _files(files.values()), loader=lambda: fashion_mnist.load(data_dir))
    if key == "digits":
        from importlib.resources import files as package_files

        from . import digits

        path = Path(str(package_files("sklearn.datasets.data") / "digits.csv.gz"))
        return Source("digits", "arrays", f"digits-{_tag(path)}", _files([path]),
                      loader=digits.load)
    if key in ("cifar10", "cifar100"):
        from . import cifar

        folder = cifar.folder(key, data_dir)
        names = cifar.file_names(key, folder)
        return Source(key, "arrays", f"{key}-{_tag(folder)}",
                      _files(folder / n for n in names), loader=lambda: cifar.load(key, data_dir))
    if key.startswith("prepared:"):
        raise TinyFormulaError("a prepared dataset has no source to prepare again")
    from . import imagefolder

    where = key[len("imagefolder:"):] if key.startswith("imagefolder:") else ""
    where = where or (str(data_dir) if data_dir else "")
    if not where:
        raise TinyFormulaError("imagefolder needs a path: imagefolder:PATH "
                               "(one sub-folder per class)")
    plan = imagefolder.scan(where)
    listing = [(e.split, e.row, e.label, e.bytes, e.mtime_ns, e.path) for e in plan.entries]
    return Source(f"imagefolder:{plan.root}", "images", image_folder_key(plan.root),
                  listing, plan=plan)
