"""Datasets by name, read through their prepared caches, and one copy per process.

``load_dataset(name)`` resolves the name to its source (:mod:`.sources`), finds the source's
prepared cache (under :func:`~.cache.cache_root`, or ``prepared:DIR``), checks that the source
has not changed since, and opens the cache memory-mapped (:mod:`.mapped`). A dataset not yet
prepared is prepared first (:mod:`.prepare`): at once for the built-in datasets, with a
progress bar for a photo folder. A source changed since it was prepared is refused - never
mixed with the old images - until ``tinyformula data prepare`` prepares it again. Where the
cache cannot be written (a read-only home), the built-in datasets are read into memory
instead, as before caches existed.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import TinyFormulaError
from .cache import MANIFEST, describe_changes, read_sources
from .sources import DATASETS, canonical, resolve

if TYPE_CHECKING:
    from .images import ImageData

__all__ = ["DATASETS", "cached_dataset", "list_datasets", "load_dataset", "prepare_dataset",
           "verify_dataset"]


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, data_dir=None, *, checksum: str | None = None,
                 progress: bool | None = None, log=None) -> "ImageData":
    """Load a dataset by name, through its prepared cache (prepared first when missing).

    ``checksum``: the content the cache must hold (a search's workers get the driver's); with
    it the source is not listed again (the driver did), only the cache is checked. A bad name,
    a missing or corrupt file, a source changed since it was prepared raise TinyFormulaError.
    ``progress``: a progress bar while preparing (default: when stderr is a terminal).
    """
    from .cache import read_manifest
    from .mapped import open_cache
    from .prepare import default_folder, prepare

    key = canonical(name)
    if key.startswith("prepared:"):
        folder = Path(key[len("prepared:"):]).expanduser()
        if not str(folder):
            raise TinyFormulaError("prepared needs a folder: prepared:DIR")
        return open_cache(folder, checksum)
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    if log is None:
        def log(message: str) -> None:
            if progress:
                print(f"tinyformula: {message}", file=sys.stderr)
    if checksum:
        found = _ready(name, data_dir)
        if found is not None:
            return open_cache(found, checksum)
    source = resolve(key, data_dir)
    folder = default_folder(source)
    if (folder / MANIFEST).exists():
        try:
            manifest = read_manifest(folder)
        except TinyFormulaError:
            if source.kind == "images":
                raise
            manifest = None  # a built-in dataset's cache of another version: prepared again
        if manifest is not None:
            changes = describe_changes(read_sources(folder),
                                       [tuple(str(v) for v in row) for row in source.listing])
            if changes:
                raise TinyFormulaError(
                    f"{source.name} changed since it was prepared ({changes}); prepare it "
                    f"again before using it: tinyformula data prepare {source.name}")
            return open_cache(folder, checksum)
    if source.kind == "images":
        log(f"preparing {source.name} once into {folder} ({len(source.listing):,} images; "
            "'tinyformula data prepare' does this ahead of time)")
        prepare(source, progress=progress, log=log)
        return open_cache(folder, checksum)
    try:
        prepare(source)
    except TinyFormulaError as error:
        if "cannot write" not in str(error) and "cannot create" not in str(error):
            raise
        log(f"{error}; reading {source.name} into memory instead")
        return source.loader()
    return open_cache(folder, checksum)


def _ready(name: str, data_dir) -> Path | None:
    """The default cache folder of ``name`` when it holds a cache, found without listing the
    source (a photo folder of a million files): for workers handed the driver's checksum."""
    from .cache import cache_root
    from .sources import image_folder_key

    key = canonical(name)
    if key.startswith("imagefolder"):
        path = key[len("imagefolder:"):] if key.startswith("imagefolder:") else str(data_dir)
        folder = cache_root() / image_folder_key(path)
        return folder if (folder / MANIFEST).exists() else None
    return None


def cached_dataset(name: str, data_dir: str | None = None, validation: int | None = None,
                   checksum: str | None = None):
    """The dataset, opened once per process (workers are reused for many trials); with
    ``validation``, scored on that many images carved out of its training split; with
    ``checksum``, refused unless its prepared cache holds exactly that content."""
    # One key however the arguments are spelled: ``f(name)`` and ``f(name, None, None)`` are
    # different calls to lru_cache, and each would list the source folder again.
    return _cached_dataset(name, data_dir, validation or None, checksum or None)


@functools.lru_cache(maxsize=4)
def _cached_dataset(name: str, data_dir: str | None, validation: int | None,
                    checksum: str | None):
    if validation:
        from .holdout import carve_validation

        return carve_validation(_cached_dataset(name, data_dir, None, checksum), validation)
    return load_dataset(name, data_dir, checksum=checksum)


cached_dataset.cache_clear = _cached_dataset.cache_clear  # type: ignore[attr-defined]


def prepare_dataset(name: str, data_dir=None, *, size: int | None = None, out=None,
                    workers: int | None = None, bad_images: str = "refuse", draft: bool = True,
                    force: bool = False, progress: bool | None = None, log=None):
    """Prepare a dataset once (``tinyformula data prepare``): decode it in parallel into a
    memory-mapped cache every later run - and every worker - opens in milliseconds.

    ``name``: a dataset name (``fashion-mnist``, ``imagefolder:PATH``, ...) or a folder of
    photos. ``size``: the stored side of a photo (default 224); ``out``: where the cache goes
    (default: under ``$TINYFORMULA_DATA_CACHE`` or ``~/.cache/tinyformula/prepared``, where
    ``load_dataset`` looks); ``bad_images``: ``"refuse"`` or ``"skip"`` unreadable images;
    ``draft``: JPEG draft mode (decode scaled down where that keeps the stored size);
    ``force``: prepare again even when up to date. Returns a
    :class:`~tinyformula.data.prepare.Prepared` (``status``, counts, checksum, images/s).
    """
    from .prepare import PrepareSettings, prepare
    from .sources import source_name

    settings = PrepareSettings(size=size, workers=workers, bad_images=bad_images, draft=draft)
    key = source_name(name)
    if key.startswith("prepared:"):
        raise TinyFormulaError(f"{key[len('prepared:'):]} is a prepared dataset already; "
                               "'tinyformula data verify' checks it")
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    return prepare(resolve(key, data_dir), settings, out=out, force=force, progress=progress,
                   log=log)


def verify_dataset(name: str, data_dir=None, *, checksum: str | None = None) -> dict:
    """Check a prepared dataset (``tinyformula data verify``): every array against its digest
    (read in full, whatever was checked before), the checksum against ``checksum`` when given,
    and its source - when it is on this machine - against what was prepared (a changed source
    fails). Returns what it found; a failed check raises TinyFormulaError."""
    from .cache import cache_bytes, read_manifest, verify
    from .prepare import default_folder
    from .sources import source_name

    key = source_name(name)
    if key.startswith("prepared:"):
        folder = Path(key[len("prepared:"):]).expanduser()
        manifest = read_manifest(folder)
        source = None
        if manifest["source"]["kind"] == "images" and Path(manifest["source"]["root"]).is_dir():
            source = resolve(f"imagefolder:{manifest['source']['root']}")
    else:
        source = resolve(key, data_dir)
        folder = default_folder(source)
        if not (folder / MANIFEST).exists():
            raise TinyFormulaError(f"{source.name} is not prepared (no cache in {folder}); "
                                   f"prepare it: tinyformula data prepare {source.name}")
        manifest = read_manifest(folder)
    if checksum and manifest["checksum"] != checksum:
        raise TinyFormulaError(f"the prepared dataset at {folder} has checksum "
                               f"{manifest['checksum']}, not {checksum}")
    verify(folder, manifest, force=True)
    if source is not None:
        changes = describe_changes(read_sources(folder),
                                   [tuple(str(v) for v in row) for row in source.listing])
        if changes:
            raise TinyFormulaError(f"{source.name} changed since it was prepared into {folder} "
                                   f"({changes}); prepare it again: tinyformula data prepare "
                                   f"{source.name}")
    splits = manifest["splits"]
    return {"folder": str(folder), "source": manifest["source"]["name"],
            "checksum": manifest["checksum"], "train": splits["train"]["kept"],
            "val": splits["val"]["kept"], "size": manifest["dataset"]["size"],
            "channels": manifest["dataset"]["channels"], "bytes": cache_bytes(folder),
            "version": manifest["version"], "prepared_by": manifest["tinyformula"],
            "created": manifest["created"],
            "skipped": len(manifest["prepare"].get("skipped", [])),
            "source_checked": source is not None}
